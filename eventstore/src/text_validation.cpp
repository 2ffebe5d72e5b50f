// The UTF-8 and control-character checks of text_validation.hpp: one strict UTF-8 decoder
// (RFC 3629) behind every check, message and sanitizer of stored and appended text.
#include "text_validation.hpp"

#include <cstdint>
#include <cstdio>

namespace annals::detail {
namespace {

// One decoded UTF-8 sequence: its code point, or -1 when the bytes at the offset are not a
// valid sequence (then `length` is 1: the offending byte).
struct Decoded {
  std::int32_t code_point;
  std::size_t length;
};

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
Decoded decode_utf8(std::string_view text, std::size_t at) noexcept {
  const auto lead = static_cast<unsigned char>(text[at]);
  if (lead < 0x80) return {lead, 1};
  std::size_t length = 0;
  std::uint32_t code_point = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
    code_point = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    code_point = lead & 0x0Fu;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    code_point = lead & 0x07u;
  } else {
    return {-1, 1};
  }
  if (text.size() - at < length) return {-1, 1};
  for (std::size_t k = 1; k < length; ++k) {
    const auto next = static_cast<unsigned char>(text[at + k]);
    if ((next & 0xC0u) != 0x80u) return {-1, 1};
    code_point = (code_point << 6) | (next & 0x3Fu);
  }
  const bool overlong =
      (length == 3 && code_point < 0x800) || (length == 4 && code_point < 0x10000);
  const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  if (overlong || surrogate || code_point > 0x10FFFF) return {-1, 1};
  return {static_cast<std::int32_t>(code_point), length};
}

bool is_control(std::int32_t code_point) {
  return code_point < 0x20 || (code_point >= 0x7F && code_point <= 0x9F);
}

std::string hex(unsigned value, int digits) {
  char buffer[16];
  const int written = std::snprintf(buffer, sizeof buffer, "%0*X", digits, value);
  return std::string(buffer, static_cast<std::size_t>(written));
}

}  // namespace

std::optional<std::string> find_text_problem(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const Decoded decoded = decode_utf8(text, at);
    if (decoded.code_point < 0) {
      return "is not valid UTF-8 (byte 0x" + hex(static_cast<unsigned char>(text[at]), 2) +
             " at byte offset " + std::to_string(at) + ")";
    }
    if (is_control(decoded.code_point)) {
      return "contains control character U+" + hex(static_cast<unsigned>(decoded.code_point), 4) +
             " at byte offset " + std::to_string(at);
    }
    at += decoded.length;
  }
  return std::nullopt;
}

std::optional<std::string> find_type_problem(std::string_view type) {
  if (type.empty()) return "type is empty";
  if (type.size() > kMaxTypeBytes) {
    return "type " + quote_for_message(type) + " is " + std::to_string(type.size()) +
           " bytes long, over the limit of " + std::to_string(kMaxTypeBytes) + " bytes";
  }
  if (auto problem = find_text_problem(type)) {
    return "type " + quote_for_message(type) + " " + *problem;
  }
  return std::nullopt;
}

std::string sanitize_text(std::string_view text, std::size_t max_bytes) {
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  for (std::size_t at = 0; at < text.size();) {
    const Decoded decoded = decode_utf8(text, at);
    const bool bad = decoded.code_point < 0 || is_control(decoded.code_point);
    const std::string_view piece = bad ? kReplacement : text.substr(at, decoded.length);
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece);
    at += decoded.length;
  }
  if (out.empty()) out = kReplacement;
  return out;
}

std::string quote_for_message(std::string_view text, std::size_t max_bytes) {
  std::string out = "\"";
  std::size_t at = 0;
  while (at < text.size() && at < max_bytes) {
    const Decoded decoded = decode_utf8(text, at);
    if (decoded.code_point < 0) {
      out += "\\x" + hex(static_cast<unsigned char>(text[at]), 2);
    } else if (is_control(decoded.code_point)) {
      out += "\\u" + hex(static_cast<unsigned>(decoded.code_point), 4);
    } else {
      if (decoded.code_point == '"' || decoded.code_point == '\\') out += '\\';
      out.append(text.substr(at, decoded.length));
    }
    at += decoded.length;
  }
  out += '"';
  if (at < text.size()) out += "...";
  return out;
}

std::size_t utf8_sequence_length(std::string_view text, std::size_t at) noexcept {
  const Decoded decoded = decode_utf8(text, at);
  return decoded.code_point < 0 ? 0 : decoded.length;
}

bool is_valid_utf8(std::string_view text) noexcept {
  for (std::size_t at = 0; at < text.size();) {
    const Decoded decoded = decode_utf8(text, at);
    if (decoded.code_point < 0) return false;
    at += decoded.length;
  }
  return true;
}

}  // namespace annals::detail
