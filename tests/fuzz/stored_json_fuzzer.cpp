// Differential fuzzing of the stored-JSON decoder (annals::detail::parse_stored_json) against
// nlohmann::json::parse. Both must make the same accept/refuse decision and, where both accept,
// produce equal values of the same types, except for the documented differences:
//   - text nested deeper than annals::kMaxJsonDepth is refused (InvalidArgumentError) by the
//     decoder, while nlohmann accepts it;
//   - a number no double can hold becomes a string of its exact text, where nlohmann throws
//     (magnitude too large: out_of_range 406) or stores 0 (a non-zero value that underflows).
// Any other difference, or any other exception, aborts. And text that
// annals::detail::is_lazy_stored_json lets a reader keep unparsed (issue 14) must be accepted
// by both, with equal values and no number kept as text.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "annals/eventstore/detail/stored_json.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"

namespace {

using nlohmann::json;

void check(bool condition) {
  if (!condition) std::abort();
}

// Whether `text` is JSON number text (the grammar both parsers use).
bool is_number_text(std::string_view text) {
  std::size_t at = 0;
  const auto digits = [&] {
    const std::size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    return at > start;
  };
  if (at < text.size() && text[at] == '-') ++at;
  if (at < text.size() && text[at] == '0') {
    ++at;
  } else if (!digits()) {
    return false;
  }
  if (at < text.size() && text[at] == '.') {
    ++at;
    if (!digits()) return false;
  }
  if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
    ++at;
    if (at < text.size() && (text[at] == '+' || text[at] == '-')) ++at;
    if (!digits()) return false;
  }
  return at == text.size();
}

// A number kept as text by the decoder where nlohmann stored a number: allowed when the text
// is a number and nlohmann's value is what it makes of one a double cannot hold (0 for an
// underflow; an overflow makes nlohmann throw, handled by the caller).
bool is_kept_number(const json& decoded, const json& reference) {
  if (!decoded.is_string() || !reference.is_number()) return false;
  const auto& text = decoded.get_ref<const std::string&>();
  return is_number_text(text) && reference.is_number_float() && reference.get<double>() == 0.0;
}

// Equal values of the same types, up to kept numbers. Recursion is bounded by kMaxJsonDepth:
// the decoder accepted the value.
bool same(const json& decoded, const json& reference) {
  if (is_kept_number(decoded, reference)) return true;
  if (decoded.type() != reference.type()) return false;
  if (decoded.is_array()) {
    if (decoded.size() != reference.size()) return false;
    for (std::size_t i = 0; i < decoded.size(); ++i) {
      if (!same(decoded[i], reference[i])) return false;
    }
    return true;
  }
  if (decoded.is_object()) {
    if (decoded.size() != reference.size()) return false;
    for (auto it = decoded.begin(); it != decoded.end(); ++it) {
      const auto found = reference.find(it.key());
      if (found == reference.end() || !same(it.value(), *found)) return false;
    }
    return true;
  }
  if (decoded.is_number_float()) {
    const double a = decoded.get<double>();
    const double b = reference.get<double>();
    return a == b && std::signbit(a) == std::signbit(b);
  }
  return decoded == reference;
}

// Whether the value holds a string that is number text (a number the decoder kept as text,
// or a string that happens to look like one).
bool holds_number_text(const json& value) {
  if (value.is_string()) return is_number_text(value.get_ref<const std::string&>());
  if (!value.is_structured()) return false;
  for (const auto& element : value) {
    if (holds_number_text(element)) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool too_deep = annals::json_text_depth(text) > annals::kMaxJsonDepth;

  std::optional<json> decoded;
  try {
    decoded = annals::detail::parse_stored_json(text);
    check(!too_deep);
  } catch (const annals::InvalidArgumentError&) {
    check(too_deep);  // the only reason the decoder refuses with this error
  } catch (const json::exception&) {
    check(!too_deep);
  }

  std::optional<json> reference;
  bool reference_overflowed = false;
  try {
    reference = json::parse(text.begin(), text.end());
  } catch (const json::out_of_range&) {
    reference_overflowed = true;  // a number beyond a double's range
  } catch (const json::exception&) {
  }

  if (annals::detail::is_lazy_stored_json(text)) {
    check(decoded.has_value() && reference.has_value() && !reference_overflowed);
    check(same(*decoded, *reference) && *decoded == *reference);
  }
  if (too_deep) return 0;  // refused by the decoder whatever nlohmann does
  if (reference_overflowed) {
    // The decoder keeps such a number as text. nlohmann stops at the number, so the text may
    // still be malformed after it: only what the decoder accepts can be checked.
    if (decoded) check(holds_number_text(*decoded));
    return 0;
  }
  check(decoded.has_value() == reference.has_value());
  if (decoded) check(same(*decoded, *reference));
  return 0;
}
