// Times as text: the one formatting of a time point that annals prints (the CLI's
// `recorded_at`, the samples' read models, the benchmark's report), and the one parsing of the
// times users give (the CLI's --since, --until and --as-of).
//
//   annals::format_timestamp(event.recorded_at);   // "2026-11-23T14:31:00.123456Z"
//   annals::parse_timestamp("2026-11-23T15:31:00+01:00");  // the same second
//
// Thread safety: a pure function; call it from any thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace annals {

/// `time` in UTC as RFC 3339 with exactly six fractional digits, "YYYY-MM-DDTHH:MM:SS.ffffffZ"
/// (PostgreSQL's timestamptz precision, so a stored recorded_at prints exactly). Digits below
/// the microsecond are truncated toward the past, never rounded into the next second.
/// Throws: std::bad_alloc only. Cost: one 27-character string, no system call, no time zone
/// database.
[[nodiscard]] std::string format_timestamp(std::chrono::system_clock::time_point time);

/// The time named by `text`, RFC 3339 with a zone: "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|
/// -HH:MM)" ('T' may be 't' or one space, 'Z' may be 'z'; up to nine fractional digits, kept
/// to the microsecond, truncated), or a date alone, "YYYY-MM-DD", meaning its midnight UTC.
/// Every value format_timestamp() prints parses back to the same microsecond.
/// Throws: InvalidArgumentError naming the text and what is wrong with it (a missing zone, a
/// month 13, February 30, an hour 24, trailing characters, a year the system clock cannot
/// hold: before 1678 or after 2261, ...). Cost: no allocation on
/// success, no system call, no time zone database.
[[nodiscard]] std::chrono::system_clock::time_point parse_timestamp(std::string_view text);

}  // namespace annals
