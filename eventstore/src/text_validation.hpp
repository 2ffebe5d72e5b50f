// Private: the one UTF-8 validator (also used by the stored-JSON parser), the UTF-8 and
// control-character checks shared by StreamId and event type names, the event type rule itself
// (used on append and on read), and quoting of untrusted text for error messages. Implemented
// in text_validation.cpp.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace annals::detail {

/// Whether `text` is well-formed UTF-8 as RFC 3629 defines it: no overlong forms, surrogates
/// or code points above U+10FFFF (control characters are allowed). This is what nlohmann's
/// parser accepts in a JSON string.
[[nodiscard]] bool is_valid_utf8(std::string_view text) noexcept;

/// The length of the well-formed UTF-8 sequence (is_valid_utf8's rules) that starts at byte
/// `at` of `text`, 1 to 4; 0 when the bytes there are not one. Requires: at < text.size().
[[nodiscard]] std::size_t utf8_sequence_length(std::string_view text, std::size_t at) noexcept;

/// The first reason `text` is not valid UTF-8 free of control characters (U+0000-U+001F,
/// U+007F-U+009F), e.g. "contains control character U+000A at byte offset 3"; empty when
/// the text is fine.
[[nodiscard]] std::optional<std::string> find_text_problem(std::string_view text);

/// The longest event type name, in bytes.
inline constexpr std::size_t kMaxTypeBytes = 256;

/// The first reason `type` is not a valid event type name (non-empty, at most kMaxTypeBytes
/// bytes, valid UTF-8 without control characters), e.g. "type is empty"; empty when it is
/// valid. The same rule is the CHECK constraint events_event_type_check (sql/0007).
[[nodiscard]] std::optional<std::string> find_type_problem(std::string_view type);

/// `text` made valid for display: each invalid UTF-8 byte and each control character replaced
/// by U+FFFD, cut at a character boundary to at most `max_bytes` bytes, and U+FFFD when
/// nothing is left. Text that is already valid and short enough is returned as it is.
[[nodiscard]] std::string sanitize_text(std::string_view text, std::size_t max_bytes);

/// `text` in double quotes for an error message: quotes and backslashes escaped, control
/// characters as \uXXXX, invalid UTF-8 bytes as \xXX, cut after `max_bytes` input bytes.
[[nodiscard]] std::string quote_for_message(std::string_view text, std::size_t max_bytes = 80);

}  // namespace annals::detail
