// Internal: the single place where driver failures (DbError, db_error.hpp) become annals
// errors, by SQLSTATE and the connection's state, never by message text (STYLE 2.4).
#pragma once

#include <exception>
#include <string>

#include "annals/eventstore/error.hpp"
#include "db_error.hpp"

namespace annals::postgres::detail {

/// What to do after a driver failure.
enum class Failure {
  kBrokenConnection,  ///< Discard the connection; the call may be retried on a new one.
  kRetry,             ///< Transient (serialization failure, deadlock, a raced unique key).
  kFinal,             ///< Not retryable: rethrow the translated error.
};

/// Whose statement failed, for the wording of messages (the translation by SQLSTATE into
/// error classes is the same, except where noted in rethrow_translated).
enum class Origin {
  kEventStore,  ///< annals' own statements on the annals schema (appends, reads, projections).
  kReadModel,   ///< a read-model statement of a projection, on the projection's own tables.
};

/// Classifies a driver failure.
[[nodiscard]] Failure classify(const DbError& error) noexcept;
/// classify(to_db_error(error)).
[[nodiscard]] Failure classify(const std::exception& error);

/// Throws `error` as the matching annals error. `what` names the operation
/// ("append to stream \"x\"") for the message. `write` marks calls whose outcome is unknown
/// when the connection broke mid-call. `origin` words the messages: for Origin::kEventStore
/// (annals' own statements) 23505 is a stored event id and 42P01 a missing annals schema; for
/// Origin::kReadModel the messages are neutral: integrity violations (class 23: unique,
/// foreign key, not null, check) and invalid statements (class 42 other than a missing
/// object) are InvalidArgumentError naming the constraint or statement problem, and a missing
/// table, function or schema is NotFoundError without pointing at `annals migrate`.
[[noreturn]] void rethrow_translated(const DbError& error, const std::string& what, bool write,
                                     Origin origin = Origin::kEventStore);
/// rethrow_translated(to_db_error(error), ...): for a failure caught as std::exception.
[[noreturn]] void rethrow_translated(const std::exception& error, const std::string& what,
                                     bool write, Origin origin = Origin::kEventStore);

}  // namespace annals::postgres::detail
