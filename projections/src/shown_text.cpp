#include "shown_text.hpp"

#include <cstdio>

namespace annals::projections::detail {

std::string shown_text(std::string_view text, char quote, std::size_t max_bytes) {
  std::string out(1, quote);
  for (std::size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x7f && text[i] != quote && byte != '\\') {
      out.push_back(text[i]);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned>(byte));
      out += escaped;
    }
  }
  if (text.size() > max_bytes) out += "...";
  out.push_back(quote);
  return out;
}

}  // namespace annals::projections::detail
