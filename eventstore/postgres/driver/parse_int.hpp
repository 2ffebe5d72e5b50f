// Internal: reading the numbers the server sends as text (transaction ids, positions,
// versions), for every reader of rows in the driver layer's users.
#pragma once

#include <charconv>
#include <string>
#include <string_view>
#include <system_error>

#include <pqxx/field>

#include "annals/eventstore/error.hpp"

namespace annals::postgres::detail {

/// A stored number read from its text form (a transaction id, a position, a version).
/// Throws CorruptionError naming `what` and the text when the whole text is not one.
template <typename Int>
Int parse_int(std::string_view text, const char* what) {
  Int value{};
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    throw CorruptionError(std::string("unreadable ") + what + " '" + std::string(text) + "'");
  }
  return value;
}

/// parse_int of a libpqxx field.
template <typename Int>
Int parse_int(const pqxx::field& field, const char* what) {
  return parse_int<Int>(std::string_view(field.c_str(), field.size()), what);
}

}  // namespace annals::postgres::detail
