// Private: UTF-8 and control-character checks shared by StreamId and event type names, and
// quoting of untrusted text for error messages.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace annals::detail {

/// The first reason `text` is not valid UTF-8 free of control characters (U+0000-U+001F,
/// U+007F-U+009F), e.g. "contains control character U+000A at byte offset 3"; empty when
/// the text is fine.
[[nodiscard]] std::optional<std::string> find_text_problem(std::string_view text);

/// `text` in double quotes for an error message: quotes and backslashes escaped, control
/// characters as \uXXXX, invalid UTF-8 bytes as \xXX, cut after `max_bytes` input bytes.
[[nodiscard]] std::string quote_for_message(std::string_view text, std::size_t max_bytes = 80);

}  // namespace annals::detail
