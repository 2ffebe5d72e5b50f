// PersonalData: AES-256-GCM envelopes of personal-data fields under per-subject keys, master-key
// wrapping of those keys, and forgetting (issue 16; docs/personal-data.md).
//
// Why AES-256-GCM from OpenSSL's libcrypto: it is already a dependency (verify's SHA-256), it
// is authenticated (a changed byte of ciphertext, nonce or associated data fails the tag), and
// a random 96-bit nonce per field is safe for far more seals per key than one subject's events
// will ever need. Key bytes live in std::array/std::vector buffers that are wiped with
// OPENSSL_cleanse when dropped; no message built here contains them (tests check the logs and
// error texts).
#include "annals/framework/personal_data.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <new>
#include <sstream>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/framework/metadata.hpp"

namespace annals {
namespace {

constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr const char* kAlgorithm = "AES-256-GCM";
constexpr const char* kNoWrapping = "none";
constexpr std::string_view kMasterPrefix = "master:";

using Key = std::array<std::uint8_t, kKeyBytes>;

// A buffer of key bytes that is wiped when it goes.
struct SecretBytes {
  std::vector<std::uint8_t> bytes;
  SecretBytes() = default;
  explicit SecretBytes(std::vector<std::uint8_t> b) : bytes(std::move(b)) {}
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept : bytes(std::move(other.bytes)) {}
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    wipe();
    bytes = std::move(other.bytes);
    return *this;
  }
  ~SecretBytes() { wipe(); }
  void wipe() noexcept {
    if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
    bytes.clear();
  }
};

void wipe(std::vector<std::uint8_t>& bytes) noexcept {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
  bytes.clear();
}

const unsigned char* as_uchar(const std::uint8_t* p) { return p; }
const unsigned char* as_uchar(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());  // NOLINT: OpenSSL takes bytes
}

std::vector<std::uint8_t> random_bytes(std::size_t n) {
  std::vector<std::uint8_t> out(n);
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
    throw InternalError("OpenSSL could not produce random bytes");
  }
  return out;
}

struct CipherContext {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  CipherContext() {
    if (ctx == nullptr) throw std::bad_alloc();
  }
  CipherContext(const CipherContext&) = delete;
  CipherContext& operator=(const CipherContext&) = delete;
  ~CipherContext() { EVP_CIPHER_CTX_free(ctx); }
};

// ciphertext || tag of `plaintext` under `key` and `nonce`, bound to `aad`.
std::vector<std::uint8_t> gcm_seal(const std::uint8_t* key, const std::uint8_t* nonce,
                                   std::string_view aad, std::string_view plaintext) {
  CipherContext c;
  int len = 0;
  std::vector<std::uint8_t> out(plaintext.size() + kTagBytes);
  const bool ok =
      EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) ==
          1 &&
      EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, as_uchar(key), as_uchar(nonce)) == 1 &&
      EVP_EncryptUpdate(c.ctx, nullptr, &len, as_uchar(aad), static_cast<int>(aad.size())) == 1 &&
      EVP_EncryptUpdate(c.ctx, out.data(), &len, as_uchar(plaintext),
                        static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(c.ctx, out.data() + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          out.data() + plaintext.size()) == 1;
  if (!ok) throw InternalError("OpenSSL AES-256-GCM encryption failed");
  return out;
}

// The plaintext of `sealed` (ciphertext || tag), or empty when the tag does not match.
std::optional<std::vector<std::uint8_t>> gcm_open(const std::uint8_t* key,
                                                  const std::uint8_t* nonce, std::string_view aad,
                                                  const std::vector<std::uint8_t>& sealed) {
  if (sealed.size() < kTagBytes) return std::nullopt;
  const std::size_t n = sealed.size() - kTagBytes;
  CipherContext c;
  int len = 0;
  std::vector<std::uint8_t> out(n + 1);  // +1: never a zero-sized buffer
  std::array<std::uint8_t, kTagBytes> tag{};
  std::copy(sealed.begin() + static_cast<std::ptrdiff_t>(n), sealed.end(), tag.begin());
  const bool setup =
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) ==
          1 &&
      EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, as_uchar(key), as_uchar(nonce)) == 1 &&
      EVP_DecryptUpdate(c.ctx, nullptr, &len, as_uchar(aad), static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(c.ctx, out.data(), &len, sealed.data(), static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes), tag.data()) ==
          1;
  if (!setup) throw InternalError("OpenSSL AES-256-GCM decryption failed");
  int final_len = 0;
  if (EVP_DecryptFinal_ex(c.ctx, out.data() + len, &final_len) != 1) {
    wipe(out);
    return std::nullopt;
  }
  out.resize(n);
  return out;
}

