// The replay check: replays every stream of an aggregate type from its events alone and
// compares the result with the stream's stored snapshot, reporting each snapshot whose state
// differs (a snapshot is a cache, never a source of truth). Run it after a restore,
// after manual maintenance on the database, or on a schedule next to `annals verify`.
//
//   const annals::SnapshotCheckReport report =
//       annals::check_snapshots<Account>(*store, registry, *snapshots);
//   for (const auto& m : report.mismatches) std::cout << m.stream.value() << ": " << m.problem;
//
// The check catches what the load-time check cannot: a snapshot whose digest was recomputed
// after an edit (the digest is not a secret-keyed MAC), a snapshot written by a buggy release,
// or one whose state a since-fixed evolve computed wrongly.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/decider.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/repository.hpp"

namespace annals {

/// Options of check_snapshots.
struct SnapshotCheckOptions {
  /// Events read per round trip, both while listing the category's streams (read_all) and while
  /// replaying a stream. Default 1,000; 0 counts as 1.
  std::size_t page_size = 1000;
};

/// One stream whose stored snapshot is not the state its events give.
struct SnapshotMismatch {
  StreamId stream;
  /// The stream version the snapshot claims to hold the state after.
  StreamVersion snapshot_version = 0;
  /// What differs, in words: the top-level fields whose values differ, or "the stream has only
  /// N events", or why the snapshot's state does not decode.
  std::string problem;
  /// Whether loading ignores the snapshot anyway (SnapshotStore::lookup): kNone means loads
  /// would use it, and commands would be decided on a wrong state until it is replaced.
  SnapshotIgnored ignored = SnapshotIgnored::kNone;
  /// The snapshot's state as stored.
  nlohmann::json snapshot_state;
  /// The state the events give after `snapshot_version` (or after the last event, when the
  /// stream is shorter), serialized like a snapshot.
  nlohmann::json replayed_state;

  friend bool operator==(const SnapshotMismatch&, const SnapshotMismatch&) = default;
};

/// What check_snapshots found.
struct SnapshotCheckReport {
  /// The aggregate type's category (D::kCategory).
  std::string category;
  /// Streams of the category (streams with at least one event).
  std::size_t streams = 0;
  /// Snapshots of the current schema version, compared with a replay.
  std::size_t snapshots = 0;
  /// Of those, how many loading ignores anyway (another history, edited in place, unbound).
  std::size_t ignored_by_load = 0;
  /// Snapshots of another schema version: not compared (loads ignore them, decision 10).
  std::size_t other_schema = 0;
  /// Every compared snapshot whose state differs from the replay, in stream-id order.
  std::vector<SnapshotMismatch> mismatches;

  [[nodiscard]] bool ok() const noexcept { return mismatches.empty(); }
};

namespace detail {
/// Every stream of `category` with at least one event, in byte order of their ids: one
/// filtered read_all pass over the log. Throws: UnavailableError.
[[nodiscard]] std::vector<StreamId> streams_of_category(EventReader& events,
                                                        std::string_view category,
                                                        std::size_t page_size);
/// "balance: snapshot 1000000, events 70; owner: ..." for two JSON values (objects compared
/// field by field, anything else as a whole).
[[nodiscard]] std::string describe_difference(const nlohmann::json& snapshot,
                                              const nlohmann::json& replayed);
}  // namespace detail

/// Replays each stream of D's category from its events alone (no snapshot is used) up to the
/// version of the stream's stored snapshot and compares the states as JSON, after decoding the
/// stored state into D::State and encoding it again (so representation details such as key
/// order or number spelling never count as differences). Snapshots of another schema version
/// are counted, not compared. Streams are listed with EventReader::read_all filtered on the
/// category, so every stream that has settled events is checked, whatever its snapshot; a
/// stream whose first events are not settled yet (a writing transaction still running in the
/// cluster holds readers back, ARCHITECTURE decision 5) is checked by the next run.
///
/// Requires: D::State JsonConvertible; every event of D registered in `registry`.
/// Throws: InvalidArgumentError (an event of D not registered), UnknownEventTypeError and
/// CorruptionError (an event that does not decode: the check stops, as a load would),
/// UnavailableError. A snapshot load that fails throws too: the check never guesses.
/// Thread safety: safe to run while the application writes (events up to a snapshot's version
/// never change); the lookups it makes count in `snapshots.stats()` like any load.
/// Cost: one read_all pass over the whole log filtered by category (one round trip per
/// `page_size` matching events), then per stream one snapshot lookup and one read per
/// `page_size` events up to its snapshot's version.
template <typename D>
[[nodiscard]] SnapshotCheckReport check_snapshots(EventStore& store, const EventRegistry& registry,
                                                  SnapshotStore& snapshots,
                                                  const SnapshotCheckOptions& options = {}) {
  using State = typename D::State;
  static_assert(JsonConvertible<State>,
                "annals: check_snapshots needs JSON conversions for the decider's State");
  const std::size_t page = options.page_size == 0 ? 1 : options.page_size;
  Repository<D> events_only(store, registry, {.read_page_size = page});
  SnapshotCheckReport report;
  report.category = std::string(D::kCategory);
  for (const StreamId& stream : detail::streams_of_category(store, D::kCategory, page)) {
    ++report.streams;
    SnapshotLookup found = snapshots.lookup(stream);
    if (!found.snapshot) continue;
    Snapshot& snapshot = *found.snapshot;
    if (snapshot.schema_version != detail::snapshot_version<D>()) {
      ++report.other_schema;
      continue;
    }
    ++report.snapshots;
    if (found.ignored != SnapshotIgnored::kNone) ++report.ignored_by_load;
    const auto replayed = events_only.load_stream_at_version(stream, snapshot.version);
    nlohmann::json replayed_json(replayed.state());
    std::string problem;
    if (replayed.version() < snapshot.version) {
      problem = "the stream has only " + std::to_string(replayed.version()) + " events";
    } else {
      try {
        const nlohmann::json decoded(snapshot.state.template get<State>());
        if (decoded != replayed_json) problem = detail::describe_difference(decoded, replayed_json);
      } catch (const nlohmann::json::exception& e) {
        problem = std::string("the snapshot's state does not decode: ") + e.what();
      }
    }
    if (problem.empty()) continue;
    report.mismatches.push_back(SnapshotMismatch{.stream = stream,
                                                 .snapshot_version = snapshot.version,
                                                 .problem = std::move(problem),
                                                 .ignored = found.ignored,
                                                 .snapshot_state = std::move(snapshot.state),
                                                 .replayed_state = std::move(replayed_json)});
  }
  return report;
}

}  // namespace annals
