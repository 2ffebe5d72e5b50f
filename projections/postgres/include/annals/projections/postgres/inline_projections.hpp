// Inline read-model projections: an EventStore whose appends also apply some ReadModelProjections
// in the append's own transaction, so a read right after the append sees its effect (no waiting
// for a runner). The handlers are the ones a ProjectionRunner calls, and the checkpoint row is the
// runner's, so a projection moves between inline and asynchronous without a rebuild: pass it to
// this store or not (docs/read-models.md, "Inline projections").
//
//   auto events = annals::postgres::make_postgres_event_store({.connection_string = url});
//   auto checkpoints = annals::projections::make_postgres_projection_store({.connection_string =
//   url}); auto store = annals::projections::make_inline_projections_store(
//       *events, *checkpoints, {balances}, {.connection_string = url});
//   store->append(stream, ExpectedVersion::any(), {deposit});  // balances updated at commit
//
// Keep a ProjectionRunner running the same projections (on the same database): it moves their
// checkpoints past what was applied inline (skipping those events), and applies what was not
// (events appended by other writers, or while a projection was behind or being rebuilt).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/connection_options.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/projection_store.hpp"

namespace annals::projections {

struct InlineProjectionsOptions {
  /// libpq connection string or URL of the database of the event store and the read models.
  /// Required.
  std::string connection_string;
  /// Most connections held open for inline appends (each append holds one until it commits).
  /// Default 8.
  std::size_t pool_size = 8;
  /// Connect timeout, TCP keepalives and tcp_user_timeout, added to `connection_string` unless
  /// it sets them itself. Defaults: annals/postgres/connection_options.hpp.
  postgres::ConnectionTimeouts connection_timeouts;
  /// How long an append waits for a pooled connection while all are in use before it fails
  /// with UnavailableError. Must be positive. Default 5 s.
  std::chrono::milliseconds acquire_timeout{5'000};
  /// The longest one append (with its retries on a new connection) may take; an append still
  /// waiting for the server then has its connection shut down and fails with
  /// OutcomeUnknownError (retry it with the same event ids) or UnavailableError. Must be
  /// positive. Default 40 s.
  std::chrono::milliseconds call_timeout{40'000};
  /// Limits on appends, as the event store's. Default: 1 MiB data and metadata, 10,000 events.
  AppendLimits limits;
  /// Whether an append wakes runners and subscribers (NOTIFY annals_events, after the commit).
  /// Default on.
  bool notify_on_append = true;
};

/// An EventStore over `events` whose append() and append_multi() run in one transaction with
/// the handlers of `projections`: the events, each projection's writes and the record that it
/// applied them commit together, or nothing does. Reads, watch() and subscribe() are those of
/// `events`, which must be a PostgreSQL event store on the same database.
///
/// Each append, per projection (in the order given): when the projection has applied every
/// earlier event of the appended streams that it handles, the store applies the append's
/// events it handles (ReadModelProjection::filter()) inline; otherwise (it lags behind those
/// streams, or is being rebuilt) it leaves them to the projection's runner, which applies them
/// in log order. An exact re-send applies nothing again. A handler that throws fails the
/// append: nothing is written, and the append rethrows the handler's exception.
///
/// Appends through this store are not group-committed: each is a transaction of its own.
/// Cost: 7 round trips with one projection (3 more per further projection), and a NOTIFY after
/// the commit (docs/read-models.md). No metrics of its own: appends through it are not counted
/// by the event store's MetricsSink.
///
/// Thread safety: fully thread-safe. Handlers may run at once in several appending threads (and
/// in a runner's): they must keep no state of their own besides what they write through the
/// ReadModel. `events` and `projection_store` must outlive the returned store.
///
/// Throws: InvalidArgumentError (bad options, no projection, a null or duplicate projection),
/// UnavailableError (cannot connect), what ProjectionStore::prepare() throws (each projection
/// is prepared: registered and its migrations applied).
[[nodiscard]] std::unique_ptr<EventStore> make_inline_projections_store(
    EventStore& events, ProjectionStore& projection_store,
    std::vector<std::shared_ptr<ReadModelProjection>> projections,
    InlineProjectionsOptions options);

}  // namespace annals::projections