std::string base64(const std::vector<std::uint8_t>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),  // NOLINT
                                bytes.data(), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::vector<std::uint8_t>> from_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::vector<std::uint8_t> out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), as_uchar(text), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::optional<std::vector<std::uint8_t>> from_hex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  const auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = digit(text[i]);
    const int lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) {
      wipe(out);
      return std::nullopt;
    }
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return out;
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string kind_of(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::string:
      return "string";
    case nlohmann::json::value_t::boolean:
      return "boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return "number";
    case nlohmann::json::value_t::object:
      return "object";
    case nlohmann::json::value_t::array:
      return "array";
    default:
      return "null";
  }
}

std::optional<nlohmann::json> redaction_of(std::string_view kind) {
  if (kind == "string") return nlohmann::json(std::string(kRedacted));
  if (kind == "number") return nlohmann::json(0);
  if (kind == "boolean") return nlohmann::json(false);
  if (kind == "object") return nlohmann::json::object();
  if (kind == "array") return nlohmann::json::array();
  if (kind == "null") return nlohmann::json(nullptr);
  return std::nullopt;
}

// The associated data of one field's envelope: subject, field, key id and kind, each ended by
// a NUL (none of them may contain one: subjects and stored JSON text cannot).
std::string field_aad(std::string_view subject, std::string_view field, std::string_view key_id,
                      std::string_view kind) {
  std::string aad = "annals:encrypted/v1";
  for (const auto part : {subject, field, key_id, kind}) {
    aad.push_back('\0');
    aad.append(part);
  }
  return aad;
}

std::string wrap_aad(std::string_view subject, std::string_view key_id) {
  std::string aad = "annals:subject-key/v1";
  aad.push_back('\0');
  aad.append(subject);
  aad.push_back('\0');
  aad.append(key_id);
  return aad;
}

std::string fingerprint_of(const Key& bytes) {
  std::string input = "annals master key fingerprint";
  input.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());  // NOLINT
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(as_uchar(input), input.size(), digest.data());
  OPENSSL_cleanse(input.data(), input.size());
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < 8; ++i) {
    out.push_back(kDigits[digest[i] >> 4]);
    out.push_back(kDigits[digest[i] & 0xf]);
  }
  return out;
}

const std::string* string_member(const nlohmann::json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

}  // namespace

// --- MasterKey -----------------------------------------------------------------------------

MasterKey::MasterKey(const std::array<std::uint8_t, 32>& bytes)
    : bytes_(bytes), fingerprint_(fingerprint_of(bytes)) {}

MasterKey::MasterKey(const MasterKey& other) = default;

MasterKey& MasterKey::operator=(const MasterKey& other) {
  if (this != &other) {
    bytes_ = other.bytes_;
    fingerprint_ = other.fingerprint_;
  }
  return *this;
}

MasterKey::~MasterKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

MasterKey MasterKey::from_text(std::string_view text) {
  text = trim(text);
  std::optional<std::vector<std::uint8_t>> bytes;
  if (text.size() == 2 * kKeyBytes) bytes = from_hex(text);
  if (!bytes) bytes = from_base64(text);
  if (!bytes || bytes->size() != kKeyBytes) {
    if (bytes) wipe(*bytes);
    throw InvalidArgumentError(
        "a master key must be 64 hex digits or the base64 of 32 bytes (e.g. `openssl rand "
        "-base64 32`); the text given is neither");
  }
  Key key{};
  std::copy(bytes->begin(), bytes->end(), key.begin());
  wipe(*bytes);
  MasterKey master(key);
  OPENSSL_cleanse(key.data(), key.size());
  return master;
}

