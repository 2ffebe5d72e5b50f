// The ProjectionStore on PostgreSQL: checkpoints, leases, dead letters and rebuild requests in
// tables of the `annals` schema (sql/0003_create_projections.sql, applied by
// annals::postgres::migrate). Several runner processes on several machines can share it.
//
// A batch is one database transaction. A ReadModelProjection writes its tables through that
// transaction, so its effects and its checkpoint commit together (exactly once). The
// checkpoint write is a compare-and-set on the previous checkpoint and the lease's fencing
// token (ARCHITECTURE decision 7). Lease expiry uses the database clock, so runners on
// machines whose clocks disagree still agree on who owns what. No session state (advisory
// locks, LISTEN) is relied on, so it works behind a transaction pooler.
//
//   auto store = annals::projections::make_postgres_projection_store({.connection_string = url});
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "annals/projections/projection_store.hpp"

namespace annals::projections {

struct PostgresProjectionStoreOptions {
  /// libpq connection string or URL. Required.
  std::string connection_string;
  /// Most connections held open; batches of different projections run on different ones.
  /// Default 8.
  std::size_t pool_size = 8;
};

/// Connects and checks that the schema is migrated.
/// Throws: InvalidArgumentError (bad options), UnavailableError (cannot connect),
/// NotFoundError (schema not migrated: run `annals migrate`).
[[nodiscard]] std::unique_ptr<ProjectionStore> make_postgres_projection_store(
    PostgresProjectionStoreOptions options);

}  // namespace annals::projections
