#include "event_hasher.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <new>
#include <stdexcept>

namespace annals::postgres::detail {
namespace {

void append_length_prefixed(std::string& out, std::string_view field) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, field.size());
  (void)ec;  // 24 characters hold every size_t
  out.append(digits, end);
  out.push_back(':');
  out.append(field);
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Sha256::Sha256() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
  if (md_ == nullptr || ctx_ == nullptr) {
    EVP_MD_free(md_);
    EVP_MD_CTX_free(ctx_);
    throw std::bad_alloc();
  }
  reset();
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(ctx_);
  EVP_MD_free(md_);
}

void Sha256::reset() {
  if (EVP_DigestInit_ex(ctx_, md_, nullptr) != 1) throw std::runtime_error("SHA-256: init failed");
}

void Sha256::update(std::string_view bytes) {
  if (EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) != 1) {
    throw std::runtime_error("SHA-256: update failed");
  }
}

void Sha256::update(const std::uint8_t* bytes, std::size_t size) {
  if (EVP_DigestUpdate(ctx_, bytes, size) != 1) throw std::runtime_error("SHA-256: update failed");
}

Sha256Digest Sha256::finish() {
  Sha256Digest digest{};
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx_, digest.data(), &size) != 1 || size != digest.size()) {
    throw std::runtime_error("SHA-256: final failed");
  }
  reset();
  return digest;
}

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4U]);
    out.push_back(kDigits[b & 0xFU]);
  }
  return out;
}

std::string to_hex(const Sha256Digest& digest) {
  return to_hex(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

bool decode_bytea(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return false;
  out.reserve((text.size() - 2) / 2);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    const int high = hex_value(text[i]);
    const int low = hex_value(text[i + 1]);
    if (high < 0 || low < 0) return false;
    out.push_back(static_cast<char>((high << 4) | low));
  }
  return true;
}

Sha256Digest EventHasher::hash(std::string_view previous, const StoredEventText& event) {
  buffer_.clear();
  buffer_.append(previous);
  buffer_.append(event.event_id);
  buffer_.push_back('|');
  buffer_.append(event.stream_version);
  buffer_.push_back('|');
  buffer_.append(event.schema_version);
  buffer_.push_back('|');
  buffer_.append(event.recorded_micros);
  buffer_.push_back('|');
  append_length_prefixed(buffer_, event.stream_id);
  buffer_.push_back('|');
  append_length_prefixed(buffer_, event.event_type);
  buffer_.push_back('|');
  append_length_prefixed(buffer_, event.data);
  buffer_.push_back('|');
  append_length_prefixed(buffer_, event.metadata);
  sha_.update(buffer_);
  return sha_.finish();
}

void LogDigest::add(std::uint64_t transaction_id, std::int64_t global_position,
                    std::string_view stored_hash) {
  std::uint8_t buffer[sizeof value_ + 16];
  std::copy(value_.begin(), value_.end(), buffer);
  const auto position = static_cast<std::uint64_t>(global_position);
  for (std::size_t i = 0; i < 8; ++i) {
    buffer[value_.size() + i] = static_cast<std::uint8_t>(transaction_id >> (56U - 8U * i));
    buffer[value_.size() + 8 + i] = static_cast<std::uint8_t>(position >> (56U - 8U * i));
  }
  sha_.update(buffer, sizeof buffer);
  sha_.update(stored_hash);
  value_ = sha_.finish();
}

}  // namespace annals::postgres::detail
