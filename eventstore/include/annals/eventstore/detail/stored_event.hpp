// Internal: turning a stored row into a RecordedEvent, shared by every reader of stored events
// (the PostgreSQL event store, the PostgreSQL projection store's dead letters), so that all of
// them decode the same row the same way. Not part of the public API.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "annals/eventstore/types.hpp"

namespace annals::detail {

/// One stored event: the columns whose database type guarantees their form already parsed, the
/// others as the stored text.
struct StoredEventColumns {
  std::string_view stream_id;
  StreamVersion version = 0;
  Position position;
  EventId id;
  std::string_view type;
  std::int32_t schema_version = 1;
  std::string_view data;      ///< JSON text
  std::string_view metadata;  ///< JSON text
  std::chrono::system_clock::time_point recorded_at;
};

/// Decodes a stored event. A row that breaks a rule every append enforces (stream id, type,
/// schema version >= 1, metadata a JSON object) or whose JSON cannot be parsed is not an error:
/// it comes back with RecordedEvent::decode_failure set (see types.hpp). Data and metadata are
/// parsed by parse_stored_json (numbers no double can hold become strings of their text).
/// `previous` (may be null): the event decoded just before; its stream id is reused, not
/// validated again, when the stored id is the same.
/// Throws: nothing but std::bad_alloc.
[[nodiscard]] RecordedEvent decode_stored_event(const StoredEventColumns& columns,
                                                const RecordedEvent* previous = nullptr);

}  // namespace annals::detail
