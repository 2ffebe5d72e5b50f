// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` value that lets one
// request be followed from the command that appended events to the projections that applied
// them. An application validates the header it received (parse_traceparent) and stores it in
// the events' metadata under kTraceparentKey (CommandContext::extra); projection runners then
// name its trace id in their log lines and metric exemplars (trace_id_of).
//
//   if (auto tp = annals::parse_traceparent(request.get_header_value("traceparent")))
//     context.extra[std::string(annals::kTraceparentKey)] = *tp;
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "annals/eventstore/types.hpp"

namespace annals {

/// The metadata key under which events carry their traceparent.
inline constexpr std::string_view kTraceparentKey = "traceparent";

/// The traceparent in `header` when it is valid, normalised to its first 55 characters
/// ("vv-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"), else empty. Valid: lower-case
/// hex fields of those lengths separated by '-'; version not "ff"; trace id and parent id not
/// all zeros; version "00" exactly 55 characters, a later version 55 or more with a '-' after
/// the flags (its further fields are dropped), as the W3C specification says.
/// Optional whitespace around the value is ignored. Cost: one pass over at most 55 characters.
[[nodiscard]] std::optional<std::string> parse_traceparent(std::string_view header);

/// The trace id (32 hex digits) of a valid traceparent, or an empty view.
[[nodiscard]] std::string_view trace_id_of_traceparent(std::string_view traceparent) noexcept;

/// The trace id of an event: from the string under kTraceparentKey in its metadata when that is
/// a valid traceparent; empty otherwise (none, not a string, malformed). Cost: a substring search
/// of the stored metadata text; parses the metadata only when it names the key.
[[nodiscard]] std::string trace_id_of(const RecordedEvent& event);

}  // namespace annals
