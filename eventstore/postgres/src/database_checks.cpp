#include "database_checks.hpp"

#include "annals/eventstore/error.hpp"
#include "sql.hpp"

namespace annals::postgres::detail {

std::optional<TransactionIdsAhead> check_database(pqxx::transaction_base& tx, bool* partitioned) {
  const auto schema = tx.exec1(sql::kSchemaPresent);
  if (!schema[0].as<bool>()) {
    throw NotFoundError("the annals schema is missing from the database; run `annals migrate`");
  }
  if (!schema[1].as<bool>()) {
    throw NotFoundError(
        "the annals schema is older than this library (migration 0005_least_privilege is not "
        "applied); run `annals migrate`");
  }
  if (!schema[2].as<bool>()) {
    throw NotFoundError(
        "the annals schema is older than this library (migration "
        "0013_restored_transaction_ids is not applied); run `annals migrate`");
  }
  if (!schema[3].as<bool>()) {
    throw NotFoundError(
        "the annals schema is older than this library (migration 0014_stream_lifecycle is not "
        "applied); run `annals migrate`");
  }
  if (partitioned != nullptr) *partitioned = schema[4].as<bool>();
  const auto row = tx.exec1(sql::kTransactionIdCheck);
  if (row[0].is_null()) return std::nullopt;
  const TransactionIdsAhead ids{.stored = parse_int<std::uint64_t>(row[0], "transaction id"),
                                .next = parse_int<std::uint64_t>(row[1], "transaction id")};
  if (ids.stored < ids.next) return std::nullopt;
  return ids;
}

}  // namespace annals::postgres::detail
