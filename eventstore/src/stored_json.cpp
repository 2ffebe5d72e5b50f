// The parser of stored JSON (see detail/stored_json.hpp).
//
// Turning the data and metadata columns into nlohmann::json was most of read_all's client time
// (docs/performance.md, "Reads"): nlohmann's parser reads through a character-by-character
// input adapter into a token buffer and a SAX builder. This parser reads JSON text straight
// into nlohmann::json values. It handles every JSON it fully understands and gives up (empty)
// on anything else: malformed text, invalid UTF-8, an escaped U+0000, duplicate keys, nesting
// deeper than kMaxJsonDepth. Then, unless the text nests deeper than kMaxJsonDepth (refused),
// nlohmann::json::parse decides, so values and errors are exactly nlohmann's
// (tests/integration/framework/stored_json_test.cpp), except for numbers a double cannot hold,
// which this parser keeps as their text. The fast path's own depth check is the limit itself,
// so JSON within the limit pays nothing for it; the full scan runs only on the slow path.
#include "annals/eventstore/detail/stored_json.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "annals/eventstore/json_limits.hpp"
#include "text_validation.hpp"

namespace annals::detail {
namespace {

class StoredJsonParser {
 public:
  explicit StoredJsonParser(std::string_view text)
      : p_(text.data()), end_(text.data() + text.size()) {}

  std::optional<nlohmann::json> parse() {
    nlohmann::json value;
    if (!parse_value(value, 0)) return std::nullopt;
    skip_space();
    if (p_ != end_) return std::nullopt;
    return value;
  }

 private:
  // Recursion stops here: one level of parse_value and parse_array/parse_object per level.
  static constexpr std::size_t kMaxDepth = kMaxJsonDepth;

  void skip_space() noexcept {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\t' || *p_ == '\r')) ++p_;
  }
  bool consume(char c) noexcept {
    skip_space();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  bool parse_value(nlohmann::json& out, std::size_t depth) {
    skip_space();
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return parse_object(out, depth);
      case '[':
        return parse_array(out, depth);
      case '"': {
        std::string text;
        if (!parse_string(text)) return false;
        out = std::move(text);
        return true;
      }
      case 't':
        return parse_literal("true", out, nlohmann::json(true));
      case 'f':
        return parse_literal("false", out, nlohmann::json(false));
      case 'n':
        return parse_literal("null", out, nlohmann::json(nullptr));
      default:
        return parse_number(out);
    }
  }

  bool parse_literal(std::string_view word, nlohmann::json& out, nlohmann::json value) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    out = std::move(value);
    return true;
  }

  bool parse_object(nlohmann::json& out, std::size_t depth) {
    if (depth >= kMaxDepth) return false;
    ++p_;  // '{'
    out = nlohmann::json::object();
    auto& object = out.get_ref<nlohmann::json::object_t&>();
    skip_space();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      skip_space();
      if (p_ == end_ || *p_ != '"') return false;
      std::string key;
      if (!parse_string(key)) return false;
      if (!consume(':')) return false;
      nlohmann::json value;
      if (!parse_value(value, depth + 1)) return false;
      if (!object.emplace(std::move(key), std::move(value)).second) return false;  // duplicate
      skip_space();
      if (p_ == end_) return false;
      const char next = *p_++;
      if (next == '}') return true;
      if (next != ',') return false;
    }
  }

