// Internal: the single place where libpqxx exceptions become annals errors, by SQLSTATE and
// exception class, never by message text (STYLE 2.4).
#pragma once

#include <exception>
#include <string>
#include <string_view>

#include <pqxx/connection>

#include "annals/eventstore/error.hpp"

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

/// The SQLSTATE of a server error (empty for other exceptions), also where libpqxx 6.4 drops
/// it (insufficient_privilege: 42501).
std::string_view sqlstate_of(const std::exception& error) noexcept;

/// Classifies the exception currently being handled.
Failure classify(const std::exception& error) noexcept;

/// Rethrows `error` as the matching annals error. `what` names the operation
/// ("append to stream \"x\"") for the message. `write` marks calls whose outcome is unknown
/// when the connection broke mid-call. Messages assume annals' own statements
/// (Origin::kEventStore): 23505 is a stored event id, 42P01 a missing annals schema.
[[noreturn]] void rethrow_translated(const std::exception& error, const std::string& what,
                                     bool write);

/// The same, worded for `origin`. For Origin::kReadModel the messages are neutral:
/// integrity violations (class 23: unique, foreign key, not null, check) and invalid
/// statements (class 42 other than a missing object) are InvalidArgumentError naming the
/// constraint or statement problem, and a missing table, function or schema is NotFoundError
/// without pointing at `annals migrate`.
[[noreturn]] void rethrow_translated(const std::exception& error, const std::string& what,
                                     bool write, Origin origin);

/// Opens a connection of its own (a `Connection`, constructed from the connection string),
/// runs `f(connection)` and translates any driver failure (for one-off administrative calls:
/// migrations, diagnostics).
template <typename Connection = pqxx::connection, typename F>
auto with_connection(const std::string& connection_string, const std::string& what, F&& f) {
  try {
    Connection connection(connection_string);
    return f(connection);
  } catch (const annals::Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_translated(e, what, false);
  }
}

}  // namespace annals::postgres::detail
