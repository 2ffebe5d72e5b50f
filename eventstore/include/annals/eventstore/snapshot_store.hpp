// The SnapshotStore interface: a cache of aggregate states, one per stream (ARCHITECTURE
// decision 10). A snapshot says "the state of stream S after its event V, serialized by schema
// version N of the aggregate's state". The framework's repository loads the latest snapshot and
// replays only the events after it; a snapshot it cannot use (another schema version, or gone)
// costs replay time, never correctness. Losing every snapshot changes nothing but speed.
//
//   auto snapshots = annals::make_in_memory_snapshot_store();
//   snapshots->save({.stream_id = annals::StreamId{"account-1"}, .version = 100,
//                    .schema_version = 1, .state = {{"balance", 42}}});
//   if (auto s = snapshots->load(annals::StreamId{"account-1"})) { ... }
//
// Two implementations: in memory (here) and PostgreSQL
// (annals/postgres/postgres_snapshot_store.hpp). Thread safety: every method of every
// implementation may be called from any thread at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "annals/eventstore/types.hpp"

namespace annals {

/// One stream's cached state.
struct Snapshot {
  StreamId stream_id;
  /// The stream version the state includes (its last event's version), >= 1.
  StreamVersion version = 0;
  /// The schema version of `state` (the aggregate's snapshot version), >= 1. A reader that
  /// expects another version ignores the snapshot.
  std::int32_t schema_version = 1;
  /// The serialized state: any JSON value.
  nlohmann::json state;

  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

/// Stores at most one snapshot per stream.
class SnapshotStore {
 public:
  SnapshotStore() = default;
  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;
  virtual ~SnapshotStore() = default;

  /// The stream's snapshot, or empty when it has none.
  /// Throws: UnavailableError (PostgreSQL unreachable), CorruptionError (unreadable row).
  /// Cost: one round trip.
  [[nodiscard]] virtual std::optional<Snapshot> load(const StreamId& stream) = 0;

  /// Stores `snapshot` as its stream's snapshot, unless the stored one has the same schema
  /// version and a higher stream version (a concurrent writer got further: keep the newer).
  /// A stored snapshot of another schema version is always replaced.
  /// Throws: InvalidArgumentError (version < 1, schema version < 1, state larger than
  /// `kMaxStateBytes` or not serializable; nothing stored), UnavailableError.
  /// Cost: one round trip.
  virtual void save(const Snapshot& snapshot) = 0;

  /// Forgets the stream's snapshot, if any. Cost: one round trip.
  virtual void remove(const StreamId& stream) = 0;

  /// Largest serialized state accepted by save(), in bytes (64 MiB).
  static constexpr std::size_t kMaxStateBytes = std::size_t{64} << 20;
};

/// Creates an empty in-memory snapshot store (for tests and samples run without a server).
[[nodiscard]] std::unique_ptr<SnapshotStore> make_in_memory_snapshot_store();

namespace detail {
/// Validates `snapshot` for save() and returns its serialized state, the same way in every
/// store. Throws: InvalidArgumentError naming the stream and the problem.
[[nodiscard]] std::string encode_snapshot_state(const Snapshot& snapshot);
}  // namespace detail

}  // namespace annals