MasterKey MasterKey::from_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw InvalidArgumentError("cannot read the master key file \"" + path + "\"");
  std::ostringstream text;
  text << file.rdbuf();
  std::string content = text.str();
  try {
    auto key = from_text(content);
    OPENSSL_cleanse(content.data(), content.size());
    return key;
  } catch (const InvalidArgumentError&) {
    OPENSSL_cleanse(content.data(), content.size());
    throw InvalidArgumentError("the master key file \"" + path +
                               "\" does not hold a key: 64 hex digits or the base64 of 32 bytes");
  }
}

std::optional<MasterKey> MasterKey::from_environment() {
  const char* file = std::getenv("ANNALS_MASTER_KEY_FILE");  // NOLINT(concurrency-mt-unsafe)
  const char* text = std::getenv("ANNALS_MASTER_KEY");       // NOLINT(concurrency-mt-unsafe)
  const bool has_file = file != nullptr && *file != '\0';
  const bool has_text = text != nullptr && *text != '\0';
  if (has_file && has_text) {
    throw InvalidArgumentError(
        "both ANNALS_MASTER_KEY_FILE and ANNALS_MASTER_KEY are set; set only one");
  }
  if (has_file) return from_file(file);
  if (has_text) {
    try {
      return from_text(text);
    } catch (const InvalidArgumentError&) {
      throw InvalidArgumentError(
          "ANNALS_MASTER_KEY does not hold a key: 64 hex digits or the base64 of 32 bytes");
    }
  }
  return std::nullopt;
}

// --- PersonalData --------------------------------------------------------------------------

struct PersonalData::Impl {
  SubjectKeyStore& keys;
  EventWriter& log;
  std::optional<MasterKey> master;
  SnapshotStore* snapshots;

  // The stored form of a new key: wrapped by the master key when there is one.
  StoredSubjectKey candidate(std::string_view subject, const SecretBytes& key) const {
    StoredSubjectKey stored{.subject = std::string(subject),
                            .key_id = EventId::generate().to_string(),
                            .material = {},
                            .wrapping = kNoWrapping};
    if (!master) {
      stored.material = key.bytes;
      return stored;
    }
    const auto nonce = random_bytes(kNonceBytes);
    const std::string_view plain(reinterpret_cast<const char*>(key.bytes.data()),  // NOLINT
                                 key.bytes.size());
    auto sealed = gcm_seal(PersonalData::master_bytes(*master), nonce.data(),
                           wrap_aad(subject, stored.key_id), plain);
    stored.material = nonce;
    stored.material.insert(stored.material.end(), sealed.begin(), sealed.end());
    stored.wrapping = std::string(kMasterPrefix) + master->fingerprint();
    return stored;
  }

  // The 32-byte key of a stored key, unwrapped when needed.
  SecretBytes unwrap(StoredSubjectKey& stored) const {
    SecretBytes material(std::move(stored.material));
    if (stored.wrapping == kNoWrapping) {
      if (material.bytes.size() != kKeyBytes) {
        throw CorruptionError("subject key " + stored.key_id + " is " +
                              std::to_string(material.bytes.size()) +
                              " bytes long, not 32: the key table was changed");
      }
      return material;
    }
    if (!stored.wrapping.starts_with(kMasterPrefix)) {
      throw CorruptionError("subject key " + stored.key_id + " has an unknown wrapping");
    }
    const auto fingerprint = stored.wrapping.substr(kMasterPrefix.size());
    if (!master) {
      throw InvalidArgumentError("subject key " + stored.key_id +
                                 " is wrapped by the master key with fingerprint " + fingerprint +
                                 "; give it (ANNALS_MASTER_KEY_FILE or ANNALS_MASTER_KEY, or "
                                 "PersonalDataOptions::master_key)");
    }
    if (master->fingerprint() != fingerprint) {
      throw InvalidArgumentError(
          "subject key " + stored.key_id + " is wrapped by the master key with fingerprint " +
          fingerprint + ", not by the one given (fingerprint " + master->fingerprint() + ")");
    }
    if (material.bytes.size() != kNonceBytes + kKeyBytes + kTagBytes) {
      throw CorruptionError("wrapped subject key " + stored.key_id +
                            " has the wrong length: the key table was changed");
    }
    const std::vector<std::uint8_t> sealed(material.bytes.begin() + kNonceBytes,
                                           material.bytes.end());
    auto key = gcm_open(PersonalData::master_bytes(*master), material.bytes.data(),
                        wrap_aad(stored.subject, stored.key_id), sealed);
    if (!key) {
      throw CorruptionError("wrapped subject key " + stored.key_id +
                            " does not unwrap with the master key: the key table was changed");
    }
    return SecretBytes(std::move(*key));
  }

