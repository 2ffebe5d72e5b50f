#include "row_decoding.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include <boost/uuid/uuid.hpp>

#include "annals/eventstore/detail/stored_event.hpp"
#include "annals/eventstore/error.hpp"

namespace annals::postgres::detail {
namespace {

// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00 UTC), the origin of a
// binary timestamptz.
constexpr std::int64_t kPostgresEpochMicros = 946'684'800'000'000;

// jsonb's binary form: a format version byte (1), then the JSON text.
constexpr char kJsonbVersion = 1;

void expect_size(std::string_view field, std::size_t size, const char* what) {
  if (field.size() != size) {
    throw CorruptionError(std::string("unreadable ") + what + ": " + std::to_string(field.size()) +
                          " bytes in binary form, expected " + std::to_string(size));
  }
}

// A big-endian integer of sizeof(Int) bytes.
template <typename Int>
Int read_binary(std::string_view field, const char* what) {
  expect_size(field, sizeof(Int), what);
  std::uint64_t value = 0;
  for (const char byte : field) value = (value << 8) | static_cast<unsigned char>(byte);
  return static_cast<Int>(value);
}

EventId read_uuid(std::string_view field) {
  boost::uuids::uuid id{};
  expect_size(field, id.size(), "event id");
  std::memcpy(id.data, field.data(), id.size());
  return EventId(id);
}

std::string_view read_jsonb(std::string_view field, const char* what) {
  if (field.empty() || field.front() != kJsonbVersion) {
    throw CorruptionError(std::string("unreadable ") + what + ": unknown jsonb binary format");
  }
  return field.substr(1);
}

// A binary timestamptz (microseconds since 2000-01-01 UTC) as a system_clock time. The store
// records now(), but an owner can store 'infinity' (INT64_MAX) or a time past what the clock's
// microseconds can hold: those saturate instead of overflowing, so the row is still delivered.
std::chrono::system_clock::time_point read_time(std::string_view field) {
  const auto micros = read_binary<std::int64_t>(field, "recorded time");
  std::int64_t since_unix = 0;
  if (__builtin_add_overflow(micros, kPostgresEpochMicros, &since_unix)) {
    since_unix = micros > 0 ? std::numeric_limits<std::int64_t>::max()
                            : std::numeric_limits<std::int64_t>::min();
  }
  using Micros = std::chrono::microseconds;
  const auto most = std::chrono::duration_cast<Micros>(
      std::chrono::system_clock::time_point::max().time_since_epoch());
  const auto least = std::chrono::duration_cast<Micros>(
      std::chrono::system_clock::time_point::min().time_since_epoch());
  const auto clamped = std::clamp(Micros(since_unix), least, most);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(clamped));
}

}  // namespace

RecordedEvent decode_event(const EventRow& row, const RecordedEvent* previous) {
  return annals::detail::decode_stored_event(
      {
          .stream_id = row[2],
          .version = read_binary<std::int64_t>(row[3], "stream version"),
          .position = Position(read_binary<std::uint64_t>(row[0], "transaction id"),
                               read_binary<std::int64_t>(row[1], "global position")),
          .id = read_uuid(row[4]),
          .type = row[5],
          .schema_version = read_binary<std::int32_t>(row[6], "schema version"),
          .data = read_jsonb(row[7], "data"),
          .metadata = read_jsonb(row[8], "metadata"),
          .recorded_at = read_time(row[9]),
      },
      previous);
}

}  // namespace annals::postgres::detail
