// The recent-commands ring an aggregate carries: the last commands of its stream it has seen,
// so that a re-sent command is answered without deciding it again (ARCHITECTURE decision 4).
// Internal to annals::framework (Repository, CommandBus); not part of the public API.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "annals/eventstore/types.hpp"

namespace annals::detail {

/// One command whose events an aggregate has seen (read or written): enough to answer a
/// re-send of it without deciding again.
struct CommandRecord {
  /// Hash of the command id (command_id_hash): groups the command's consecutive events.
  std::uint64_t command_hash = 0;
  /// The id of its first event seen; for a complete record, derive_event_id(command id, 0).
  EventId first_event;
  StreamVersion first_version = 0;
  StreamVersion last_version = 0;
  /// Position of its last event.
  Position position;
};

/// The hash RecentCommands groups events by.
[[nodiscard]] std::uint64_t command_id_hash(std::string_view command_id) noexcept;
/// The hash of the command id in `event`'s metadata, or empty when it has none.
[[nodiscard]] std::optional<std::uint64_t> command_hash_of(const RecordedEvent& event) noexcept;

/// The most recent commands of one stream as one aggregate knows them, oldest first, at most
/// kCapacity: a fixed-size ring inside the aggregate (no allocation; copied with it). Events of
/// one command are consecutive in the stream (one append), so a command is a run of
/// consecutive versions whose metadata carry the same command id.
/// Thread safety: a value, like the Aggregate that holds it.
class RecentCommands {
 public:
  static constexpr std::size_t kCapacity = 32;

  /// Stream event `version`, seen after every event recorded so far: extends the newest
  /// command or starts a new one, forgetting the oldest when full. `hash` empty: an event
  /// without a command id.
  void add_newer(std::optional<std::uint64_t> hash, const EventId& id, StreamVersion version,
                 const Position& position) noexcept;

  /// Stream event `version`, older than every event recorded so far (a backward read):
  /// extends the oldest command back or adds an older one. Returns false, recording nothing,
  /// when that needs a new record and all kCapacity are taken.
  bool add_older(std::optional<std::uint64_t> hash, const EventId& id, StreamVersion version,
                 const Position& position) noexcept;

  /// The command whose first event has id `first_event`, or null.
  [[nodiscard]] const CommandRecord* find(const EventId& first_event) const noexcept;

  /// Every command that starts after this version is recorded (0: every command).
  [[nodiscard]] StreamVersion known_after() const noexcept { return known_after_; }
  [[nodiscard]] bool full() const noexcept { return size_ == kCapacity; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool looked_back() const noexcept { return looked_back_; }

  /// Forgets everything: only commands after `version` will be known (a load from a snapshot
  /// at `version`).
  void start_after(StreamVersion version) noexcept;
  void set_looked_back() noexcept { looked_back_ = true; }

 private:
  CommandRecord& at(std::size_t i) noexcept { return records_[(begin_ + i) % kCapacity]; }
  const CommandRecord& at(std::size_t i) const noexcept {
    return records_[(begin_ + i) % kCapacity];
  }

  std::array<CommandRecord, kCapacity> records_{};
  std::size_t begin_ = 0;  // index of the oldest
  std::size_t size_ = 0;
  StreamVersion known_after_ = 0;
  bool looked_back_ = false;
};

}  // namespace annals::detail
