// The framework's side of personal data (crypto-shredding; issue 16, docs/personal-data.md):
// the envelope format, the redaction marker, the SubjectForgotten signal, and the interface
// through which the EventRegistry seals and opens personal data (PersonalDataCodec). The
// implementation with keys and AES-256-GCM is annals::PersonalData
// (annals/framework/personal_data.hpp, CMake target annals::personal_data, which links OpenSSL's
// libcrypto; annals::framework itself does not).
//
// What is stored in place of a personal-data field (the envelope), a JSON object:
//   {"annals:encrypted": "AES-256-GCM", "subject": "account-42", "key": "<key id, a UUID>",
//    "kind": "string", "nonce": "<base64, 12 bytes>", "ciphertext": "<base64, ciphertext+tag>"}
//
// What a read gets for a field whose key is destroyed (or unknown to the key store): the marker
// of the field's JSON kind: the string kRedacted ("[redacted]") for a string, 0 for a number,
// false for a boolean, {} for an object, [] for an array, null for null. A typed string field
// therefore decodes as "[redacted]"; declare personal data on string fields (or on types whose
// from_json accepts the empty value of their kind).
//
// Thread safety: the free functions may be called from any thread; implementations of
// PersonalDataCodec are thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"

namespace annals {

/// What a read gets, in a string field, for personal data whose key is destroyed.
inline constexpr std::string_view kRedacted = "[redacted]";
/// The member that marks a JSON object as an envelope of encrypted personal data.
inline constexpr std::string_view kEncryptedMarker = "annals:encrypted";
/// The category of the streams that SubjectForgotten events go to: "annals.subject-<subject>".
inline constexpr std::string_view kSubjectCategory = "annals.subject";

/// The signal that a subject was forgotten, appended by PersonalData::forget to the stream
/// forgotten_stream_of(subject). Read models that copied the subject's personal data handle it
/// (`on<SubjectForgotten>`) and erase their copies. Register it with the EventRegistry of every
/// process that handles it (use_personal_data() registers it).
struct SubjectForgotten {
  static constexpr std::string_view kTypeName = "annals.SubjectForgotten";
  static constexpr int kSchemaVersion = 1;
  /// The subject, as given to forget().
  std::string subject;
  /// Every key the subject had (all destroyed), sorted.
  std::vector<std::string> key_ids;

  friend bool operator==(const SubjectForgotten&, const SubjectForgotten&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SubjectForgotten, subject, key_ids)

/// "annals.subject-<subject>". Throws: InvalidArgumentError (an invalid subject).
[[nodiscard]] StreamId forgotten_stream_of(std::string_view subject);

/// A stored envelope that does not open: its ciphertext, nonce or envelope was changed (the
/// AES-GCM tag does not match), or it is malformed. Names the event and the field; never retried.
class TamperedPersonalDataError : public CorruptionError {
 public:
  TamperedPersonalDataError(const RecordedEvent& event, std::string field, const std::string& why);
  [[nodiscard]] const EventId& event_id() const noexcept { return event_id_; }
  [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
  [[nodiscard]] StreamVersion version() const noexcept { return version_; }
  [[nodiscard]] const std::string& field() const noexcept { return field_; }

 private:
  EventId event_id_;
  std::string stream_;
  StreamVersion version_;
  std::string field_;
};

/// Whether `value` is an envelope (an object with the member kEncryptedMarker).
/// Throws: nothing.
[[nodiscard]] bool is_envelope(const nlohmann::json& value) noexcept;
/// Whether the data of `event` may hold an envelope: a search of its stored text when it has
/// one (no parse), else a look at its top-level members. Throws: std::bad_alloc only.
[[nodiscard]] bool may_hold_envelope(const RecordedEvent& event);

/// Seals and opens personal data for the EventRegistry (EventRegistry::use_personal_data).
/// annals::PersonalData is the implementation; tests may provide their own.
/// Thread safety: implementations are fully thread-safe.
class PersonalDataCodec {
 public:
  PersonalDataCodec() = default;
  PersonalDataCodec(const PersonalDataCodec&) = delete;
  PersonalDataCodec& operator=(const PersonalDataCodec&) = delete;
  virtual ~PersonalDataCodec() = default;

  /// Replaces each of `fields` of the JSON object `data` by its envelope under `subject`'s key
  /// (created on first use). Throws: InvalidArgumentError naming `type` and the field when
  /// `data` is not an object or lacks a field (nothing changed then), or an invalid subject;
  /// the key store's errors. Cost: one key-store round trip.
  virtual void seal_fields(nlohmann::json& data, std::string_view subject,
                           const std::vector<std::string>& fields, std::string_view type) = 0;

  /// The data of `event` with every envelope among its top-level members opened, or replaced
  /// by the redaction marker of its kind when the key is destroyed or unknown; empty when the
  /// data holds no envelope (use event.data as it is).
  /// Throws: TamperedPersonalDataError (an envelope that does not open, naming event and
  /// field), InvalidArgumentError (a key this codec cannot unwrap), UnavailableError.
  /// Cost: a text search when the event holds no envelope; otherwise one key-store round trip
  /// per key used in the event.
  [[nodiscard]] virtual std::optional<nlohmann::json> reveal(const RecordedEvent& event) = 0;
};

}  // namespace annals
