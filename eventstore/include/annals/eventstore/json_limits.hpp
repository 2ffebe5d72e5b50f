// The limit on how deeply JSON may nest, enforced on every path by which JSON enters annals:
// appends (data, metadata), snapshots, stored rows read back (events, dead letters, snapshots)
// and the CLI's JSON arguments and standard input (docs/security.md, "Input limits").
//
// Why: nlohmann::json parses and destroys iteratively, but dump(), copying and comparing
// recurse once per level, so a value nested 100,000 deep overflows the stack of whatever thread
// touches it. Refusing such JSON where it enters keeps every value annals holds shallow enough
// for all of them.
//
//   annals::check_json_text_depth(text, "standard input");  // before nlohmann::json::parse
//
// Thread safety: pure functions; call from any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

namespace annals {

/// The deepest nesting of arrays and objects accepted in any JSON value: `[]` and `{}` are one
/// level deep, a scalar is zero levels. 512 is far beyond any document's real needs, and
/// small enough that recursion through it takes well under 1 MiB of stack.
inline constexpr std::size_t kMaxJsonDepth = 512;

/// The nesting depth of JSON text: the most '[' and '{' open at once, counting only brackets
/// outside strings. Defined for any text, malformed or not (a stray closing bracket is ignored).
/// Cost: one pass over the text, no allocation. Throws: nothing.
[[nodiscard]] std::size_t json_text_depth(std::string_view text) noexcept;

/// The nesting depth of a value (as json_text_depth would count it in value.dump()).
/// Cost: one iterative walk over the value's arrays and objects (no recursion), one allocation
/// per level of nesting. Throws: std::bad_alloc only.
[[nodiscard]] std::size_t json_depth(const nlohmann::json& value);

/// Refuses JSON text nested deeper than kMaxJsonDepth.
/// Throws: InvalidArgumentError naming `what`, the text's depth and the limit, e.g. "standard
/// input is JSON nested 100000 levels deep, over the limit of 512 levels".
/// Cost: that of json_text_depth.
void check_json_text_depth(std::string_view text, std::string_view what);

/// Refuses a value nested deeper than kMaxJsonDepth, with the message of check_json_text_depth.
/// Throws: InvalidArgumentError. Cost: that of json_depth.
void check_json_depth(const nlohmann::json& value, std::string_view what);

}  // namespace annals
