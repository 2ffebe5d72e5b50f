// Personal data that can be forgotten (crypto-shredding; issue 16, docs/personal-data.md).
//
// An event type declares which of its fields are personal data of a subject; the framework
// stores those fields encrypted with the subject's own key (AES-256-GCM, OpenSSL), and
// forget(subject) destroys that key. The log is never rewritten: the hash chains cover the
// ciphertext, so `annals verify` and every anchor keep passing, and after forgetting every read
// path gets the field replaced by the redaction marker kRedacted.
//
//   auto keys = annals::make_in_memory_subject_key_store();  // or a PostgreSQL one
//   annals::PersonalData personal(*keys, *store, {.master_key = MasterKey::from_environment()});
//   registry.personal_data<AccountOpened>({"owner"});  // subject: the event's stream
//   registry.use_personal_data(personal);              // seal on save, open on read
//   personal.forget("account-42");                     // key gone, SubjectForgotten appended
//
// The envelope format and the redaction markers are described in personal_data_codec.hpp. The
// plaintext is the field's JSON text; the associated data binds it to the subject, the field
// name, the key id and the kind, so an envelope moved to another field or subject fails to open.
// CMake target: annals::personal_data (links OpenSSL's libcrypto).
//
// Thread safety: every method of PersonalData and MasterKey may be called from any thread at
// once (the key store is thread-safe).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/eventstore/subject_key_store.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/framework/personal_data_codec.hpp"

namespace annals {

/// A 256-bit key that wraps (encrypts) subject keys before they are stored, so that the key
/// table alone (a dump, a stolen backup) reveals nothing. Keep it outside the database.
/// Its text form is 64 hex digits or the base64 of 32 bytes (`openssl rand -base64 32`).
/// The bytes are wiped when the object is destroyed; no method prints them.
class MasterKey {
 public:
  /// The master key named by the environment: the file at ANNALS_MASTER_KEY_FILE, else the
  /// text of ANNALS_MASTER_KEY; empty when neither is set.
  /// Throws: InvalidArgumentError (both set, an unreadable file, text that is not a key; the
  /// message never includes the text).
  [[nodiscard]] static std::optional<MasterKey> from_environment();
  /// The key in the file at `path` (its text form; surrounding blanks are ignored).
  /// Throws: InvalidArgumentError (unreadable file, not a key).
  [[nodiscard]] static MasterKey from_file(const std::string& path);
  /// The key from its text form. Throws: InvalidArgumentError (not a key).
  [[nodiscard]] static MasterKey from_text(std::string_view text);

  MasterKey(const MasterKey& other);
  MasterKey& operator=(const MasterKey& other);
  ~MasterKey();

  /// A public fingerprint (16 hex digits of a SHA-256 of the key), stored with each wrapped
  /// key so that a wrong master key is reported as such.
  [[nodiscard]] const std::string& fingerprint() const noexcept { return fingerprint_; }

 private:
  explicit MasterKey(const std::array<std::uint8_t, 32>& bytes);
  friend class PersonalData;
  std::array<std::uint8_t, 32> bytes_{};
  std::string fingerprint_;
};

struct PersonalDataOptions {
  /// Wraps new subject keys before they are stored; unwraps keys stored wrapped. Default none:
  /// keys are stored as they are (protect the key table by other means, docs/personal-data.md).
  std::optional<MasterKey> master_key;
  /// Where aggregates' snapshots are kept, if anywhere. An aggregate's snapshot holds its state
  /// in clear, personal data included, so forget() removes the snapshot of the stream named
  /// like the subject: the default subject of an event is its own stream, so this is the
  /// aggregate that holds the subject's data. Personal data of a subject that lives in another
  /// aggregate's state (a computed subject other than that aggregate's stream) is not found
  /// this way: remove those snapshots yourself, or keep such data out of snapshot state
  /// (docs/personal-data.md). Not owned; must outlive the PersonalData. Default: none.
  SnapshotStore* snapshots = nullptr;
};

/// What forget() did.
struct ForgetResult {
  std::string subject;
  /// Keys destroyed by this call: 0 when the subject was forgotten before (or never had one).
  std::size_t keys_destroyed = 0;
  /// Every key the subject had, all destroyed now (sorted).
  std::vector<std::string> key_ids;
  /// Where the SubjectForgotten event is (a repeated forget returns the first one's result).
  AppendResult event;
  /// Whether the snapshot of the stream named like the subject was removed
  /// (PersonalDataOptions::snapshots set, and the subject is a valid stream id); true also when
  /// there was none to remove.
  bool snapshot_removed = false;
};

/// Seals and opens personal data with per-subject keys, and forgets subjects.
/// Thread safety: fully thread-safe.
class PersonalData final : public PersonalDataCodec {
 public:
  /// `keys` holds the subjects' keys; `log` receives SubjectForgotten events. Both must
  /// outlive this object.
  PersonalData(SubjectKeyStore& keys, EventWriter& log, PersonalDataOptions options = {});
  PersonalData(const PersonalData&) = delete;
  PersonalData& operator=(const PersonalData&) = delete;
  ~PersonalData() override;

  /// Forgets `subject`: destroys its keys (SubjectKeyStore::forget), then appends a
  /// SubjectForgotten event to forgotten_stream_of(subject), whose id derives from the subject
  /// and its key ids. Forgetting twice is harmless: nothing more is destroyed, and the event is
  /// not appended again (the store recognises its id and returns the first result). When the
  /// append fails after the keys were destroyed, call forget again: the data is gone already,
  /// the event follows. Last, with PersonalDataOptions::snapshots, the snapshot of the stream
  /// named like the subject is removed (a failure there throws too; call forget again).
  /// Throws: InvalidArgumentError (invalid subject), UnavailableError / OutcomeUnknownError
  /// (retry). Cost: one key-store round trip + one append (+ one snapshot removal).
  ForgetResult forget(std::string_view subject);

  /// The envelope of `value` (any JSON) as field `field` of `subject`, sealed with the
  /// subject's key (created on first use).
  /// Throws: InvalidArgumentError (invalid subject or field name, a stored key wrapped by
  /// another master key), CorruptionError (a stored key that does not unwrap),
  /// UnavailableError. Cost: one key-store round trip.
  [[nodiscard]] nlohmann::json seal(std::string_view subject, std::string_view field,
                                    const nlohmann::json& value);

  /// Replaces each of `fields` of the JSON object `data` by its envelope under `subject`'s key.
  /// Throws: InvalidArgumentError naming `type` and the field when `data` is not an object or
  /// lacks a field (nothing is changed then), and what seal() throws.
  /// Cost: one key-store round trip.
  void seal_fields(nlohmann::json& data, std::string_view subject,
                   const std::vector<std::string>& fields, std::string_view type) override;

  /// The data of `event` with every envelope among its top-level members opened, or replaced
  /// by the redaction marker of its kind when the key is destroyed or unknown; empty when the
  /// data holds no envelope (use event.data as it is).
  /// Throws: TamperedPersonalDataError (an envelope that does not open, naming event and
  /// field), InvalidArgumentError (a key wrapped by a master key this object lacks),
  /// UnavailableError. Cost: a text search when the event holds no envelope; otherwise one
  /// key-store round trip per key used in the event.
  [[nodiscard]] std::optional<nlohmann::json> reveal(const RecordedEvent& event) override;

 private:
  struct Impl;
  // The master key's bytes, for Impl (MasterKey's friend is this class).
  static const std::uint8_t* master_bytes(const MasterKey& key) noexcept {
    return key.bytes_.data();
  }
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals
