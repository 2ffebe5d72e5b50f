// The recent-commands ring (ARCHITECTURE decision 4): which commands an aggregate has seen.
#include "annals/framework/detail/recent_commands.hpp"

#include <algorithm>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "annals/framework/metadata.hpp"

namespace annals::detail {

std::uint64_t command_id_hash(std::string_view command_id) noexcept {
  return std::hash<std::string_view>{}(command_id);
}

std::optional<std::uint64_t> command_hash_of(const RecordedEvent& event) noexcept {
  // Through the object's map rather than json::find: comparing json iterators may throw
  // (iterators of different containers), which clang-tidy cannot rule out for a noexcept.
  const auto* object = event.metadata.get_ptr<const nlohmann::json::object_t*>();
  if (object == nullptr) return std::nullopt;
  const auto found = object->find(metadata_keys::kCommandId);
  if (found == object->end()) return std::nullopt;
  const auto* command_id = found->second.get_ptr<const std::string*>();  // null unless a string
  if (command_id == nullptr) return std::nullopt;
  return command_id_hash(*command_id);
}

void RecentCommands::add_newer(std::optional<std::uint64_t> hash, const EventId& id,
                               StreamVersion version, const Position& position) noexcept {
  if (!hash) return;
  if (size_ > 0) {
    CommandRecord& newest = at(size_ - 1);
    if (newest.command_hash == *hash && newest.last_version + 1 == version) {
      newest.last_version = version;
      newest.position = position;
      return;
    }
  }
  if (size_ == kCapacity) {
    known_after_ = std::max(known_after_, at(0).last_version);
    begin_ = (begin_ + 1) % kCapacity;
    --size_;
  }
  at(size_++) = CommandRecord{*hash, id, version, version, position};
}

bool RecentCommands::add_older(std::optional<std::uint64_t> hash, const EventId& id,
                               StreamVersion version, const Position& position) noexcept {
  if (hash) {
    if (size_ > 0 && at(0).command_hash == *hash && at(0).first_version == version + 1) {
      at(0).first_version = version;
      at(0).first_event = id;
    } else {
      if (size_ == kCapacity) return false;
      begin_ = (begin_ + kCapacity - 1) % kCapacity;
      ++size_;
      at(0) = CommandRecord{*hash, id, version, version, position};
    }
  }
  known_after_ = std::min(known_after_, version - 1);
  return true;
}

const CommandRecord* RecentCommands::find(const EventId& first_event) const noexcept {
  for (std::size_t i = size_; i-- > 0;) {  // newest first: re-sends are usually recent
    if (at(i).first_event == first_event) return &at(i);
  }
  return nullptr;
}

void RecentCommands::start_after(StreamVersion version) noexcept {
  *this = RecentCommands();
  known_after_ = version;
}

}  // namespace annals::detail
