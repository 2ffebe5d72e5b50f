// Internal (detail): the check of JSON text that an application appends as it is
// (NewEvent::data_json, NewEvent::metadata_json), so that text is held to every rule a tree is
// held to without building a tree; also the check of an import's lines (annals::postgres).
// Implemented in eventstore/src/json_text_validation.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace annals::detail {

/// What a JSON text must be besides valid JSON.
enum class JsonTextShape {
  kAnyValue,  ///< any JSON value (event data)
  kObject,    ///< a JSON object (event metadata)
};

/// The first reason `text` is not JSON that every store stores as it is and reads back as the
/// same value, phrased to follow the name of the field, e.g. "is not JSON: unexpected character
/// 'x' at byte offset 12"; empty when the text is fine. The rules:
///  - exactly one JSON value (RFC 8259) with optional whitespace around it: no byte order
///    mark, comments or trailing text;
///  - strings of well-formed UTF-8 (as is_valid_utf8), control characters escaped, escapes
///    that name characters (a `\u` surrogate only as the first half of a pair);
///  - no `\u0000` (PostgreSQL's jsonb cannot store U+0000: "contains the character U+0000,
///    which cannot be stored", as for a tree);
///  - every number one a double can hold: not beyond about 1.8e308 and not a non-zero number
///    that rounds to zero (nlohmann's parser refuses the first and stores 0 for the second);
///    and one PostgreSQL's numeric input takes: at most 16383 digits after the decimal point,
///    counting the exponent (`1.` followed by 17,000 zeros, `0e-16384`), and an exponent below
///    1073741823 in magnitude;
///  - nesting at most kMaxJsonDepth levels ("is JSON nested N levels deep, over the limit of
///    512 levels", as json_limits.hpp says it);
///  - with JsonTextShape::kObject, an object ("must be a JSON object, got array").
/// Whatever this accepts, nlohmann::json::parse accepts (to the same value PostgreSQL's jsonb
/// reads back) and PostgreSQL's jsonb input accepts.
/// Cost: one pass over the text, no allocation when the text is fine (the depth of text that
/// nests too deeply is measured by a second pass). Throws: std::bad_alloc only.
[[nodiscard]] std::optional<std::string> find_json_text_problem(std::string_view text,
                                                                JsonTextShape shape);

}  // namespace annals::detail
