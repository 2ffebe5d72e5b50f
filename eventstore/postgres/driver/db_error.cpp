#include "db_error.hpp"

#include <pqxx/except>

namespace annals::postgres::detail {
namespace {

// libpqxx 6.4 maps class 40 to exception classes that derive from pqxx::failure, not
// pqxx::sql_error, so the SQLSTATE it dispatched on is lost; the class gives it back.
std::string_view rollback_state(const pqxx::transaction_rollback& error) noexcept {
  if (dynamic_cast<const pqxx::serialization_failure*>(&error) != nullptr) {
    return sqlstate::kSerializationFailure;
  }
  if (dynamic_cast<const pqxx::deadlock_detected*>(&error) != nullptr) {
    return sqlstate::kDeadlockDetected;
  }
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&error) != nullptr) {
    return sqlstate::kStatementCompletionUnknown;
  }
  return sqlstate::kTransactionRollback;
}

}  // namespace

DbError to_db_error(const std::exception& error) {
  if (const auto* db = dynamic_cast<const DbError*>(&error)) return *db;
  // in_doubt_error and broken_connection first: neither is an sql_error.
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) {
    return DbError::commit_in_doubt(error.what());
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr) {
    return DbError::broken(error.what(), true);
  }
  if (const auto* rollback = dynamic_cast<const pqxx::transaction_rollback*>(&error)) {
    return DbError::refused(error.what(), std::string(rollback_state(*rollback)));
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
    std::string state = sql->sqlstate();
    // libpqxx 6.4 throws insufficient_privilege for 42501 without passing the SQLSTATE on.
    if (state.empty() && dynamic_cast<const pqxx::insufficient_privilege*>(&error) != nullptr) {
      state = sqlstate::kInsufficientPrivilege;
    }
    return DbError::refused(error.what(), state);
  }
  return DbError::client(error.what());
}

}  // namespace annals::postgres::detail