  // The subject's live key (created on first use): its id and bytes.
  std::pair<std::string, SecretBytes> key_for(std::string_view subject) {
    SecretBytes fresh(random_bytes(kKeyBytes));
    auto stored = keys.get_or_create(candidate(subject, fresh));
    std::string id = stored.key_id;
    return {std::move(id), unwrap(stored)};
  }
};

PersonalData::PersonalData(SubjectKeyStore& keys, EventWriter& log, PersonalDataOptions options)
    : impl_(std::make_unique<Impl>(
          Impl{keys, log, std::move(options.master_key), options.snapshots})) {}

PersonalData::~PersonalData() = default;

nlohmann::json PersonalData::seal(std::string_view subject, std::string_view field,
                                  const nlohmann::json& value) {
  nlohmann::json data = nlohmann::json::object();
  data[std::string(field)] = value;
  seal_fields(data, subject, {std::string(field)}, "personal data");
  return std::move(data[std::string(field)]);
}

void PersonalData::seal_fields(nlohmann::json& data, std::string_view subject,
                               const std::vector<std::string>& fields, std::string_view type) {
  validate_subject(subject);
  if (!data.is_object()) {
    throw InvalidArgumentError("event \"" + std::string(type) +
                               "\" declares personal data but its JSON is not an object");
  }
  for (const auto& field : fields) {
    if (!data.contains(field)) {
      throw InvalidArgumentError("event \"" + std::string(type) + "\" declares \"" + field +
                                 "\" as personal data, but its JSON has no such member");
    }
    if (is_envelope(data[field])) {
      throw InvalidArgumentError("event \"" + std::string(type) + "\": member \"" + field +
                                 "\" is sealed already");
    }
  }
  if (fields.empty()) return;
  auto [key_id, key] = impl_->key_for(subject);
  for (const auto& field : fields) {
    auto& value = data[field];
    const std::string kind = kind_of(value);
    std::string plain = value.dump();
    const auto nonce = random_bytes(kNonceBytes);
    const auto sealed =
        gcm_seal(key.bytes.data(), nonce.data(), field_aad(subject, field, key_id, kind), plain);
    OPENSSL_cleanse(plain.data(), plain.size());
    value = nlohmann::json{{std::string(kEncryptedMarker), kAlgorithm},
                           {"subject", std::string(subject)},
                           {"key", key_id},
                           {"kind", kind},
                           {"nonce", base64(nonce)},
                           {"ciphertext", base64(sealed)}};
  }
}

