#include "binary_array.hpp"

#include <limits>
#include <stdexcept>
#include <utility>

namespace annals::postgres::detail {
namespace {

// Header: ndim, has-null flag, element type, then (size, lower bound) per dimension.
constexpr std::size_t kHeaderBytes = std::size_t{5} * 4;
constexpr std::size_t kCountAt = std::size_t{3} * 4;

void put_uint32(std::string& out, std::uint32_t value) {
  const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                         static_cast<char>(value >> 8), static_cast<char>(value)};
  out.append(bytes, 4);
}

void put_uint64(std::string& out, std::uint64_t value) {
  put_uint32(out, static_cast<std::uint32_t>(value >> 32));
  put_uint32(out, static_cast<std::uint32_t>(value));
}

void patch_uint32(std::string& out, std::size_t at, std::uint32_t value) {
  out[at] = static_cast<char>(value >> 24);
  out[at + 1] = static_cast<char>(value >> 16);
  out[at + 2] = static_cast<char>(value >> 8);
  out[at + 3] = static_cast<char>(value);
}

}  // namespace

BinaryArray::BinaryArray(ElementType type, std::size_t expected_bytes) {
  bytes_.reserve(kHeaderBytes + expected_bytes);
  put_uint32(bytes_, 1);  // one dimension
  put_uint32(bytes_, 0);  // no NULL elements
  put_uint32(bytes_, static_cast<std::uint32_t>(type));
  put_uint32(bytes_, 0);  // element count, set by finish()
  put_uint32(bytes_, 1);  // lower bound
}

void BinaryArray::add_length(std::size_t length) {
  if (length > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    throw std::length_error("array element of " + std::to_string(length) + " bytes");
  }
  put_uint32(bytes_, static_cast<std::uint32_t>(length));
  ++count_;
}

void BinaryArray::add_text(std::string_view value) {
  add_length(value.size());
  bytes_.append(value);
}

void BinaryArray::add_jsonb(std::string_view json) {
  add_length(json.size() + 1);
  bytes_.push_back('\x01');
  bytes_.append(json);
}

void BinaryArray::add_int4(std::int32_t value) {
  add_length(4);
  put_uint32(bytes_, static_cast<std::uint32_t>(value));
}

void BinaryArray::add_int8(std::int64_t value) {
  add_length(8);
  put_uint64(bytes_, static_cast<std::uint64_t>(value));
}

void BinaryArray::add_uuid(const boost::uuids::uuid& value) {
  add_length(value.size());
  bytes_.append(reinterpret_cast<const char*>(value.data), value.size());
}

std::string BinaryArray::finish() && {
  if (count_ == 0) {
    // An empty array has no dimensions: ndim 0, then only the flag and the element type.
    std::string empty = bytes_.substr(0, kCountAt);
    patch_uint32(empty, 0, 0);
    return empty;
  }
  patch_uint32(bytes_, kCountAt, count_);
  return std::move(bytes_);
}

}  // namespace annals::postgres::detail
