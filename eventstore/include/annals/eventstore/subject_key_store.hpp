// SubjectKeyStore: where the per-subject keys of personal data live (crypto-shredding, issue 16;
// docs/personal-data.md). The framework (annals/framework/personal_data.hpp) encrypts the
// personal-data fields of events with their subject's key; forgetting a subject destroys its
// keys here, which makes every copy of those fields in the log, its exports and its backups
// unreadable for good, while the log itself and its hash chains stay unchanged.
//
//   auto keys = annals::make_in_memory_subject_key_store();        // tests, samples
//   auto keys = annals::postgres::make_postgres_subject_key_store({.connection_string = url});
//
// A store holds key material as given: the framework hands it either the raw 32-byte key or the
// key wrapped by a master key (StoredSubjectKey::wrapping), so a store never needs to know which.
// Key material never appears in an error message or a log line of any store.
//
// Thread safety: implementations are fully thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace annals {

/// One key of one subject, as stored.
struct StoredSubjectKey {
  /// The subject the key belongs to ("account-42"): 1 to 480 bytes.
  std::string subject;
  /// The key's id, a UUID in its text form; stored in every envelope the key sealed.
  std::string key_id;
  /// The key (32 bytes) or the key wrapped by a master key; empty once forgotten.
  std::vector<std::uint8_t> material;
  /// "none" (material is the key) or "master:<fingerprint>" (wrapped by that master key).
  std::string wrapping = "none";

  friend bool operator==(const StoredSubjectKey&, const StoredSubjectKey&) = default;
};

/// What find() knows about a key id.
enum class SubjectKeyState {
  kLive,       ///< the key exists: StoredSubjectKey::material holds it
  kForgotten,  ///< the subject was forgotten: the key is destroyed
  kUnknown,    ///< no such key of that subject (another key table, or never stored)
};

struct SubjectKeyLookup {
  SubjectKeyState state = SubjectKeyState::kUnknown;
  /// Set when state is kLive.
  std::optional<StoredSubjectKey> key;
};

/// What forget() did.
struct ForgottenKeys {
  /// Keys destroyed by this call (0 when the subject was forgotten before, or had no key).
  std::size_t destroyed_now = 0;
  /// Every key the subject has had, all destroyed now: their ids, sorted.
  std::vector<std::string> key_ids;
};

/// Per-subject keys. Implementations: the in-memory store below, and
/// annals::postgres::make_postgres_subject_key_store (table annals.subject_keys).
class SubjectKeyStore {
 public:
  SubjectKeyStore() = default;
  SubjectKeyStore(const SubjectKeyStore&) = delete;
  SubjectKeyStore& operator=(const SubjectKeyStore&) = delete;
  virtual ~SubjectKeyStore() = default;

  /// The live key of `candidate.subject`; when the subject has none, stores `candidate` and
  /// returns it. Concurrent calls for one subject (from any process sharing the store) all
  /// return the same key: one candidate wins.
  /// Throws: InvalidArgumentError (bad subject, key id or material), UnavailableError.
  /// Cost: one round trip (rarely two, when a concurrent first use raced this one).
  [[nodiscard]] virtual StoredSubjectKey get_or_create(const StoredSubjectKey& candidate) = 0;

  /// Key `key_id` of `subject`: live (with its material), forgotten, or unknown.
  /// Throws: UnavailableError. Cost: one round trip.
  [[nodiscard]] virtual SubjectKeyLookup find(std::string_view subject,
                                              std::string_view key_id) = 0;

  /// Destroys every live key of `subject`. Forgetting twice is harmless: the second call
  /// destroys nothing. A subject used after being forgotten gets a new key.
  /// Throws: InvalidArgumentError (bad subject), UnavailableError. Cost: one round trip.
  virtual ForgottenKeys forget(std::string_view subject) = 0;
};

/// Throws InvalidArgumentError unless `subject` is 1 to 480 bytes of UTF-8 without control
/// characters (the rule of every store; the message names the subject's length, not its bytes).
void validate_subject(std::string_view subject);

/// A SubjectKeyStore in process memory, for tests and samples without a server. Forgetting
/// overwrites the key bytes before releasing them.
[[nodiscard]] std::unique_ptr<SubjectKeyStore> make_in_memory_subject_key_store();

}  // namespace annals
