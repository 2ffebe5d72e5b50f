// The framework's side of personal data: envelope detection, the SubjectForgotten stream and
// the typed error of an envelope that does not open (personal_data_codec.hpp). No cryptography
// here: annals::framework does not link OpenSSL (annals::personal_data does).
#include "annals/framework/personal_data_codec.hpp"

#include <algorithm>
#include <utility>

#include "annals/eventstore/subject_key_store.hpp"

namespace annals {

StreamId forgotten_stream_of(std::string_view subject) {
  validate_subject(subject);
  return StreamId(std::string(kSubjectCategory) + "-" + std::string(subject));
}

TamperedPersonalDataError::TamperedPersonalDataError(const RecordedEvent& event, std::string field,
                                                     const std::string& why)
    : CorruptionError("personal data \"" + field + "\" of event " + event.id.to_string() + " (\"" +
                      event.type + "\", version " + std::to_string(event.version) +
                      " of stream \"" + event.stream_id.value() + "\") does not open: " + why),
      event_id_(event.id),
      stream_(event.stream_id.value()),
      version_(event.version),
      field_(std::move(field)) {}

bool is_envelope(const nlohmann::json& value) noexcept {
  return value.is_object() && value.contains(kEncryptedMarker);
}

bool may_hold_envelope(const RecordedEvent& event) {
  if (event.is_undecodable()) return false;
  if (const auto text = event.data.text()) {
    return text->find(kEncryptedMarker) != std::string_view::npos;
  }
  const auto& data = event.data.get_json();
  if (!data.is_object()) return false;
  return std::any_of(data.begin(), data.end(),
                     [](const nlohmann::json& member) { return is_envelope(member); });
}

}  // namespace annals
