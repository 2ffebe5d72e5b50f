// Times as text: the one formatting of a time point that annals prints (the CLI's
// `recorded_at`, the samples' read models, the benchmark's report).
//
//   annals::format_timestamp(event.recorded_at);   // "2026-11-23T14:31:00.123456Z"
//
// Thread safety: a pure function; call it from any thread.
#pragma once

#include <chrono>
#include <string>

namespace annals {

/// `time` in UTC as RFC 3339 with exactly six fractional digits, "YYYY-MM-DDTHH:MM:SS.ffffffZ"
/// (PostgreSQL's timestamptz precision, so a stored recorded_at prints exactly). Digits below
/// the microsecond are truncated toward the past, never rounded into the next second.
/// Throws: std::bad_alloc only. Cost: one 27-character string, no system call, no time zone
/// database.
[[nodiscard]] std::string format_timestamp(std::chrono::system_clock::time_point time);

}  // namespace annals