  bool parse_array(nlohmann::json& out, std::size_t depth) {
    if (depth >= kMaxDepth) return false;
    ++p_;  // '['
    out = nlohmann::json::array();
    auto& array = out.get_ref<nlohmann::json::array_t&>();
    skip_space();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      array.emplace_back();
      if (!parse_value(array.back(), depth + 1)) return false;
      skip_space();
      if (p_ == end_) return false;
      const char next = *p_++;
      if (next == ']') return true;
      if (next != ',') return false;
    }
  }

  static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

  // JSON's number grammar; integers as nlohmann stores them (negative: int64, else uint64,
  // a double when out of range), the rest as doubles. A number no double can hold (its
  // magnitude overflows, or a non-zero value would round to zero: from_chars reports both as
  // out of range) becomes a string of its exact text, where nlohmann would throw (overflow)
  // or silently store 0 (underflow).
  bool parse_number(nlohmann::json& out) {
    const char* start = p_;
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && is_digit(*p_)) ++p_;
    } else {
      return false;
    }
    bool integer = true;
    if (p_ != end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (p_ == end_ || !is_digit(*p_)) return false;
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !is_digit(*p_)) return false;
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    if (integer) {
      if (*start == '-') {
        std::int64_t value = 0;
        const auto [ptr, ec] = std::from_chars(start, p_, value);
        if (ec == std::errc() && ptr == p_) {
          out = value;
          return true;
        }
      } else {
        std::uint64_t value = 0;
        const auto [ptr, ec] = std::from_chars(start, p_, value);
        if (ec == std::errc() && ptr == p_) {
          out = value;
          return true;
        }
      }
    }
    double value = 0;
    const auto [ptr, ec] = std::from_chars(start, p_, value);
    if (ec == std::errc::result_out_of_range && ptr == p_) {
      out = std::string(start, p_);
      return true;
    }
    if (ec != std::errc() || ptr != p_) return false;
    out = value;
    return true;
  }

  bool parse_hex4(std::uint32_t& value) noexcept {
    if (end_ - p_ < 4) return false;
    value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      value <<= 4;
      if (c >= '0' && c <= '9') {
        value |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        value |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        value |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool parse_string(std::string& out) {
    ++p_;  // the opening quote
    const char* start = p_;
    bool ascii = true;
    // The common case: no escapes, one copy.
    while (p_ != end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out.assign(start, p_);
        ++p_;
        return ascii || is_valid_utf8(out);
      }
      if (c == '\\') break;
      if (c < 0x20) return false;  // must be escaped in JSON
      if (c >= 0x80) ascii = false;
      ++p_;
    }
    if (p_ == end_) return false;
    out.assign(start, p_);
    while (p_ != end_) {
      const auto c = static_cast<unsigned char>(*p_++);
      if (c == '"') return ascii || is_valid_utf8(out);
      if (c < 0x20) return false;
      if (c != '\\') {
        if (c >= 0x80) ascii = false;
        out.push_back(static_cast<char>(c));
        continue;
      }
      if (p_ == end_) return false;
      switch (*p_++) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!parse_hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t low = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!parse_hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            return false;
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  const char* p_;
  const char* end_;
};

// Checks, without building anything, that StoredJsonParser accepts `text` with every number
// held as a number: the same grammar, the same string rules (valid UTF-8, no escaped U+0000,
// no unpaired surrogate), the same depth limit, and no number beyond a double's range. It does
// not look for duplicate keys, which the parser refuses: on such text parse_stored_json falls
// back to nlohmann::json::parse, which accepts it, since everything else about it is valid.
// So when this accepts, parse_stored_json succeeds; the reverse need not hold (the caller then
// parses at once, as before issue 14).
class StoredJsonChecker {
 public:
  explicit StoredJsonChecker(std::string_view text) noexcept
      : p_(text.data()), end_(text.data() + text.size()) {}

  bool check() noexcept {
    if (!check_value(0)) return false;
    skip_space();
    return p_ == end_;
  }

 private:
  static constexpr std::size_t kMaxDepth = kMaxJsonDepth;
  // A number without an exponent that is shorter than this lies between 1e-300 and 1e300 in
  // magnitude (or is zero), well inside a double's range, and needs no conversion to check.
  static constexpr std::ptrdiff_t kSurelyInRange = 300;

  void skip_space() noexcept {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\t' || *p_ == '\r')) ++p_;
  }

  bool check_value(std::size_t depth) noexcept {
    skip_space();
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return check_object(depth);
      case '[':
        return check_array(depth);
      case '"':
        return check_string();
      case 't':
        return check_literal("true");
      case 'f':
        return check_literal("false");
      case 'n':
        return check_literal("null");
      default:
        return check_number();
    }
  }

  bool check_literal(std::string_view word) noexcept {
    if (static_cast<std::size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  bool check_object(std::size_t depth) noexcept {
    if (depth >= kMaxDepth) return false;
    ++p_;  // '{'
    skip_space();
    if (p_ != end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      skip_space();
      if (p_ == end_ || *p_ != '"') return false;
      if (!check_string()) return false;
      skip_space();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      if (!check_value(depth + 1)) return false;
      skip_space();
      if (p_ == end_) return false;
      const char next = *p_++;
      if (next == '}') return true;
      if (next != ',') return false;
    }
  }

  bool check_array(std::size_t depth) noexcept {
    if (depth >= kMaxDepth) return false;
    ++p_;  // '['
    skip_space();
    if (p_ != end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      if (!check_value(depth + 1)) return false;
      skip_space();
      if (p_ == end_) return false;
      const char next = *p_++;
      if (next == ']') return true;
      if (next != ',') return false;
    }
  }

  static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

  bool check_number() noexcept {
    const char* start = p_;
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && is_digit(*p_)) ++p_;
    } else {
      return false;
    }
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !is_digit(*p_)) return false;
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    bool exponent = false;
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      exponent = true;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !is_digit(*p_)) return false;
      while (p_ != end_ && is_digit(*p_)) ++p_;
    }
    if (!exponent && p_ - start < kSurelyInRange) return true;
    // Longer than any 64-bit integer: StoredJsonParser::parse_number reads it as a double and
    // keeps its text when from_chars reports it out of range.
    double value = 0;
    const auto [ptr, ec] = std::from_chars(start, p_, value);
    return ec == std::errc() && ptr == p_;
  }

  bool check_hex4(std::uint32_t& value) noexcept {
    if (end_ - p_ < 4) return false;
    value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      value <<= 4;
      if (c >= '0' && c <= '9') {
        value |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        value |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        value |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  // The raw bytes between the quotes are checked as UTF-8 as a whole: escapes are ASCII, so
  // they are valid UTF-8 exactly when the unescaped string's own bytes are.
  bool check_string() noexcept {
    ++p_;  // the opening quote
    const char* start = p_;
    bool ascii = true;
    while (p_ != end_) {
      const auto c = static_cast<unsigned char>(*p_++);
      if (c == '"')
        return ascii ||
               is_valid_utf8(std::string_view(start, static_cast<std::size_t>(p_ - 1 - start)));
      if (c < 0x20) return false;
      if (c >= 0x80) {
        ascii = false;
        continue;
      }
      if (c != '\\') continue;
      if (p_ == end_) return false;
      switch (*p_++) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!check_hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t low = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
            p_ += 2;
            if (!check_hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
          } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            return false;
          }
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  const char* p_;
  const char* end_;
};

}  // namespace

nlohmann::json parse_stored_json(std::string_view text) {
  if (auto fast = StoredJsonParser(text).parse()) return *std::move(fast);
  check_json_text_depth(text, "the text");
  return nlohmann::json::parse(text.begin(), text.end());
}

bool is_lazy_stored_json(std::string_view text) noexcept { return StoredJsonChecker(text).check(); }

namespace {

// `text` without blanks outside strings, with one after each ',' and ':' when
// `after_separators`.
std::string with_blanks(std::string_view text, bool after_separators) {
  std::string out;
  out.reserve(text.size() + (after_separators ? text.size() / 8 : 0));
  bool in_string = false;
  for (std::size_t at = 0; at < text.size(); ++at) {
    const char c = text[at];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && at + 1 < text.size()) {
        out.push_back(text[++at]);  // the escaped character, which may be a quote
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
      out.push_back(c);
    } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
      out.push_back(c);
      if (after_separators && (c == ',' || c == ':')) out.push_back(' ');
    }
  }
  return out;
}

}  // namespace

std::string compact_stored_json(std::string_view text) { return with_blanks(text, false); }

std::string jsonb_text_form(std::string_view text) { return with_blanks(text, true); }

}  // namespace annals::detail
