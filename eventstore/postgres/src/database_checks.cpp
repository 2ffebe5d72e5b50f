#include "database_checks.hpp"

#include <charconv>
#include <string>

#include "annals/eventstore/error.hpp"
#include "sql.hpp"

namespace annals::postgres::detail {

std::uint64_t parse_u64(const pqxx::field& field) {
  std::uint64_t value = 0;
  const char* begin = field.c_str();
  const char* end = begin + field.size();
  const auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) {
    throw CorruptionError("unreadable transaction id '" + std::string(begin, end) + "'");
  }
  return value;
}

std::optional<TransactionIdsAhead> check_database(pqxx::transaction_base& tx) {
  if (!tx.exec1(sql::kSchemaPresent)[0].as<bool>()) {
    throw NotFoundError("the annals schema is missing from the database; run `annals migrate`");
  }
  const auto row = tx.exec1(sql::kTransactionIdCheck);
  if (row[0].is_null()) return std::nullopt;
  const TransactionIdsAhead ids{.stored = parse_u64(row[0]), .next = parse_u64(row[1])};
  if (ids.stored < ids.next) return std::nullopt;
  return ids;
}

}  // namespace annals::postgres::detail
