// Internal: the checks a store and `verify` make of a database before trusting its log: the
// schema is migrated, and no stored transaction id is ahead of the server's next one (a dump
// restored into a new cluster; ARCHITECTURE decision 5).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <pqxx/pqxx>

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

/// The highest stored transaction id and the server's next one, when the first is not below
/// the second.
struct TransactionIdsAhead {
  std::uint64_t stored = 0;
  std::uint64_t next = 0;
};

/// Throws NotFoundError when the annals schema is missing; returns the ids when stored
/// transaction ids are ahead of the server's, empty when all is well (or the log is empty).
/// Cost: two statements on `tx`.
std::optional<TransactionIdsAhead> check_database(pqxx::transaction_base& tx);

}  // namespace annals::postgres::detail
