// Internal: the parser of JSON that a store reads back from its own storage (PostgreSQL's
// jsonb rendered as text), shared by every reader of stored events so that all of them decode
// the same text to the same value. Not part of the public API.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace annals::detail {

/// Parses stored JSON text. Values are exactly what nlohmann::json::parse returns (the same
/// number types: int64 for negative integers, uint64 for the others, double when an integer is
/// out of their range), with one exception: a number that no double can hold, because its
/// magnitude is beyond about 1.8e308 (`1e400`, a 400-digit integer) or because it is not zero
/// but would round to zero (`1e-400`), becomes a JSON string holding the number's text exactly
/// as stored. nlohmann would throw on the first and store 0 for the second (docs/schema.md,
/// "Numbers a double cannot hold").
/// Throws: InvalidArgumentError when `text` nests deeper than kMaxJsonDepth (json_limits.hpp),
/// whether or not it is JSON; nlohmann::json::parse_error (or another nlohmann::json::exception)
/// when `text` is not JSON.
/// Cost: one pass over the text; on input the fast path does not fully understand (an escaped
/// U+0000, nesting deeper than kMaxJsonDepth, malformed text) a scan of its depth and
/// nlohmann's parser.
[[nodiscard]] nlohmann::json parse_stored_json(std::string_view text);

/// Whether `text` may be kept as text in a LazyJson (detail/lazy_json_access.hpp) and parsed
/// later: true only when parse_stored_json(text) succeeds and no number in it is beyond a
/// double's range (a value held as text then stays equal to its text as JSON). False for
/// every text that parse_stored_json refuses, and for some that it accepts (an escaped U+0000,
/// a number kept as a string, a UTF-8 byte order mark): the reader parses those at once.
/// Duplicate keys are not looked for (parse_stored_json accepts them, as nlohmann does).
/// Throws: nothing. Cost: one pass over the text without allocating: 0.3 µs against 1.6 µs for
/// parse_stored_json (and destroying the value) on the ~340 bytes of a typical event at -O2.
[[nodiscard]] bool is_lazy_stored_json(std::string_view text) noexcept;

/// Stored JSON text without the blanks outside strings (`{"a":1}` from jsonb's `{"a": 1}`):
/// the form `annals read`, `read-all` and `export` print. Requires: `text` is JSON (a string
/// left open is copied to the end as it is). Cost: one pass, one allocation.
[[nodiscard]] std::string compact_stored_json(std::string_view text);

/// The reverse for JSON whose keys are already in jsonb's order (as `export` writes them):
/// jsonb's text form, no blanks outside strings but one after each ',' and ':'. PostgreSQL
/// renders a jsonb value exactly so, which is what the hash chain covers.
/// Requires and costs as compact_stored_json.
[[nodiscard]] std::string jsonb_text_form(std::string_view text);

}  // namespace annals::detail
