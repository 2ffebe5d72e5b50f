#include "error_translation.hpp"

#include <string_view>

#include <pqxx/except>

#include "annals/eventstore/error.hpp"

namespace annals::postgres::detail {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string_view sqlstate_of(const std::exception& error) noexcept {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
    const std::string_view state = sql->sqlstate();
    // libpqxx 6.4 throws insufficient_privilege for 42501 without passing the SQLSTATE on.
    if (state.empty() && dynamic_cast<const pqxx::insufficient_privilege*>(&error) != nullptr) {
      return "42501";
    }
    return state;
  }
  return {};
}

Failure classify(const std::exception& error) noexcept {
  if (dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr) {
    return Failure::kBrokenConnection;
  }
  // serialization_failure and deadlock_detected derive from transaction_rollback, not
  // sql_error, in libpqxx 6.4 (ECOSYSTEM 3).
  if (dynamic_cast<const pqxx::transaction_rollback*>(&error) != nullptr) return Failure::kRetry;
  const auto state = sqlstate_of(error);
  // 23505: an append raced a writer that bypassed the stream lock, or reused an event id of
  // another stream concurrently; calling again gets the authoritative answer (re-send,
  // conflict or overlap) from the append function's own checks.
  if (state == "23505" || state == "40001" || state == "40P01") return Failure::kRetry;
  // Server going away: admin shutdown, crash shutdown, cannot connect now.
  if (state == "57P01" || state == "57P02" || state == "57P03" || starts_with(state, "08")) {
    return Failure::kBrokenConnection;
  }
  return Failure::kFinal;
}

void rethrow_translated(const std::exception& error, const std::string& what, bool write) {
  rethrow_translated(error, what, write, Origin::kEventStore);
}

void rethrow_translated(const std::exception& error, const std::string& what, bool write,
                        Origin origin) {
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) {
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
  const auto state = sqlstate_of(error);
  const std::string detail = " [SQLSTATE " + std::string(state) + "]";
  if (state == "42501") {
    throw PermissionDeniedError(
        what + ": permission denied for this database role: " + error.what() + detail);
  }
  if (origin == Origin::kReadModel) {
    // A projection's statement on its own tables: neither an event id nor the annals schema
    // is involved, so say what the server said.
    if (starts_with(state, "23")) {
      throw InvalidArgumentError(
          what + ": violates a constraint of the read model: " + error.what() + detail);
    }
    if (state == "42P01" || state == "42883" || state == "3F000") {
      throw NotFoundError(what +
                          ": a table, function or schema the statement uses does not "
                          "exist: " +
                          error.what() + detail);
    }
    if (starts_with(state, "42")) {
      throw InvalidArgumentError(what + ": invalid statement: " + error.what() + detail);
    }
  }
  if (state == "23505") {
    throw IdempotencyError(what + ": an event id is already stored" + detail);
  }
  // Data exceptions: invalid text representation, untranslatable character (\u0000 in
  // jsonb), invalid parameter value, program limits such as an index row too large.
  if (starts_with(state, "22") || starts_with(state, "54")) {
    throw InvalidArgumentError(what + ": invalid input: " + error.what());
  }
  if (state == "42P01" || state == "42883" || state == "3F000") {
    throw NotFoundError(what + ": the annals schema is missing or outdated; run `annals migrate`" +
                        detail);
  }
  if (state == "57014" || starts_with(state, "53") || state == "40001" || state == "40P01") {
    throw UnavailableError(what + ": " + error.what());
  }
  throw InternalError(what + ": unexpected database error" + detail + ": " + error.what());
}

}  // namespace annals::postgres::detail