std::optional<nlohmann::json> PersonalData::reveal(const RecordedEvent& event) {
  if (!may_hold_envelope(event)) return std::nullopt;
  const auto& stored = event.data.get_json();
  if (!stored.is_object()) return std::nullopt;
  std::optional<nlohmann::json> out;
  // Keys looked up for this event, by key id: each is read once per event.
  std::map<std::string, std::optional<SecretBytes>> keys;
  for (auto it = stored.begin(); it != stored.end(); ++it) {
    if (!is_envelope(*it)) continue;
    if (!out) out = stored;
    const std::string& field = it.key();
    const auto& envelope = *it;
    const auto* algorithm = string_member(envelope, std::string(kEncryptedMarker).c_str());
    const auto* subject = string_member(envelope, "subject");
    const auto* key_id = string_member(envelope, "key");
    const auto* kind = string_member(envelope, "kind");
    const auto* nonce_text = string_member(envelope, "nonce");
    const auto* sealed_text = string_member(envelope, "ciphertext");
    if (algorithm == nullptr || *algorithm != kAlgorithm || subject == nullptr ||
        key_id == nullptr || kind == nullptr || nonce_text == nullptr || sealed_text == nullptr) {
      throw TamperedPersonalDataError(event, field, "the envelope is malformed");
    }
    const auto redaction = redaction_of(*kind);
    if (!redaction) throw TamperedPersonalDataError(event, field, "unknown kind");
    try {
      validate_subject(*subject);
      static_cast<void>(EventId::parse(*key_id));
    } catch (const InvalidArgumentError&) {
      throw TamperedPersonalDataError(event, field, "the envelope names no valid subject or key");
    }
    auto found = keys.find(*key_id);
    if (found == keys.end()) {
      auto lookup = impl_->keys.find(*subject, *key_id);
      std::optional<SecretBytes> key;
      if (lookup.state == SubjectKeyState::kLive && lookup.key) {
        key = impl_->unwrap(*lookup.key);
      } else if (lookup.state == SubjectKeyState::kUnknown) {
        detail::logger()->warn(
            "annals: key {} of the personal data in event {} is unknown to the key store; the "
            "field reads as redacted",
            *key_id, event.id.to_string());
      }
      found = keys.emplace(*key_id, std::move(key)).first;
    }
    auto& value = (*out)[field];
    if (!found->second) {  // destroyed (forgotten) or unknown
      value = *redaction;
      continue;
    }
    const auto nonce = from_base64(*nonce_text);
    const auto sealed = from_base64(*sealed_text);
    if (!nonce || nonce->size() != kNonceBytes || !sealed) {
      throw TamperedPersonalDataError(event, field, "its nonce or ciphertext is not base64");
    }
    auto plain = gcm_open(found->second->bytes.data(), nonce->data(),
                          field_aad(*subject, field, *key_id, *kind), *sealed);
    if (!plain) {
      throw TamperedPersonalDataError(
          event, field,
          "the authentication tag does not match (the ciphertext, nonce or envelope was changed, "
          "or the envelope was moved from another field or subject)");
    }
    try {
      value = nlohmann::json::parse(plain->begin(), plain->end());
    } catch (const nlohmann::json::exception&) {
      wipe(*plain);
      throw TamperedPersonalDataError(event, field, "the plaintext is not JSON");
    }
    wipe(*plain);
  }
  return out;
}

ForgetResult PersonalData::forget(std::string_view subject) {
  const StreamId stream = forgotten_stream_of(subject);  // validates the subject
  auto keys = impl_->keys.forget(subject);
  // The event's id derives from the subject and its keys: a repeated forget sends the same id,
  // which the store answers with the first result, writing nothing (ARCHITECTURE decision 4).
  std::string identity = "annals.forget\n" + std::string(subject);
  for (const auto& id : keys.key_ids) identity += "\n" + id;
  const SubjectForgotten signal{std::string(subject), keys.key_ids};
  std::vector<NewEvent> events;
  events.push_back(NewEvent{.id = derive_event_id(identity, 0),
                            .type = std::string(SubjectForgotten::kTypeName),
                            .schema_version = SubjectForgotten::kSchemaVersion,
                            .data = nlohmann::json(signal),
                            .metadata = nlohmann::json::object()});
  auto appended = impl_->log.append(stream, ExpectedVersion::any(), std::move(events));
  detail::logger()->info("annals: forgot the subject of stream \"{}\": {} key(s) destroyed now",
                         stream.value(), keys.destroyed_now);
  // The aggregate whose stream is the subject (an event's default subject) may hold the data in
  // clear in its snapshot. Every valid subject is a valid stream id (480 bytes at most).
  bool snapshot_removed = false;
  if (impl_->snapshots != nullptr) {
    impl_->snapshots->remove(StreamId(std::string(subject)));
    snapshot_removed = true;
  }
  return ForgetResult{.subject = std::string(subject),
                      .keys_destroyed = keys.destroyed_now,
                      .key_ids = std::move(keys.key_ids),
                      .event = std::move(appended),
                      .snapshot_removed = snapshot_removed};
}

}  // namespace annals
