// Event metadata and deterministic event ids (ARCHITECTURE decision 4).
#include "annals/framework/metadata.hpp"

#include <array>
#include <string>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/uuid.hpp>

#include "annals/eventstore/error.hpp"

namespace annals {
namespace {

constexpr std::array<std::string_view, 5> kReserved = {
    metadata_keys::kCommandId, metadata_keys::kCorrelationId, metadata_keys::kCausationId,
    metadata_keys::kActor, metadata_keys::kCommandFingerprint};

// The namespace of annals' name-based event ids (a fixed, random UUID; never change it: ids of
// stored events derive from it).
constexpr boost::uuids::uuid kEventIdNamespace = {{0x6b, 0x1f, 0x4e, 0x52, 0x9d, 0x0c, 0x4a, 0x7e,
                                                   0xb3, 0x28, 0x5e, 0x91, 0xc4, 0x07, 0xd2, 0x6a}};

// The namespace of command fingerprints (a fixed, random UUID; never change it: stored
// fingerprints derive from it).
constexpr boost::uuids::uuid kFingerprintNamespace = {{0x2d, 0x93, 0x5a, 0x61, 0x0e, 0x7b, 0x4c,
                                                       0x18, 0x8f, 0x46, 0xa1, 0x3c, 0x72, 0xe9,
                                                       0x05, 0xbd}};

}  // namespace

EventMetadata EventMetadata::of(const RecordedEvent& event) {
  EventMetadata meta;
  meta.recorded_at = event.recorded_at;
  if (!event.metadata.is_object()) return meta;
  for (const auto& [key, value] : event.metadata.items()) {
    std::string* field = nullptr;
    if (key == metadata_keys::kCommandId) field = &meta.command_id;
    if (key == metadata_keys::kCorrelationId) field = &meta.correlation_id;
    if (key == metadata_keys::kCausationId) field = &meta.causation_id;
    if (key == metadata_keys::kActor) field = &meta.actor;
    if (key == metadata_keys::kCommandFingerprint) field = &meta.fingerprint;
    if (field != nullptr && value.is_string()) {
      *field = value.get<std::string>();
    } else {
      meta.extra[key] = value;
    }
  }
  return meta;
}

void validate_command_context(const CommandContext& context) {
  if (!context.extra.is_object()) {
    throw InvalidArgumentError(std::string("command metadata: extra must be a JSON object, not ") +
                               context.extra.type_name());
  }
  for (const auto key : kReserved) {
    if (context.extra.contains(key)) {
      throw InvalidArgumentError("command metadata: extra uses the reserved key \"" +
                                 std::string(key) + "\"; set the CommandContext field instead");
    }
  }
}

nlohmann::json command_metadata(const CommandContext& context) {
  if (context.command_id.empty()) {
    throw InvalidArgumentError("command metadata: the command id is empty");
  }
  validate_command_context(context);
  nlohmann::json meta = context.extra;
  meta[std::string(metadata_keys::kCommandId)] = context.command_id;
  meta[std::string(metadata_keys::kCorrelationId)] =
      context.correlation_id.empty() ? context.command_id : context.correlation_id;
  meta[std::string(metadata_keys::kCausationId)] =
      context.causation_id.empty() ? context.command_id : context.causation_id;
  if (!context.actor.empty()) meta[std::string(metadata_keys::kActor)] = context.actor;
  if (!context.fingerprint.empty()) {
    meta[std::string(metadata_keys::kCommandFingerprint)] = context.fingerprint;
  }
  return meta;
}

std::string command_fingerprint(std::string_view name, const nlohmann::json& body) {
  if (name.empty()) throw InvalidArgumentError("command_fingerprint: the command name is empty");
  std::string text(name);
  text.push_back('\n');
  text += body.dump();
  boost::uuids::name_generator_sha1 generator(kFingerprintNamespace);
  return EventId(generator(text)).to_string();
}

EventId derive_event_id(std::string_view command_id, std::size_t index) {
  if (command_id.empty()) throw InvalidArgumentError("derive_event_id: the command id is empty");
  std::string name(command_id);
  name.push_back('/');
  name += std::to_string(index);
  boost::uuids::name_generator_sha1 generator(kEventIdNamespace);
  return EventId(generator(name));
}

}  // namespace annals
