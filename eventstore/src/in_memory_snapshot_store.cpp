// The in-memory SnapshotStore, and the validation every snapshot store shares (decision 10:
// snapshots are a cache; one stored per stream; a newer one of the same schema wins).
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "annals/eventstore/error.hpp"
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

}  // namespace detail

namespace {

class InMemorySnapshotStore final : public SnapshotStore {
 public:
  std::optional<Snapshot> load(const StreamId& stream) override {
    std::lock_guard lock(mutex_);
    const auto found = snapshots_.find(stream.value());
    if (found == snapshots_.end()) return std::nullopt;
    return found->second;
  }

  void save(const Snapshot& snapshot) override {
    // Stored as a parsed copy of the serialized text, so that what load() returns is exactly
    // what a store that keeps JSON text (PostgreSQL) would return.
    auto stored = snapshot;
    stored.state = nlohmann::json::parse(detail::encode_snapshot_state(snapshot));
    std::lock_guard lock(mutex_);
    auto [entry, created] = snapshots_.try_emplace(snapshot.stream_id.value(), stored);
    if (created) return;
    const Snapshot& old = entry->second;
    if (old.schema_version == snapshot.schema_version && old.version > snapshot.version) return;
    entry->second = std::move(stored);
  }

  void remove(const StreamId& stream) override {
    std::lock_guard lock(mutex_);
    snapshots_.erase(stream.value());
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, Snapshot> snapshots_;
};

}  // namespace

std::unique_ptr<SnapshotStore> make_in_memory_snapshot_store() {
  return std::make_unique<InMemorySnapshotStore>();
}

}  // namespace annals
