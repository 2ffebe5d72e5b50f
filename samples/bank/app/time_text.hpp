// RFC 3339 timestamps in query strings (GET /accounts/{id}/history?as_of=...).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace bank {

/// Parses an RFC 3339 date-time: "2024-05-01T12:34:56Z", "2024-05-01T12:34:56.5+02:00". The
/// offset is required; 'T'/'t' and 'Z'/'z' are both accepted, and a space in place of the
/// offset's '+' too (what an unencoded '+' becomes in a query string). Fractions keep up to
/// nanoseconds. Returns empty for anything else (including impossible dates, and times the
/// system clock cannot hold: before about 1678 or after about 2261).
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> parse_rfc3339(
    std::string_view text);

}  // namespace bank
