// Internal: validation and serialization of appends, shared by every store so that all
// of them accept and refuse exactly the same input (ARCHITECTURE decision 1 and 12).
// Not part of the public API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "annals/eventstore/types.hpp"

namespace annals::detail {

/// An event validated and serialized for storage.
struct EncodedEvent {
  EventId id;
  std::string type;
  std::int32_t schema_version = 1;
  std::string data;      ///< JSON text
  std::string metadata;  ///< JSON text of an object
};

/// Validates `events` for an append to `stream` and serializes them. Assigns a time-ordered id
/// to events without one.
/// Data and metadata given as text (NewEvent::data_json, metadata_json) are checked and taken
/// as they are (json_text_validation.hpp); trees are checked and serialized.
/// Throws: InvalidArgumentError naming the stream, the event index and what is wrong (empty
/// append, too many events, bad type name, schema version < 1, metadata not an object,
/// payload over the limits, JSON that cannot be serialized, JSON text a store cannot take, a
/// part set both as a tree and as text, nil or duplicate event ids).
[[nodiscard]] std::vector<EncodedEvent> encode_events(const StreamId& stream,
                                                      const std::vector<NewEvent>& events,
                                                      const AppendLimits& limits);

/// encode_events, moving each event's type and JSON text (data_json, metadata_json) into the
/// result instead of copying them: for a store's append, which owns its events. Afterwards the
/// events are valid but their moved-from members unspecified, whether it returned or threw.
/// Throws: as the overload above.
[[nodiscard]] std::vector<EncodedEvent> encode_events(const StreamId& stream,
                                                      std::vector<NewEvent>&& events,
                                                      const AppendLimits& limits);

/// Validates a multi-stream append: at least one stream, no stream twice, the total number of
/// events within limits. Each stream's events are checked by encode_events.
/// Throws: InvalidArgumentError.
void validate_multi_append(const std::vector<StreamAppend>& appends, const AppendLimits& limits);

/// The parts of an event in which a re-send differs from the stored event, as a sum (the same
/// values annals.append_events reports for outcome 4, sql/0009_refuse_changed_resend.sql).
inline constexpr unsigned kChangedType = 1;
inline constexpr unsigned kChangedSchemaVersion = 2;
inline constexpr unsigned kChangedData = 4;
inline constexpr unsigned kChangedMetadata = 8;

/// Throws the IdempotencyError of a re-send whose event ids are stored but whose content
/// differs, naming the first differing event, its stream and stored version, and
/// the parts (a sum of kChanged*) that differ. Shared so that every store says the same.
[[noreturn]] void throw_changed_resend(const StreamId& stream, StreamVersion version,
                                       const EventId& id, unsigned parts);

}  // namespace annals::detail
