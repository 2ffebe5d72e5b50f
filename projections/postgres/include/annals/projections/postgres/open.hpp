// annals::postgres::open(): a whole service on PostgreSQL in one call (annals::App,
// annals/projections/app.hpp): the event store, the snapshot store, the projection store and
// the document reader on one database, sharing one connection budget and one set of timeouts,
// plus the event registry, the command bus and a projection runner.
//
//   auto app = annals::postgres::open(url, {.max_connections = 24, .migrate = true});
//
// annals::open_in_memory() makes the same shape without a server, for tests.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "annals/eventstore/metrics.hpp"
#include "annals/postgres/connection_options.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/app.hpp"

namespace annals::postgres {

struct OpenOptions {
  /// The connection budget: the most pooled connections the App's stores hold together. Split
  /// as: event store half (at least 1), projection store a quarter (at least 1), snapshot store
  /// an eighth (at least 1), document reader the rest (at least 1); so 24 gives 12, 6, 3 and 3.
  /// On top of the pools, the event store keeps one notifier connection and one per
  /// subscription (each runner worker's LISTEN), and the projection store one presence
  /// connection (see their options). Must be at least 4. Default 24.
  std::size_t max_connections = 24;
  /// Connect timeout and TCP keepalives of every connection (connection_options.hpp).
  ConnectionTimeouts connection_timeouts;
  /// How long any call waits for a pooled connection while all are in use. Must be positive.
  /// Default 5 s.
  std::chrono::milliseconds acquire_timeout{5'000};
  /// The longest one call of the event store, the snapshot store or the document reader may
  /// take (their call_timeout). Must be positive. Default 40 s. (The projection store keeps its
  /// own, shorter default: it must stay below the runner's lease TTL.)
  std::chrono::milliseconds call_timeout{40'000};
  /// Apply pending migrations first (annals::postgres::migrate, with no role layout). Needs a
  /// role that may create the schema; leave it off when an operator runs `annals migrate`.
  /// Default off.
  bool migrate = false;
  /// With `migrate`: the role layout migrate creates and grants (MigrateOptions::roles,
  /// docs/security.md); `url` must then connect as a role allowed to create roles. The App's
  /// own connections use `url` and `read_url`: give them the writer and reader roles' logins.
  /// Default: unset (roles untouched).
  std::optional<RoleLayout> roles;
  /// Where the document reader connects, e.g. as a read-only role; the event store, the
  /// snapshot store and the projection store use `url`. A read replica works, but after()
  /// then only knows that the primary has passed the position (postgres_document_reader.hpp).
  /// Default: `url`.
  std::optional<std::string> read_url;
  /// Metrics of the event store and the runner (annals/eventstore/metrics.hpp). Default none.
  std::shared_ptr<MetricsSink> metrics;
  /// The command bus and runner options (the bus's snapshot store is the App's).
  CommandBusOptions bus;
  projections::RunnerOptions runner;
};

/// Opens every part on the database of `url` (a libpq URL or connection string); checks that
/// the schema is migrated (or migrates it, with `options.migrate`).
/// Throws: InvalidArgumentError (bad options, named), UnavailableError (cannot connect),
/// NotFoundError (schema not migrated: run `annals migrate` or set `migrate`), and what
/// migrate() throws. Cost: a few connections opened to check the schema.
[[nodiscard]] std::unique_ptr<App> open(const std::string& url, OpenOptions options = {});

}  // namespace annals::postgres
