// The `annals` tool's machine-readable output: one JSON object per line, keys in a fixed order
// (docs/cli.md lists them). Other programs parse these lines; change them only with the docs.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/timestamp.hpp"
#include "annals/eventstore/types.hpp"

namespace annals {
struct UpcastEvent;  // annals/framework/event_registry.hpp
}  // namespace annals

namespace annals::cli {

/// RFC 3339 in UTC with microseconds, e.g. "2026-11-23T14:31:00.123456Z" (truncated, not
/// rounded, to the microsecond): the library's one formatting (annals/eventstore/timestamp.hpp).
using annals::format_timestamp;

/// {"stream":..,"first_version":..,"last_version":..,"position":"<position>"} without a newline.
[[nodiscard]] std::string to_json_line(const AppendResult& result);

/// {"stream":..,"version":..,"position":"..","event_id":"..","type":..,"schema_version":..,
///  "data":..,"metadata":..,"recorded_at":".."} without a newline. An event the store could
/// not decode (RecordedEvent::decode_failure) is printed as stored (stream, type, data and
/// metadata from decode_failure; JSON that does not parse as a string) with one more key
/// last, "undecodable": the reason.
[[nodiscard]] std::string to_json_line(const RecordedEvent& event);
/// Part `index` of `parts` of `event` upcast by an EventRegistry: the line of to_json_line
/// with the part's type, schema version and data, plus "stored_type" and
/// "stored_schema_version" when they differ from the part's, and "part" and "parts" when an
/// upcaster split the event.
[[nodiscard]] std::string to_json_line(const RecordedEvent& event, const UpcastEvent& part,
                                       std::size_t index, std::size_t parts);
/// `event` as stored (to_json_line) with the reason it could not be upcast under
/// "upcast_error".
[[nodiscard]] std::string upcast_error_json_line(const RecordedEvent& event,
                                                 const std::string& reason);

/// {"error":"concurrency","stream":..,"expected":"<any|no-stream|exists|N>","actual":N|null}
/// without a newline; actual is null when the stream had no events.
[[nodiscard]] std::string to_json_line(const ConcurrencyError& error);

}  // namespace annals::cli
