// Internal: SHA-256 (OpenSSL libcrypto) and the client-side recomputation of an event's hash,
// byte for byte what annals.event_hash in sql/0001 computes, so that `verify` trusts no
// function the database's owner could replace (ARCHITECTURE decision 8).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_st;
struct evp_md_ctx_st;

namespace annals::postgres::detail {

using Sha256Digest = std::array<std::uint8_t, 32>;

/// An incremental SHA-256. Not thread-safe; cheap to reuse (reset()).
class Sha256 {
 public:
  Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  ~Sha256();

  void reset();
  void update(std::string_view bytes);
  void update(const std::uint8_t* bytes, std::size_t size);
  [[nodiscard]] Sha256Digest finish();

 private:
  evp_md_st* md_;
  evp_md_ctx_st* ctx_;
};

/// Lower-case hex of `bytes`.
[[nodiscard]] std::string to_hex(std::string_view bytes);
[[nodiscard]] std::string to_hex(const Sha256Digest& digest);

/// Decodes PostgreSQL's text form of a bytea ("\x" followed by hex digits) into `out`.
/// Returns false when `text` is not in that form.
[[nodiscard]] bool decode_bytea(std::string_view text, std::string& out);

/// One stored event's columns in PostgreSQL's text output form, as verify reads them.
struct StoredEventText {
  std::string_view event_id;  ///< uuid::text
  std::string_view stream_id;
  std::string_view stream_version;  ///< bigint::text
  std::string_view event_type;
  std::string_view schema_version;  ///< integer::text
  std::string_view data;            ///< jsonb::text
  std::string_view metadata;        ///< jsonb::text
  std::string_view
      recorded_micros;  ///< ((extract(epoch FROM recorded_at) * 1000000)::bigint)::text
};

/// Recomputes annals.event_hash(previous, ...) in the client:
///   sha256(previous || event_id '|' version '|' schema_version '|' micros '|'
///          len(stream_id) ':' stream_id '|' len(type) ':' type '|'
///          len(data) ':' data '|' len(metadata) ':' metadata)
/// where len is the octet length in decimal. Assumes a UTF-8 database (convert_to(..., 'UTF8')
/// is then the identity) and client_encoding UTF8.
class EventHasher {
 public:
  [[nodiscard]] Sha256Digest hash(std::string_view previous, const StoredEventText& event);

 private:
  Sha256 sha_;
  std::string buffer_;
};

/// The log digest of anchors (anchor.hpp): d0 = 32 zero bytes, then for each event in log
/// order d = SHA-256(d || be64(transaction id) || be64(global position) || stored hash).
class LogDigest {
 public:
  /// Starts from d0.
  LogDigest() = default;
  /// Starts from an earlier value (a resumed anchor's digest).
  explicit LogDigest(const Sha256Digest& value) : value_(value) {}
  /// Continues from `value` instead.
  void restart(const Sha256Digest& value) noexcept { value_ = value; }

  void add(std::uint64_t transaction_id, std::int64_t global_position,
           std::string_view stored_hash);
  [[nodiscard]] const Sha256Digest& value() const noexcept { return value_; }

 private:
  Sha256 sha_;
  Sha256Digest value_{};
};

}  // namespace annals::postgres::detail
