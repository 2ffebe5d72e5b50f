// Event metadata as first-class values: who and what caused an event.
//
// The command bus writes a CommandContext into the metadata JSON object of every event a
// command produces; EventMetadata reads it back from a RecordedEvent. Keys other than the
// reserved ones below (for example a W3C `traceparent`) pass through untouched, both ways.
//
//   bus.send(Withdraw{"42", 100}, {.command_id = request_id, .actor = "alice",
//                                  .extra = {{"traceparent", traceparent}}});
//   const auto meta = annals::EventMetadata::of(recorded_event);  // meta.actor == "alice"
//
// Thread safety: values; distinct objects may be used from any thread.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "annals/eventstore/types.hpp"

namespace annals {

/// The metadata keys annals owns. Free-form keys must not use them.
namespace metadata_keys {
inline constexpr std::string_view kCommandId = "command_id";
inline constexpr std::string_view kCorrelationId = "correlation_id";
inline constexpr std::string_view kCausationId = "causation_id";
inline constexpr std::string_view kActor = "actor";
/// What the command was (command_fingerprint), so that a command id reused for another command
/// is recognised (CommandBus, FingerprintedCommand).
inline constexpr std::string_view kCommandFingerprint = "command_fingerprint";
}  // namespace metadata_keys

/// Where a command comes from; copied into the metadata of every event it produces.
struct CommandContext {
  /// Identifies the command. Event ids derive from it (derive_event_id), so sending the same
  /// command id again appends nothing and returns the original result. Default empty: the bus
  /// generates a fresh id, and the command is not recognised if sent again.
  std::string command_id;
  /// The conversation or workflow the command belongs to. Default empty: the command id.
  std::string correlation_id;
  /// The message that caused the events. Default empty: the command id.
  std::string causation_id;
  /// Who sent the command (a user or service name). Default empty: not recorded.
  std::string actor;
  /// What the command was: command_fingerprint() of it. CommandBus sets it for command types
  /// that are FingerprintedCommand, and on a re-send of the command id compares it with the
  /// stored one to refuse a reused id. Default empty: not recorded.
  std::string fingerprint;
  /// Further metadata keys (e.g. "traceparent"), copied untouched into every event. Must be
  /// a JSON object without the reserved keys of metadata_keys. Default empty.
  nlohmann::json extra = nlohmann::json::object();
};

/// The metadata of a stored event, read back.
struct EventMetadata {
  std::string command_id;      ///< empty when absent
  std::string correlation_id;  ///< empty when absent
  std::string causation_id;    ///< empty when absent
  std::string actor;           ///< empty when absent
  std::string fingerprint;     ///< the command's fingerprint; empty when absent
  /// When the store recorded the event (the store's clock, not the writer's).
  std::chrono::system_clock::time_point recorded_at{};
  /// Every other key of the stored metadata object, untouched.
  nlohmann::json extra = nlohmann::json::object();

  /// Reads `event.metadata` and `event.recorded_at`. Reserved keys that are not strings are
  /// kept in `extra` rather than dropped. Never throws on odd metadata.
  [[nodiscard]] static EventMetadata of(const RecordedEvent& event);

  friend bool operator==(const EventMetadata&, const EventMetadata&) = default;
};

/// The metadata object for the events of a command: the context's ids (defaults resolved: an
/// empty correlation or causation id becomes the command id), the actor and fingerprint when
/// set, and the extra keys. Requires: `context.command_id` non-empty.
/// Throws: InvalidArgumentError when `extra` is not an object or uses a reserved key.
[[nodiscard]] nlohmann::json command_metadata(const CommandContext& context);

/// Checks a context without building anything: `extra` is an object without reserved keys.
/// Throws: InvalidArgumentError, as command_metadata.
void validate_command_context(const CommandContext& context);

/// The fingerprint of a command: a name-based UUID (RFC 4122 version 5, SHA-1), as text, of its
/// stable name and its JSON form (compact, object keys sorted, as nlohmann::json dumps them).
/// Two commands have the same fingerprint exactly when they have the same name and JSON.
/// Requires: non-empty `name`. Cost: one dump and one SHA-1.
[[nodiscard]] std::string command_fingerprint(std::string_view name, const nlohmann::json& body);

/// A command type whose command id the bus can tell a re-send from a reuse with: it has a
/// stable name (`static constexpr std::string_view kCommandName = "bank.Deposit";`, like an
/// event's kTypeName, never derived from the C++ name) and a JSON form (nlohmann to_json, e.g.
/// NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE). Its fingerprint is command_fingerprint(kCommandName,
/// JSON). Commands that are not keep working: their re-sends are recognised by command id
/// alone (CommandBus).
template <typename C>
concept FingerprintedCommand = requires(const C& command) {
  { C::kCommandName } -> std::convertible_to<std::string_view>;
  nlohmann::json(command);
};

/// The id of event number `index` (0-based) produced by command `command_id`: a name-based
/// UUID (RFC 4122 version 5, SHA-1) of "<command_id>/<index>" in the annals namespace. The same
/// inputs give the same id in every process, which is what makes commands idempotent
/// (ARCHITECTURE decision 4). Requires: non-empty `command_id`. Cost: one SHA-1 of the name.
[[nodiscard]] EventId derive_event_id(std::string_view command_id, std::size_t index);

}  // namespace annals
