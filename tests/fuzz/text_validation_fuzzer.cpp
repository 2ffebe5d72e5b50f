// Fuzzes the validation of stream ids and event type names against a reference written
// independently here: a name is valid when it is non-empty, within its byte limit, well-formed
// UTF-8 (RFC 3629) and free of control characters (U+0000-U+001F, U+007F-U+009F). Any other
// outcome than "accepted exactly when the reference accepts, refused with InvalidArgumentError
// otherwise" aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "annals/eventstore/detail/encoded_event.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"

namespace {

// The code point starting at text[at], advancing `at`; empty for ill-formed UTF-8.
std::optional<std::uint32_t> next_code_point(std::string_view text, std::size_t& at) {
  const auto lead = static_cast<unsigned char>(text[at++]);
  if (lead < 0x80) return lead;
  std::size_t extra = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
  if ((lead & 0xE0) == 0xC0) {
    extra = 1, cp = lead & 0x1Fu, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    extra = 2, cp = lead & 0x0Fu, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    extra = 3, cp = lead & 0x07u, min = 0x10000;
  } else {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < extra; ++i) {
    if (at >= text.size()) return std::nullopt;
    const auto c = static_cast<unsigned char>(text[at++]);
    if ((c & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (c & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  return cp;
}

bool reference_accepts(std::string_view text, std::size_t max_bytes) {
  if (text.empty() || text.size() > max_bytes) return false;
  for (std::size_t at = 0; at < text.size();) {
    const auto cp = next_code_point(text, at);
    if (!cp || *cp < 0x20 || (*cp >= 0x7F && *cp <= 0x9F)) return false;
  }
  return true;
}

void check(bool condition) {
  if (!condition) std::abort();
}

void fuzz_stream_id(const std::string& text) {
  const bool expected = reference_accepts(text, annals::StreamId::kMaxBytes);
  try {
    const annals::StreamId id(text);
    check(expected);
    check(id.value() == text);
    const auto category = id.category();
    check(text.starts_with(category));
    check(category.size() == text.size() || text[category.size()] == '-');
  } catch (const annals::InvalidArgumentError&) {
    check(!expected);
  }
}

void fuzz_event_type(const std::string& text) {
  constexpr std::size_t kMaxTypeBytes = 256;  // NewEvent::type's documented limit
  const bool expected = reference_accepts(text, kMaxTypeBytes);
  const annals::StreamId stream("fuzz-1");
  std::vector<annals::NewEvent> events(1);
  events[0].type = text;
  try {
    const auto encoded = annals::detail::encode_events(stream, events, annals::AppendLimits{});
    check(expected);
    check(encoded.size() == 1 && encoded[0].type == text);
  } catch (const annals::InvalidArgumentError&) {
    check(!expected);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz_stream_id(text);
  fuzz_event_type(text);
  return 0;
}
