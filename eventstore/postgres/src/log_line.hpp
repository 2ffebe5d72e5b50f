// Internal: one line of an export (annals/postgres/log_transfer.hpp) and its parts: writing it
// from the stored columns, reading it back, and the jsonb text the hash chain covers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace annals::postgres::detail {

/// One event of an export, every stored column in its text form.
struct LogLine {
  std::string stream;
  std::int64_t version = 0;
  std::string position;  ///< "<transaction id>:<global position>", as read-all prints it
  std::string event_id;  ///< lower-case UUID
  std::string type;
  std::int32_t schema_version = 1;
  std::string data;      ///< PostgreSQL's jsonb text ("{"a": 1}"), as the hash covers it
  std::string metadata;  ///< the same
  std::int64_t recorded_micros = 0;  ///< microseconds since 1970-01-01 UTC
  std::string transaction_id;
  std::string hash_hex;  ///< 64 lower-case hex digits
};

/// Appends `line` as one line of NDJSON (with '\n'): the keys of `annals read-all` in its order,
/// then transaction_id and hash. data and metadata are written as read-all prints them
/// (annals::detail::compact_stored_json).
void write_line(const LogLine& line, std::string& out);

/// Reads one line written by write_line (keys in any order, blanks anywhere). data and metadata
/// come back in jsonb's text form (annals::detail::jsonb_text_form). Throws: InvalidArgumentError
/// naming what is wrong.
[[nodiscard]] LogLine parse_line(std::string_view text);

/// "YYYY-MM-DDTHH:MM:SS.ffffffZ" (annals::format_timestamp) as microseconds since the epoch.
/// Throws: InvalidArgumentError when `text` is not in that form.
[[nodiscard]] std::int64_t parse_timestamp_micros(std::string_view text);

}  // namespace annals::postgres::detail
