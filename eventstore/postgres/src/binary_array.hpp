// Internal: one-dimensional PostgreSQL arrays in the binary wire format (array_recv), the form in
// which the event store sends annals.append_events its events. Unlike an array literal, nothing
// is quoted or escaped: each element is its length and its bytes, so neither the client nor the
// server scans the JSON text character by character (docs/performance.md, "Where the time
// goes", batch appends).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/uuid/uuid.hpp>

namespace annals::postgres::detail {

/// The built-in types the store sends as array elements (pg_type.oid, fixed for built-ins).
enum class ElementType : std::uint32_t {
  kInt8 = 20,
  kInt4 = 23,
  kText = 25,
  kUuid = 2950,
  kJsonb = 3802,
};

/// Builds the binary form of `elemtype[]` (no NULL elements, lower bound 1).
/// Cost: one append per element into one growing buffer. Thread safety: none (a value).
class BinaryArray {
 public:
  /// `expected_bytes`: room to reserve for the elements' bytes (a hint).
  explicit BinaryArray(ElementType type, std::size_t expected_bytes = 0);

  /// Adds an element of type text: its bytes, in the connection's client encoding (UTF-8).
  void add_text(std::string_view value);
  /// Adds an element of type jsonb: JSON text (jsonb_recv: format version 1, then the text).
  void add_jsonb(std::string_view json);
  void add_int4(std::int32_t value);
  void add_int8(std::int64_t value);
  void add_uuid(const boost::uuids::uuid& value);

  /// The array's bytes, to send as a binary parameter.
  [[nodiscard]] std::string finish() &&;

 private:
  void add_length(std::size_t length);

  std::string bytes_;
  std::uint32_t count_ = 0;
};

}  // namespace annals::postgres::detail
