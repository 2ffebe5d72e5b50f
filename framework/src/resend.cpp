// Recognising re-sent commands through the store (ARCHITECTURE decision 4; command
// fingerprints): what the recent-commands ring of an aggregate cannot answer.
#include "annals/framework/detail/resend.hpp"

#include <cstddef>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/framework/metadata.hpp"

namespace annals::detail {
namespace {

// Events read per round trip while completing an original result.
constexpr std::size_t kResendPage = 256;

}  // namespace

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
    // Stores refuse a re-send whose content differs from the stored events, which
    // the probe's always does: the error then locates the command's first event. Any other
    // idempotency error means it is stored in another stream: not a re-send to this one.
    if (!e.changed_version() || e.changed_stream() != stream.value()) return std::nullopt;
    first.emplace(
        AppendResult{stream, *e.changed_version(), *e.changed_version(), Position::start()});
  }
  return complete_original_result(store, *first, command_id);
}

void check_same_command(EventStore& store, const AppendResult& original,
                        const std::string& command_id, const std::string& fingerprint) {
  if (fingerprint.empty()) return;
  const auto events =
      store.read_stream(original.stream_id, {.from = original.first_version, .max_count = 1});
  if (events.empty()) return;
  const auto stored = EventMetadata::of(events.front()).fingerprint;
  if (stored.empty() || stored == fingerprint) return;
  throw IdempotencyError("command id \"" + command_id + "\" was already used for a different " +
                         "command (its events are in stream \"" + original.stream_id.value() +
                         "\" from version " + std::to_string(original.first_version) +
                         "); a re-sent command must be the same command, and a new command "
                         "needs a new command id. Nothing written");
}

}  // namespace annals::detail
