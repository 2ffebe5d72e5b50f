// The PostgreSQL SnapshotStore: one row per stream in annals.snapshots
// (sql/0002_create_snapshots.sql), a cache of aggregate states (ARCHITECTURE decision 10).
//
//   auto snapshots = annals::postgres::make_postgres_snapshot_store({.connection_string = url});
//
// Every call is one prepared statement on a pooled autocommit connection. A broken connection
// is replaced and the call retried; snapshot writes are idempotent upserts, so that is safe.
//
// Thread safety: fully thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "annals/eventstore/snapshot_store.hpp"
#include "annals/postgres/connection_options.hpp"

namespace annals::postgres {

struct PostgresSnapshotStoreOptions {
  /// libpq connection string: "postgresql://user@host:port/db" or "host=... dbname=...".
  std::string connection_string;
  /// Most connections the store opens (lazily). Snapshot traffic is light: default 4.
  std::size_t pool_size = 4;
  /// How many times a call is retried on a fresh connection after the connection broke.
  /// Default 2.
  int max_retries_on_broken_connection = 2;
  /// Connect timeout, TCP keepalives and tcp_user_timeout of the store's connections, added
  /// to `connection_string` unless it sets them itself. Defaults: connection_options.hpp.
  ConnectionTimeouts connection_timeouts;
  /// How long a call waits for a pooled connection while all `pool_size` are in use before it
  /// fails with UnavailableError. Must be positive. Default 5 s.
  std::chrono::milliseconds acquire_timeout{5'000};
  /// The longest one call (with its retries) may wait for the server; a call still waiting
  /// then has its connection shut down by the store's watchdog thread and fails with
  /// UnavailableError (snapshot writes are idempotent upserts, so never "outcome unknown").
  /// Must be positive. Default 40 s.
  std::chrono::milliseconds call_timeout{40'000};
};

/// Opens a snapshot store. Connects once to check that migration 0002 is applied. Starts the
/// store's watchdog thread (it enforces `call_timeout`).
/// Throws: InvalidArgumentError (a timeout option out of range, named in the message),
/// UnavailableError (cannot connect), NotFoundError (not migrated: run `annals migrate`).
[[nodiscard]] std::unique_ptr<SnapshotStore> make_postgres_snapshot_store(
    PostgresSnapshotStoreOptions options);

}  // namespace annals::postgres
