// annals::postgres::open(): the App's parts on one database, with the budget split of open.hpp.
#include "annals/projections/postgres/open.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/projections/postgres/postgres_document_reader.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"

namespace annals::postgres {

std::unique_ptr<App> open(const std::string& url, OpenOptions options) {
  if (url.empty()) throw InvalidArgumentError("annals::postgres::open: the url is empty");
  if (options.max_connections < 4) {
    throw InvalidArgumentError("OpenOptions::max_connections must be at least 4, got " +
                               std::to_string(options.max_connections));
  }
  if (options.roles && !options.migrate) {
    throw InvalidArgumentError("OpenOptions::roles is applied by migrate: set migrate too");
  }
  if (options.migrate) {
    MigrateOptions migrate_options;
    migrate_options.roles = options.roles;
    static_cast<void>(migrate(url, migrate_options));
  }
  const auto budget = options.max_connections;
  const auto events_pool = std::max<std::size_t>(1, budget / 2);
  const auto projections_pool = std::max<std::size_t>(1, budget / 4);
  const auto snapshots_pool = std::max<std::size_t>(1, budget / 8);
  const auto reader_pool =
      std::max<std::size_t>(1, budget - events_pool - projections_pool - snapshots_pool);

  AppParts parts;
  PostgresEventStoreOptions events{.connection_string = url};
  events.pool_size = events_pool;
  events.connection_timeouts = options.connection_timeouts;
  events.acquire_timeout = options.acquire_timeout;
  events.call_timeout = options.call_timeout;
  events.metrics = options.metrics;
  parts.events = make_postgres_event_store(std::move(events));

  PostgresSnapshotStoreOptions snapshots{.connection_string = url};
  snapshots.pool_size = snapshots_pool;
  snapshots.connection_timeouts = options.connection_timeouts;
  snapshots.acquire_timeout = options.acquire_timeout;
  snapshots.call_timeout = options.call_timeout;
  parts.snapshots = make_postgres_snapshot_store(std::move(snapshots));

  projections::PostgresProjectionStoreOptions store{.connection_string = url};
  store.pool_size = projections_pool;
  store.connection_timeouts = options.connection_timeouts;
  store.acquire_timeout = options.acquire_timeout;
  parts.projections = projections::make_postgres_projection_store(std::move(store));

  projections::PostgresDocumentReaderOptions reader{.connection_string =
                                                        options.read_url.value_or(url)};
  reader.pool_size = reader_pool;
  reader.connection_timeouts = options.connection_timeouts;
  reader.acquire_timeout = options.acquire_timeout;
  reader.call_timeout = options.call_timeout;
  parts.make_reader = [reader = std::move(reader)](projections::ProjectionStore& store_ref) {
    return projections::make_postgres_document_reader(reader, store_ref);
  };
  parts.bus = std::move(options.bus);
  parts.runner = std::move(options.runner);
  if (!parts.runner.metrics) parts.runner.metrics = options.metrics;
  return std::make_unique<App>(std::move(parts));
}

}  // namespace annals::postgres
