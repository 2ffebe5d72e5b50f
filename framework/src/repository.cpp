// The non-template half of the repository: snapshot policies and the logging of snapshot
// trouble (ARCHITECTURE decision 10).
#include "annals/framework/repository.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "annals/eventstore/detail/logger.hpp"

namespace annals {
namespace {

// Logging must never turn a tolerated failure into a thrown one.
template <typename... Args>
void warn(spdlog::format_string_t<Args...> format, Args&&... args) noexcept {
  try {
    if (auto log = detail::logger()) log->warn(format, std::forward<Args>(args)...);
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing better to do than not crash
  }
}

}  // namespace

SnapshotPolicy SnapshotPolicy::every(StreamVersion events) {
  if (events < 1) {
    throw InvalidArgumentError("SnapshotPolicy::every: " + std::to_string(events) +
                               " is not a positive number of events");
  }
  return SnapshotPolicy(
      [events](const SnapshotCandidate& c) { return c.events_since_snapshot >= events; });
}

SnapshotPolicy SnapshotPolicy::when(Predicate predicate) {
  if (!predicate) throw InvalidArgumentError("SnapshotPolicy::when: empty predicate");
  return SnapshotPolicy(std::move(predicate));
}

namespace detail {

void log_snapshot_load_failure(const StreamId& stream, const char* why) noexcept {
  warn("annals: cannot load the snapshot of stream \"{}\" ({}); replaying all its events",
       stream.value(), why);
}

void log_snapshot_ignored(const StreamId& stream, const char* why) noexcept {
  warn("annals: ignoring the snapshot of stream \"{}\": {}; it is replaced at the next save",
       stream.value(), why);
}

void log_snapshot_write_failure(const StreamId& stream, StreamVersion version,
                                const char* why) noexcept {
  warn(
      "annals: cannot save the snapshot of stream \"{}\" at version {} ({}); the command "
      "succeeded, the next snapshot is due after the policy's interval",
      stream.value(), version, why);
}

void log_snapshot_remove_failure(const StreamId& stream, const char* why) noexcept {
  warn("annals: cannot remove the snapshot of stream \"{}\" ({})", stream.value(), why);
}

void throw_unregistered(std::string_view category, std::string_view type) {
  throw InvalidArgumentError("decider \"" + std::string(category) + "\": its event type \"" +
                             std::string(type) +
                             "\" is not registered (call registry.register_events<Decider>())");
}

void throw_state_not_json(std::string_view category) {
  throw InvalidArgumentError("decider \"" + std::string(category) +
                             "\": a snapshot policy needs JSON conversions for its State");
}

}  // namespace detail
}  // namespace annals
