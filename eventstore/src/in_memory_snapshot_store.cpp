// The in-memory SnapshotStore, and the validation and logging every snapshot store shares
// (decision 10: snapshots are a cache; one stored per stream; a newer one of the same schema
// wins; one that no longer matches the events is ignored).
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "text_validation.hpp"

namespace annals {
namespace detail {

std::string encode_snapshot_state(const Snapshot& snapshot) {
  const std::string where = "snapshot of stream " + quote_for_message(snapshot.stream_id.value());
  if (snapshot.version < 1) {
    throw InvalidArgumentError(where + ": version " + std::to_string(snapshot.version) +
                               " is not a stream version (must be >= 1)");
  }
  if (snapshot.schema_version < 1) {
    throw InvalidArgumentError(where + ": schema version " +
                               std::to_string(snapshot.schema_version) + " must be >= 1");
  }
  check_json_depth(snapshot.state, where + ": state");  // dump() below recurses per level
  std::string text;
  try {
    text = snapshot.state.dump();
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgumentError(where + ": state cannot be serialized as JSON: " + e.what());
  }
  if (text.size() > SnapshotStore::kMaxStateBytes) {
    throw InvalidArgumentError(where + ": state is " + std::to_string(text.size()) +
                               " bytes when serialized, over the limit of " +
                               std::to_string(SnapshotStore::kMaxStateBytes) + " bytes");
  }
  // jsonb cannot hold U+0000; refuse it in every store alike (decision 1).
  for (std::size_t at = text.find('\\'); at != std::string::npos; at = text.find('\\', at + 2)) {
    if (text.compare(at + 1, 5, "u0000") == 0) {
      throw InvalidArgumentError(where + ": state contains the character U+0000");
    }
  }
  return text;
}

void log_snapshot_ignored_by_store(const StreamId& stream, StreamVersion version,
                                   SnapshotIgnored reason) noexcept {
  try {
    const auto log = logger();
    if (!log) return;
    const char* why = reason == SnapshotIgnored::kUnbound ? "it was written before migration "
                                                            "0006 and cannot be checked"
                      : reason == SnapshotIgnored::kHistoryDiffers
                          ? "the stored event at its version is missing or differs (history "
                            "restored or rewritten since it was taken)"
                          : "its digest does not match (edited in place)";
    log->warn(
        "annals: ignoring the snapshot of stream \"{}\" at version {} ({}): {}; replaying the "
        "events, it is replaced at the next save",
        stream.value(), version, to_string(reason), why);
  } catch (...) {  // NOLINT(bugprone-empty-catch): logging must never fail a load
  }
}

}  // namespace detail

const char* to_string(SnapshotIgnored reason) noexcept {
  switch (reason) {
    case SnapshotIgnored::kNone:
      return "none";
    case SnapshotIgnored::kUnbound:
      return "unbound";
    case SnapshotIgnored::kHistoryDiffers:
      return "history-differs";
    case SnapshotIgnored::kStateEdited:
      return "state-edited";
  }
  return "unknown";
}

namespace {

// Without `events` it checks nothing. With them, each stored snapshot remembers the id of the
// stream's event at its version when it was saved (the in-memory stand-in for the PostgreSQL
// store's event hash), and a lookup compares it with the event stored now.
class InMemorySnapshotStore final : public SnapshotStore {
 public:
  explicit InMemorySnapshotStore(EventReader* events) : events_(events) {}

  std::optional<Snapshot> load(const StreamId& stream) override {
    auto found = lookup(stream);
    if (!found.usable()) return std::nullopt;
    return std::move(found.snapshot);
  }

  SnapshotLookup lookup(const StreamId& stream) override {
    std::optional<Entry> entry;
    {
      std::lock_guard lock(mutex_);
      const auto found = snapshots_.find(stream.value());
      if (found == snapshots_.end()) return {};
      entry.emplace(found->second);
    }
    return check(std::move(*entry));
  }

  void save(const Snapshot& snapshot) override {
    // Stored as a parsed copy of the serialized text, so that what load() returns is exactly
    // what a store that keeps JSON text (PostgreSQL) would return.
    Entry stored{snapshot, std::nullopt};
    stored.snapshot.state = nlohmann::json::parse(detail::encode_snapshot_state(snapshot));
    if (events_ != nullptr) stored.event_id = event_id_at(snapshot.stream_id, snapshot.version);
    std::lock_guard lock(mutex_);
    auto [entry, created] = snapshots_.try_emplace(snapshot.stream_id.value(), stored);
    if (created) return;
    const Entry& old = entry->second;
    // Keep a newer snapshot of the same schema, unless it no longer matches the events.
    if (old.snapshot.schema_version == snapshot.schema_version &&
        old.snapshot.version > snapshot.version &&
        (events_ == nullptr || is_bound_to_events(old))) {
      return;
    }
    entry->second = std::move(stored);
  }

  void remove(const StreamId& stream) override {
    std::lock_guard lock(mutex_);
    snapshots_.erase(stream.value());
  }

  SnapshotStoreStats stats() const override {
    return SnapshotStoreStats{.ignored_history_differs = ignored_history_differs_.load()};
  }

 private:
  struct Entry {
    Snapshot snapshot;
    // The id of the stream's event at snapshot.version when it was saved (bound stores only);
    // empty when the stream had no such event.
    std::optional<EventId> event_id;
  };

  SnapshotLookup check(Entry entry) {
    const bool usable = events_ == nullptr || is_bound_to_events(entry);
    SnapshotLookup result{std::move(entry.snapshot), SnapshotIgnored::kNone};
    if (!usable) {
      result.ignored = SnapshotIgnored::kHistoryDiffers;
      ++ignored_history_differs_;
      detail::log_snapshot_ignored_by_store(result.snapshot->stream_id, result.snapshot->version,
                                            result.ignored);
    }
    return result;
  }

  std::optional<EventId> event_id_at(const StreamId& stream, StreamVersion version) {
    const auto events = events_->read_stream(stream, {.from = version, .max_count = 1});
    if (events.empty() || events.front().version != version) return std::nullopt;
    return events.front().id;
  }

  // The event the snapshot was taken after is still the stream's event at its version.
  bool is_bound_to_events(const Entry& entry) {
    return entry.event_id.has_value() &&
           event_id_at(entry.snapshot.stream_id, entry.snapshot.version) == entry.event_id;
  }

  EventReader* events_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> snapshots_;
  std::atomic<std::uint64_t> ignored_history_differs_{0};
};

}  // namespace

std::unique_ptr<SnapshotStore> make_in_memory_snapshot_store() {
  return std::make_unique<InMemorySnapshotStore>(nullptr);
}

std::unique_ptr<SnapshotStore> make_in_memory_snapshot_store(EventReader& events) {
  return std::make_unique<InMemorySnapshotStore>(&events);
}

}  // namespace annals
