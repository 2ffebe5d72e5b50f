#include "row_decoding.hpp"

#include <chrono>
#include <cstdint>

#include "annals/eventstore/detail/stored_event.hpp"
#include "database_checks.hpp"

namespace annals::postgres::detail {

RecordedEvent decode_event(const EventRow& row, const RecordedEvent* previous) {
  const auto sequence = parse_int<std::int64_t>(row[1], "global position");
  return annals::detail::decode_stored_event(
      {
          .stream_id = row[2],
          .version = parse_int<std::int64_t>(row[3], "stream version"),
          .position = Position(parse_int<std::uint64_t>(row[0], "transaction id"), sequence),
          .id = EventId::parse(row[4]),
          .type = row[5],
          .schema_version = parse_int<std::int32_t>(row[6], "schema version"),
          .data = row[7],
          .metadata = row[8],
          .recorded_at = std::chrono::system_clock::time_point(
              std::chrono::microseconds(parse_int<std::int64_t>(row[9], "recorded time"))),
      },
      previous);
}

}  // namespace annals::postgres::detail
