// The translator of error_translation.hpp.
#include "error_translation.hpp"

#include <string_view>

#include "annals/eventstore/error.hpp"

namespace annals::postgres::detail {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

Failure classify(const DbError& error) noexcept {
  if (error.outcome_unknown()) return Failure::kFinal;  // a commit in doubt is not repeated
  if (error.connection_broken()) return Failure::kBrokenConnection;
  const std::string_view state = error.sqlstate();
  // 23505: an append raced a writer that bypassed the stream lock, or reused an event id of
  // another stream concurrently; calling again gets the authoritative answer (re-send,
  // conflict or overlap) from the append function's own checks. Class 40 as libpqxx 6.4
  // reports it (its transaction_rollback family; db_error.hpp): serialization failure,
  // deadlock, a rolled-back or unknown statement completion.
  if (state == sqlstate::kUniqueViolation || state == sqlstate::kSerializationFailure ||
      state == sqlstate::kDeadlockDetected || state == sqlstate::kTransactionRollback ||
      state == sqlstate::kStatementCompletionUnknown) {
    return Failure::kRetry;
  }
  // Server going away: admin shutdown, crash shutdown, cannot connect now.
  if (state == sqlstate::kAdminShutdown || state == sqlstate::kCrashShutdown ||
      state == sqlstate::kCannotConnectNow || starts_with(state, "08")) {
    return Failure::kBrokenConnection;
  }
  return Failure::kFinal;
}

Failure classify(const std::exception& error) { return classify(to_db_error(error)); }

void rethrow_translated(const std::exception& error, const std::string& what, bool write,
                        Origin origin) {
  rethrow_translated(to_db_error(error), what, write, origin);
}

void rethrow_translated(const DbError& error, const std::string& what, bool write, Origin origin) {
  if (error.outcome_unknown()) {
    throw OutcomeUnknownError(what + ": commit outcome unknown (" + error.what() + ")");
  }
  if (classify(error) == Failure::kBrokenConnection) {
    if (write) {
      throw OutcomeUnknownError(what +
                                ": the connection broke; the write may have committed. "
                                "Retry with the same event ids. (" +
                                std::string(error.what()) + ")");
    }
    throw UnavailableError(what + ": database unavailable (" + std::string(error.what()) + ")");
  }
  const std::string_view state = error.sqlstate();
  const std::string detail = " [SQLSTATE " + std::string(state) + "]";
  if (state == sqlstate::kInsufficientPrivilege) {
    throw PermissionDeniedError(
        what + ": permission denied for this database role: " + error.what() + detail);
  }
  const bool missing = state == sqlstate::kUndefinedTable ||
                       state == sqlstate::kUndefinedFunction ||
                       state == sqlstate::kInvalidSchemaName;
  if (origin == Origin::kReadModel) {
    // A projection's statement on its own tables: neither an event id nor the annals schema
    // is involved, so say what the server said.
    if (starts_with(state, "23")) {
      throw InvalidArgumentError(
          what + ": violates a constraint of the read model: " + error.what() + detail);
    }
    if (missing) {
      throw NotFoundError(what +
                          ": a table, function or schema the statement uses does not "
                          "exist: " +
                          error.what() + detail);
    }
    if (starts_with(state, "42")) {
      throw InvalidArgumentError(what + ": invalid statement: " + error.what() + detail);
    }
  }
  if (state == sqlstate::kUniqueViolation) {
    throw IdempotencyError(what + ": an event id is already stored" + detail);
  }
  // Data exceptions: invalid text representation, untranslatable character (\u0000 in
  // jsonb), invalid parameter value, program limits such as an index row too large.
  if (starts_with(state, "22") || starts_with(state, "54")) {
    throw InvalidArgumentError(what + ": invalid input: " + error.what());
  }
  if (missing) {
    throw NotFoundError(what + ": the annals schema is missing or outdated; run `annals migrate`" +
                        detail);
  }
  if (state == sqlstate::kQueryCanceled || starts_with(state, "53") ||
      state == sqlstate::kSerializationFailure || state == sqlstate::kDeadlockDetected) {
    throw UnavailableError(what + ": " + error.what());
  }
  throw InternalError(what + ": unexpected database error" + detail + ": " + error.what());
}

}  // namespace annals::postgres::detail
