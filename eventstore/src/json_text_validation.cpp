// The check of appended JSON text (see json_text_validation.hpp).
//
// Why a validator of our own rather than nlohmann's SAX interface: nlohmann's lexer copies
// every string, key and number into a token buffer and reads through a character-by-character
// input adapter, which would cost a large part of what appending text instead of a tree saves
// (issue 14: the client's CPU per appended event). This is one pass over the bytes, without
// allocation, and iterative (a stack of kMaxJsonDepth open brackets, no recursion), so no
// input can exhaust the stack. It accepts a subset of what nlohmann::json::parse accepts
// (nlohmann also takes a byte order mark, `\u0000`, numbers that underflow to 0 and any
// depth), so the in-memory store's parse of accepted text cannot fail, and the subset is
// exactly what PostgreSQL's jsonb stores and reads back as the same value.
#include "annals/eventstore/detail/json_text_validation.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <system_error>

#include "annals/eventstore/json_limits.hpp"
#include "text_validation.hpp"

namespace annals::detail {
namespace {

// Integers with at most this many digits fit an int64 or uint64: no range check is needed.
constexpr std::size_t kSafeIntegerDigits = 18;

// PostgreSQL's numeric input (numeric_in, as jsonb parses numbers): the most digits after the
// decimal point (NUMERIC_DSCALE_MAX) and the bound of an exponent's magnitude (INT_MAX / 2).
constexpr std::int64_t kMaxNumericScale = 16383;
constexpr std::int64_t kMaxNumericExponent = 1073741823;
constexpr std::int64_t kSaturated = std::int64_t{1} << 40;
constexpr std::string_view kNumericCannotHold =
    "which PostgreSQL's numeric type cannot hold (at most 16383 digits after the decimal point, "
    "counting the exponent, and an exponent below 1073741823)";

std::string hex(unsigned value, int digits) {
  char buffer[16];
  const int written = std::snprintf(buffer, sizeof buffer, "%0*X", digits, value);
  return std::string(buffer, static_cast<std::size_t>(written));
}

// The bytes that stand for themselves in a JSON string: printable ASCII but '"' and '\\'.
constexpr std::array<bool, 256> kPlainStringByte = [] {
  std::array<bool, 256> plain{};
  for (unsigned c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class JsonTextValidator {
 public:
  explicit JsonTextValidator(std::string_view text) : text_(text) {}

  std::optional<std::string> run(JsonTextShape shape) {
    if (!check_value_sequence()) return std::move(problem_);
    if (shape == JsonTextShape::kObject) {
      std::size_t first = 0;
      while (is_space(text_[first])) ++first;  // a value follows: the text is valid JSON
      if (text_[first] != '{') return "must be a JSON object, got " + kind_name(text_[first]);
    }
    return std::nullopt;
  }

 private:
  static bool is_space(char c) noexcept { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

  static std::string kind_name(char first) {
    switch (first) {
      case '[':
        return "array";
      case '"':
        return "string";
      case 't':
      case 'f':
        return "boolean";
      case 'n':
        return "null";
      default:
        return "number";
    }
  }

  bool at_end() const noexcept { return at_ == text_.size(); }
  void skip_space() noexcept {
    while (at_ < text_.size() && is_space(text_[at_])) ++at_;
  }

  bool fail(std::string what) {
    problem_ = std::move(what);
    return false;
  }
  bool fail_syntax(const std::string& what) { return fail("is not JSON: " + what); }
  bool fail_end() {
    return fail_syntax("the text ends at byte offset " + offset() +
                       " before the JSON value is complete");
  }
  bool fail_unexpected() {
    if (at_end()) return fail_end();
    const auto c = static_cast<unsigned char>(text_[at_]);
    std::string shown;
    if (c > 0x20 && c < 0x7F) {
      shown = std::string("character '") + static_cast<char>(c) + "'";
    } else if (c < 0x80) {
      shown = "character U+" + hex(c, 4);
    } else {
      shown = "byte 0x" + hex(c, 2);
    }
    return fail_syntax("unexpected " + shown + " at byte offset " + offset());
  }
  std::string offset() const { return std::to_string(at_); }

  // The whole text: one value, whitespace around it. Iterative: `open_` holds the brackets of
  // the arrays and objects the current position is inside.
  bool check_value_sequence() {
    bool expecting_value = true;
    for (;;) {
      skip_space();
      if (expecting_value) {
        if (at_end()) return fail_end();
        const char c = text_[at_];
        if (c == '{' || c == '[') {
          if (depth_ == kMaxJsonDepth) {
            return fail("is JSON nested " + std::to_string(json_text_depth(text_)) +
                        " levels deep, over the limit of " + std::to_string(kMaxJsonDepth) +
                        " levels");
          }
          open_[depth_++] = c;
          ++at_;
          skip_space();
          const char close = c == '{' ? '}' : ']';
          if (!at_end() && text_[at_] == close) {
            ++at_;
            --depth_;
            expecting_value = false;
          } else if (c == '{' && !check_key()) {
            return false;
          }
          continue;
        }
        if (!check_scalar()) return false;
        expecting_value = false;
        continue;
      }
      if (depth_ == 0) {
        if (!at_end()) {
          return fail_syntax("text after the JSON value, at byte offset " + offset());
        }
        return true;
      }
      if (at_end()) return fail_end();
      const char c = text_[at_];
      const bool in_object = open_[depth_ - 1] == '{';
      if (c == ',') {
        ++at_;
        if (in_object) {
          skip_space();
          if (!check_key()) return false;
        }
        expecting_value = true;
      } else if (c == (in_object ? '}' : ']')) {
        ++at_;
        --depth_;
      } else {
        return fail_unexpected();
      }
    }
  }

  // A key and its colon, at the key's opening quote.
  bool check_key() {
    if (at_end() || text_[at_] != '"') return fail_unexpected();
    if (!check_string()) return false;
    skip_space();
    if (at_end() || text_[at_] != ':') return fail_unexpected();
    ++at_;
    return true;
  }

  bool check_scalar() {
    const char c = text_[at_];
    switch (c) {
      case '"':
        return check_string();
      case 't':
        return check_literal("true");
      case 'f':
        return check_literal("false");
      case 'n':
        return check_literal("null");
      default:
        if (c == '-' || is_digit(c)) return check_number();
        return fail_unexpected();
    }
  }

  bool check_literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return fail_unexpected();
    at_ += word.size();
    return true;
  }

  // JSON's number grammar, a range a double can hold (what from_chars reports as out of range:
  // overflow, or a non-zero number that would round to zero), and what PostgreSQL's numeric
  // input takes (its numeric_in): at most kMaxNumericScale digits after the decimal point,
  // counting the exponent (`1.` and 17,000 zeros, `0e-16384` are refused with SQLSTATE 22003),
  // and an exponent below kMaxNumericExponent in magnitude (`0e1073741823` is refused too).
  bool check_number() {
    const std::size_t start = at_;
    if (text_[at_] == '-') ++at_;
    if (at_end() || !is_digit(text_[at_])) return fail_unexpected();
    if (text_[at_] == '0') {
      ++at_;
    } else {
      while (!at_end() && is_digit(text_[at_])) ++at_;
    }
    bool plain_integer = at_ - start <= kSafeIntegerDigits;
    std::int64_t scale = 0;  // digits after the point, less the exponent
    if (!at_end() && text_[at_] == '.') {
      plain_integer = false;
      ++at_;
      if (at_end() || !is_digit(text_[at_])) return fail_unexpected();
      const std::size_t fraction = at_;
      while (!at_end() && is_digit(text_[at_])) ++at_;
      scale = static_cast<std::int64_t>(at_ - fraction);  // at most the text's size
    }
    if (!at_end() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      plain_integer = false;
      ++at_;
      bool negative = false;
      if (!at_end() && (text_[at_] == '+' || text_[at_] == '-')) negative = text_[at_++] == '-';
      if (at_end() || !is_digit(text_[at_])) return fail_unexpected();
      std::int64_t exponent = 0;
      for (; !at_end() && is_digit(text_[at_]); ++at_) {
        // Saturates far beyond the limit, so that no number of digits can overflow it.
        exponent = std::min<std::int64_t>(exponent * 10 + (text_[at_] - '0'), kSaturated);
      }
      if (exponent >= kMaxNumericExponent) return fail_number(start, kNumericCannotHold);
      scale += negative ? exponent : -exponent;
    }
    if (plain_integer) return true;
    if (scale > kMaxNumericScale) return fail_number(start, kNumericCannotHold);
    double value = 0;
    const char* first = text_.data() + start;
    const char* last = text_.data() + at_;
    if (std::from_chars(first, last, value).ec == std::errc::result_out_of_range) {
      return fail_number(start, "which no double can hold");
    }
    return true;
  }

  bool fail_number(std::size_t start, std::string_view why) {
    constexpr std::size_t kShown = 40;
    const std::string_view number = text_.substr(start, at_ - start);
    return fail("holds the number " + std::string(number.substr(0, kShown)) +
                (number.size() > kShown ? "..." : "") + " at byte offset " + std::to_string(start) +
                ", " + std::string(why));
  }

  // A string, at its opening quote.
  bool check_string() {
    ++at_;
    for (;;) {
      // The common case: a run of printable ASCII other than quote and backslash (a local
      // index, so that the loop keeps it in a register).
      std::size_t at = at_;
      while (at < text_.size() && kPlainStringByte[static_cast<unsigned char>(text_[at])]) ++at;
      at_ = at;
      if (at_end()) return fail_end();
      const auto c = static_cast<unsigned char>(text_[at_]);
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c == '\\') {
        if (!check_escape()) return false;
      } else if (c < 0x20) {
        return fail_syntax("control character U+" + hex(c, 4) +
                           " in a string is not escaped, at byte offset " + offset());
      } else {
        const std::size_t length = utf8_sequence_length(text_, at_);
        if (length == 0) {
          return fail("is not valid UTF-8 (byte 0x" + hex(c, 2) + " at byte offset " + offset() +
                      ")");
        }
        at_ += length;
      }
    }
  }

  // An escape, at its backslash.
  bool check_escape() {
    const std::size_t start = at_;
    ++at_;
    if (at_end()) return fail_end();
    switch (text_[at_]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        ++at_;
        return true;
      case 'u':
        break;
      default:
        at_ = start;
        return fail_syntax("invalid escape sequence at byte offset " + offset());
    }
    ++at_;
    std::uint32_t unit = 0;
    if (!read_hex4(unit)) return false;
    if (unit == 0) return fail("contains the character U+0000, which cannot be stored");
    if (unit >= 0xDC00 && unit <= 0xDFFF) return fail_surrogate(start, unit);
    if (unit < 0xD800 || unit > 0xDBFF) return true;
    // A high surrogate: a low one must follow.
    if (text_.substr(at_, 2) != "\\u") return fail_surrogate(start, unit);
    at_ += 2;
    std::uint32_t low = 0;
    if (!read_hex4(low)) return false;
    if (low < 0xDC00 || low > 0xDFFF) return fail_surrogate(start, unit);
    return true;
  }

  bool read_hex4(std::uint32_t& unit) {
    for (int k = 0; k < 4; ++k) {
      if (at_end()) return fail_end();
      const int digit = hex_digit(text_[at_]);
      if (digit < 0) return fail_syntax("invalid \\u escape at byte offset " + offset());
      unit = (unit << 4) | static_cast<std::uint32_t>(digit);
      ++at_;
    }
    return true;
  }

  bool fail_surrogate(std::size_t start, std::uint32_t unit) {
    return fail("is not valid UTF-8: the escape \\u" + hex(unit, 4) + " at byte offset " +
                std::to_string(start) + " is half of a UTF-16 surrogate pair without the other");
  }

  std::string_view text_;
  std::size_t at_ = 0;
  std::size_t depth_ = 0;
  std::array<char, kMaxJsonDepth> open_{};
  std::string problem_;
};

}  // namespace

std::optional<std::string> find_json_text_problem(std::string_view text, JsonTextShape shape) {
  return JsonTextValidator(text).run(shape);
}

}  // namespace annals::detail
