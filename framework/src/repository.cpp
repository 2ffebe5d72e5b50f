// The non-template half of the repository: snapshot policies, logging, and recognising
// re-sent commands (ARCHITECTURE decisions 4 and 10).
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

// Events read per round trip while completing an original result.
constexpr std::size_t kResendPage = 256;

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

AppendResult complete_original_result(EventStore& store, const AppendResult& partial,
                                      const std::string& command_id) {
  AppendResult result = partial;
  std::size_t k = 0;
  StreamVersion from = partial.first_version;
  for (;;) {
    const auto events =
        store.read_stream(partial.stream_id, {.from = from, .max_count = kResendPage});
    for (const auto& event : events) {
      if (event.id != derive_event_id(command_id, k)) return result;
      result.last_version = event.version;
      result.position = event.position;
      ++k;
    }
    if (events.size() < kResendPage) return result;
    from = events.back().version + 1;
  }
}

std::optional<AppendResult> find_original_result(EventStore& store, const StreamId& stream,
                                                 const std::string& command_id,
                                                 bool stream_exists) {
  // The probe must never write. It expects "no stream" of a stream that exists (streams never
  // disappear), so the store refuses it with a ConcurrencyError unless its id is stored, which
  // every store checks before versions: stored in this stream, its content differs, so the
  // store refuses it as a changed re-send naming the stored version (the contract's
  // ResendWithChangedContentThrowsIdempotencyErrorNamingTheEvent); a store that still answered
  // with the original result would do as well.
  if (!stream_exists && !store.stream_version(stream)) return std::nullopt;
  std::vector<NewEvent> probe;
  probe.push_back(NewEvent{.id = derive_event_id(command_id, 0),
                           .type = "annals.resend-probe",
                           .schema_version = 1,
                           .data = nlohmann::json::object(),
                           .metadata = nlohmann::json::object()});
  std::optional<AppendResult> first;
  try {
    first.emplace(store.append(stream, ExpectedVersion::no_stream(), std::move(probe)));
  } catch (const ConcurrencyError&) {
    return std::nullopt;  // the command's first event is not stored: not a re-send
  } catch (const IdempotencyError& e) {
    // Stores refuse a re-send whose content differs from the stored events (issue 11), which
    // the probe's always does: the error then locates the command's first event. Any other
    // idempotency error means it is stored in another stream: not a re-send to this one.
    if (!e.changed_version() || e.changed_stream() != stream.value()) return std::nullopt;
    first.emplace(
        AppendResult{stream, *e.changed_version(), *e.changed_version(), Position::start()});
  }
  return complete_original_result(store, *first, command_id);
}

std::string resolve_command_id(const CommandContext& context) {
  return context.command_id.empty() ? EventId::generate().to_string() : context.command_id;
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
