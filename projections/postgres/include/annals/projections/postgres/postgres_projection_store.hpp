// The ProjectionStore on PostgreSQL: checkpoints, leases, dead letters and rebuild requests in
// tables of the `annals` schema (sql/0003_create_projections.sql, applied by
// annals::postgres::migrate). Several runner processes on several machines can share it.
//
// A batch is one database transaction. A ReadModelProjection writes its tables through that
// transaction, so its effects and its checkpoint commit together (exactly once). The
// checkpoint write is a compare-and-set on the previous checkpoint and the lease's fencing
// token (ARCHITECTURE decision 7). Lease expiry uses the database clock, so runners on
// machines whose clocks disagree still agree on who owns what.
//
// Takeover: with session_liveness (the default) the store keeps one extra "presence"
// connection holding a session-level advisory lock, and its leases record that lock's key. A
// lease whose owner's session ended (process killed, connection cut) is free at once for
// another runner, without waiting for its expiry; the fencing token still grows with every
// takeover. Correctness never depends on it: a lease recording no live session, or none at
// all, is judged by its expiry alone.
//
// Behind a transaction pooler (PgBouncer in transaction mode): point connection_string at the
// pooler, turn prepare_statements off, and give the presence connection the server itself
// (session_connection_string); a session-level lock taken through the pooler would be held by
// a shared server connection. Without a direct connection, turn session_liveness off instead:
// only the expiry applies then (docs/operations.md, "Behind PgBouncer").
//
//   auto store = annals::projections::make_postgres_projection_store({.connection_string = url});
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "annals/postgres/connection_options.hpp"
#include "annals/projections/projection_store.hpp"

namespace annals::projections {

struct PostgresProjectionStoreOptions {
  /// libpq connection string or URL. Required.
  std::string connection_string;
  /// Most connections held open; batches of different projections run on different ones.
  /// Default 8.
  std::size_t pool_size = 8;
  /// Connect timeout, TCP keepalives and tcp_user_timeout of the store's connections, added
  /// to `connection_string` unless it sets them itself. Defaults:
  /// annals/postgres/connection_options.hpp.
  postgres::ConnectionTimeouts connection_timeouts;
  /// How long a call waits for a pooled connection while all `pool_size` are in use (batches
  /// hold theirs until they end) before it fails with UnavailableError. Must be positive.
  /// Default 5 s.
  std::chrono::milliseconds acquire_timeout{5'000};
  /// The longest one call of the store (with its retries) may wait for the server: lease,
  /// checkpoint, status and dead-letter calls, and opening a batch. A call still waiting then
  /// has its connection shut down by the store's watchdog thread and fails with
  /// UnavailableError. (prepare() and the statements of an open batch have their own
  /// timeouts, below.) Must be positive. Default 5 s: these are single-row statements, and it
  /// must stay below the lease TTL (ProjectionRunnerOptions::lease_ttl, default 10 s), so that
  /// a runner cut off from the database learns it before another runner may take its
  /// projections over.
  std::chrono::milliseconds call_timeout{5'000};
  /// The longest each statement of an open batch may wait for the server: every read-model
  /// statement (a write sent at once, a pipelined flush, a statement prepared on first use),
  /// park and resolve_dead_letter, the guarded checkpoint write, COMMIT and ROLLBACK. A
  /// statement still waiting then has its connection shut down by the watchdog: it fails with
  /// UnavailableError, a COMMIT with OutcomeUnknownError (the runner then reads the stored
  /// checkpoint again, which committed with the read model or not at all), and the batch can
  /// only be destroyed. Must be positive. Default 10 s: read-model statements are usually
  /// milliseconds, and a flush sends at most 1 MiB of queued writes.
  std::chrono::milliseconds batch_statement_timeout{10'000};
  /// The longest prepare() (registering the projection and running its setup(), with
  /// retries) may take before its connection is shut down and it fails with UnavailableError
  /// (setup's transaction then rolls back). Must be positive. Default 60 s: a setup may
  /// create tables and indexes.
  std::chrono::milliseconds prepare_timeout{60'000};
  /// Watch lease owners' database sessions, so that a dead owner's projections are taken over
  /// as soon as its session ends (see the header comment). Costs one more connection per store,
  /// opened by the first try_acquire() or renew(). Turn it off behind a transaction pooler.
  /// Default on.
  bool session_liveness = true;
  /// Where the presence connection of session liveness goes (it holds a session-level
  /// advisory lock, which needs a session of its own on the server). Empty (the default):
  /// `connection_string`. Behind a transaction-mode pooler such as PgBouncer, point
  /// `connection_string` at the pooler, this at the server itself, and set
  /// `prepare_statements = false` (docs/operations.md, "Behind PgBouncer").
  std::string session_connection_string;
  /// Prepare the store's statements (and its read-model helpers') once per connection (true,
  /// the default), or send each call's SQL as an unnamed statement, parsed anew every time
  /// (false). Named prepared statements live in a server session; a transaction-mode pooler
  /// (PgBouncer 1.18, as in Debian 12) hands each transaction to any server connection, where
  /// they do not exist, so turn this off behind one. A batch still runs as one transaction on
  /// one server connection, its queued writes pipelined in one round trip. Costs the server a
  /// parse and plan per statement.
  bool prepare_statements = true;
};

/// Connects and checks that the schema is migrated. Starts the store's watchdog thread (it
/// enforces `call_timeout`).
/// Throws: InvalidArgumentError (bad options, named in the message), UnavailableError (cannot
/// connect), NotFoundError (schema not migrated: run `annals migrate`).
[[nodiscard]] std::unique_ptr<ProjectionStore> make_postgres_projection_store(
    PostgresProjectionStoreOptions options);

}  // namespace annals::projections
