// How `read`, `read-all` and `tail` print events: JSON lines (json_output.hpp) for programs, or
// one aligned line per event for people (a terminal without --json), after the filters the
// server cannot apply (--since, --until, and read's --type).
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "annals/eventstore/types.hpp"

namespace annals {
class EventRegistry;  // annals/framework/event_registry.hpp
}  // namespace annals

namespace annals::cli {

/// What EventPrinter prints and how.
struct PrintOptions {
  /// Upcast each event to its current schema (a CLI built with the user's registry).
  const EventRegistry* registry = nullptr;
  /// Only events of these types (stored or, with a registry, upcast into). Empty: all.
  std::vector<std::string> types{};
  /// Only events recorded at or after `since` and at or before `until`.
  std::optional<std::chrono::system_clock::time_point> since = std::nullopt;
  std::optional<std::chrono::system_clock::time_point> until = std::nullopt;
  /// One line for people per event instead of JSON.
  bool human = false;
  /// In the human form, start each line with the event's position (the global log's verbs).
  bool with_position = false;
};

/// Prints events one by one. Not thread-safe: one printer per output.
class EventPrinter {
 public:
  EventPrinter(std::ostream& out, PrintOptions options);

  /// Prints `event` (every part of a split) unless a filter drops it; returns whether it
  /// printed anything. An event that cannot be decoded or upcast is printed as stored with
  /// the reason and counted in undecodable().
  bool print(const RecordedEvent& event);

  /// Whether `event` passes the time filters.
  [[nodiscard]] bool in_time_range(const RecordedEvent& event) const;

  /// Events printed so far, and how many of them were undecodable.
  [[nodiscard]] std::size_t printed() const noexcept { return printed_; }
  [[nodiscard]] std::size_t undecodable() const noexcept { return undecodable_; }

 private:
  bool print_upcast(const RecordedEvent& event);
  void print_line(const RecordedEvent& event, const std::string& type, const std::string& data_json,
                  const std::string& note);
  /// Whether `type` is one of options.types.
  [[nodiscard]] bool asked(const std::string& type) const;
  /// Whether an event stored as `type` may hold an asked type (itself or an older name).
  [[nodiscard]] bool stored_as_asked(const std::string& type) const;

  std::ostream& out_;
  PrintOptions options_;
  std::vector<std::string> stored_types_;  // options.types and their older stored names
  std::size_t printed_ = 0;
  std::size_t undecodable_ = 0;
};

/// `types` followed by the older stored names that `registry` upcasts into one of them
/// (EventRegistry::source_types: renamed, split), each once; `types` alone without a registry.
/// What the server-side filter of read-all selects, and what the printer lets through.
[[nodiscard]] std::vector<std::string> with_stored_names(const std::vector<std::string>& types,
                                                         const EventRegistry* registry);

/// `text` parsed as a time (annals::parse_timestamp) for the flag `flag`.
/// Throws: InvalidArgumentError naming the flag and the text.
[[nodiscard]] std::chrono::system_clock::time_point parse_time_flag(const std::string& flag,
                                                                    const std::string& text);

}  // namespace annals::cli
