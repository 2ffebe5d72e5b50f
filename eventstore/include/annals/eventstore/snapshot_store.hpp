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
// A snapshot is bound to the history it was taken from: the PostgreSQL store records the hash
// of the event at the snapshot's version and a digest of the state, and lookup() reports (and
// load() hides) a snapshot that no longer matches the stored events. Such a snapshot
// is counted in stats() and logged once per load at warn on the spdlog logger "annals".
//
// Two implementations: in memory (here) and PostgreSQL
// (annals/postgres/postgres_snapshot_store.hpp). Thread safety: every method of every
// implementation may be called from any thread at once.
#pragma once

#include <cstddef>
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

/// Why a stored snapshot must not be used: it no longer describes the stored history.
enum class SnapshotIgnored {
  /// Usable (or no snapshot at all).
  kNone,
  /// Not bound to the chain: written before migration 0006, so it cannot be checked.
  kUnbound,
  /// The event at the snapshot's version is missing or has another hash than when the snapshot
  /// was taken: the history was restored from an older backup or rewritten since.
  kHistoryDiffers,
  /// The digest over the event hash and the state does not match: the row was edited in place.
  kStateEdited,
};

/// "unbound", "history-differs", "state-edited" ("none" for kNone).
[[nodiscard]] const char* to_string(SnapshotIgnored reason) noexcept;

/// What lookup() found.
struct SnapshotLookup {
  /// The stored snapshot, as stored (also when `ignored` says not to use it), or empty.
  std::optional<Snapshot> snapshot;
  /// kNone: `snapshot` (if any) may be used. Otherwise why it must not be.
  SnapshotIgnored ignored = SnapshotIgnored::kNone;

  /// The snapshot if present and usable.
  [[nodiscard]] bool usable() const noexcept {
    return snapshot.has_value() && ignored == SnapshotIgnored::kNone;
  }
};

/// Counters of a snapshot store since it was created, for monitoring. A store that does not
/// check snapshots (the in-memory one without an event store, third-party stores that do not
/// override stats()) reports zeros.
struct SnapshotStoreStats {
  /// Loads that found a snapshot written before migration 0006 (SnapshotIgnored::kUnbound).
  std::uint64_t ignored_unbound = 0;
  /// Loads that found a snapshot of another history (SnapshotIgnored::kHistoryDiffers).
  std::uint64_t ignored_history_differs = 0;
  /// Loads that found a snapshot edited in place (SnapshotIgnored::kStateEdited).
  std::uint64_t ignored_state_edited = 0;

  /// Every load that found a snapshot and ignored it.
  [[nodiscard]] std::uint64_t ignored() const noexcept {
    return ignored_unbound + ignored_history_differs + ignored_state_edited;
  }
  friend bool operator==(const SnapshotStoreStats&, const SnapshotStoreStats&) = default;
};

/// Stores at most one snapshot per stream.
class SnapshotStore {
 public:
  SnapshotStore() = default;
  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;
  virtual ~SnapshotStore() = default;

  /// The stream's snapshot, or empty when it has none or it must not be used (see lookup():
  /// an ignored snapshot is counted and logged, and loads as empty).
  /// Throws: UnavailableError (PostgreSQL unreachable), CorruptionError (unreadable row).
  /// Cost: one round trip.
  [[nodiscard]] virtual std::optional<Snapshot> load(const StreamId& stream) = 0;

  /// The stream's stored snapshot together with whether it may be used: checked against the
  /// stored event chain in the same round trip by stores that bind snapshots to it. A snapshot
  /// that must not be used is counted in stats() and logged once (warn, logger "annals").
  /// The default implementation (stores without a chain) calls load() and never ignores.
  /// Throws: as load(). Cost: one round trip.
  [[nodiscard]] virtual SnapshotLookup lookup(const StreamId& stream) {
    return SnapshotLookup{load(stream), SnapshotIgnored::kNone};
  }

  /// Counters since the store was created. Default: zeros. Cost: none (no round trip).
  [[nodiscard]] virtual SnapshotStoreStats stats() const { return {}; }

  /// stats().ignored(): loads that found a snapshot and ignored it. Cost: none.
  [[nodiscard]] std::uint64_t ignored_snapshots() const { return stats().ignored(); }

  /// Stores `snapshot` as its stream's snapshot, unless the stored one has the same schema
  /// version and a higher stream version (a concurrent writer got further: keep the newer).
  /// A stored snapshot of another schema version is always replaced, and so is one that
  /// lookup() would ignore. A store bound to an event chain records the hash of the stream's
  /// event `version` as it is at save time; a snapshot saved for a version the stream does not
  /// have is stored but never used (it loads as SnapshotIgnored::kHistoryDiffers).
  /// Throws: InvalidArgumentError (version < 1, schema version < 1, state larger than
  /// `kMaxStateBytes` or not serializable; nothing stored), UnavailableError.
  /// Cost: one round trip.
  virtual void save(const Snapshot& snapshot) = 0;

  /// Forgets the stream's snapshot, if any. Cost: one round trip.
  virtual void remove(const StreamId& stream) = 0;

  /// Largest serialized state accepted by save(), in bytes (64 MiB).
  static constexpr std::size_t kMaxStateBytes = std::size_t{64} << 20;
};

class EventReader;

/// Creates an empty in-memory snapshot store (for tests and samples run without a server). It
/// checks nothing: lookup() never ignores a snapshot and stats() stays zero.
[[nodiscard]] std::unique_ptr<SnapshotStore> make_in_memory_snapshot_store();

/// Creates an empty in-memory snapshot store bound to `events` (which must outlive it), the
/// way the PostgreSQL store is bound to its chain: save() records the id of the stream's event
/// at the snapshot's version, and lookup() ignores (kHistoryDiffers, counted, logged) a
/// snapshot whose event is missing or has another id. The in-memory store has no hashes and no
/// way to edit a row in place, so kStateEdited and kUnbound never occur.
/// Cost: one read of `events` per save() and per load.
[[nodiscard]] std::unique_ptr<SnapshotStore> make_in_memory_snapshot_store(EventReader& events);

namespace detail {
/// Validates `snapshot` for save() and returns its serialized state, the same way in every
/// store. Throws: InvalidArgumentError naming the stream and the problem.
[[nodiscard]] std::string encode_snapshot_state(const Snapshot& snapshot);
/// The one warning every store logs when lookup() ignores a stored snapshot (spdlog logger
/// "annals", warn). Never throws.
void log_snapshot_ignored_by_store(const StreamId& stream, StreamVersion version,
                                   SnapshotIgnored reason) noexcept;
}  // namespace detail

}  // namespace annals
