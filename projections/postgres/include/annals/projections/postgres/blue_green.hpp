// Zero-downtime (blue/green) rebuilds of read-model projections: the new version of a read
// model is built beside the live one, which keeps serving, and readers are switched to it in one
// transaction once it has caught up (docs/read-models.md, "Zero-downtime rebuilds").
//
//   auto result = annals::projections::rebuild_blue_green(*events, *store, balances,
//                                                          {.connection_string = url});
//   // readers of account_balances now read result.schema's account_balances
//
// Each generation of a projection's tables lives in a schema of its own (read_schema in
// annals.projections, sql/0016), which every unit of work of the projection puts first on its
// search_path, so handlers, migrations and resets use their tables' plain names. What readers
// query under those names (tables() of the projection, in the connection's current schema) is,
// after the first blue/green rebuild, a view on the current generation's table.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "annals/eventstore/event_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/projection_store.hpp"

namespace annals::projections {

struct BlueGreenOptions {
  /// libpq connection string or URL of the read models' database; the names readers query are
  /// resolved with its search_path. Required.
  std::string connection_string;
  /// Batch size of the new generation's catch-up. Default 500.
  std::size_t batch_size = 500;
  /// The longest the new generation may take to catch up before the rebuild gives up (its
  /// tables and projection row are kept, and a later call resumes from its checkpoint). Must
  /// be positive. Default 1 h.
  std::chrono::milliseconds timeout{std::chrono::hours(1)};
};

struct BlueGreenResult {
  /// The schema the new generation's tables live in.
  std::string schema;
  /// The projection's checkpoint when readers were switched (the new generation's).
  Position checkpoint;
};

/// Builds a new generation of `projection`'s tables beside the live ones and switches readers
/// to it. The live generation keeps serving and its runner keeps it current meanwhile; the new
/// one is built as a projection of its own, "<name>.g<n>", by a runner in this call (visible in
/// `annals projections status` with its position and lag). Once it has caught up, one
/// transaction replaces each of tables() with a view on the new generation's table (the table
/// of generation 0, or the view of the previous one), hands the new checkpoint, schema and
/// migrations record to the projection, and drops the previous generation's schema. Readers
/// see the old tables until that commit and the new ones after, never a partial read model.
/// The projection's runner, wherever it runs, continues on the new generation by itself.
///
/// Requires: `projection` is the new version of a projection registered in `store` (same
/// name); its tables() have plain names (no schema) and its migrations create them by those
/// names. The database role may create schemas.
/// Throws: InvalidArgumentError (bad options, no tables() or qualified ones, a name too long to
/// carry a generation suffix, a partitioned projection: annals/projections/partitions.hpp),
/// NotFoundError (projection not registered), UnavailableError (the new generation did not catch up
/// within options.timeout, or the database is unavailable), what the projection's migrations or
/// handlers throw. Thread safety: any thread; run one rebuild of a projection at a time (a second
/// one started meanwhile works on the same generation and one of the two switches fails:
/// NotFoundError). Cost: a catch-up of the whole log by the new generation (a runner thread of this
/// call), then one short transaction that waits for the live tables' current writers and readers.
BlueGreenResult rebuild_blue_green(EventStore& events, ProjectionStore& store,
                                   std::shared_ptr<ReadModelProjection> projection,
                                   BlueGreenOptions options);

}  // namespace annals::projections
