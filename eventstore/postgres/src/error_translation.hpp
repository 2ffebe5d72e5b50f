// Internal: the single place where libpqxx exceptions become annals errors, by SQLSTATE and
// exception class, never by message text (STYLE 2.4).
#pragma once

#include <exception>
#include <string>

namespace annals::postgres::detail {

/// What to do after a driver failure.
enum class Failure {
  kBrokenConnection,  ///< Discard the connection; the call may be retried on a new one.
  kRetry,             ///< Transient (serialization failure, deadlock, a raced unique key).
  kFinal,             ///< Not retryable: rethrow the translated error.
};

/// Classifies the exception currently being handled.
Failure classify(const std::exception& error) noexcept;

/// Rethrows `error` as the matching annals error. `what` names the operation
/// ("append to stream \"x\"") for the message. `write` marks calls whose outcome is unknown
/// when the connection broke mid-call.
[[noreturn]] void rethrow_translated(const std::exception& error, const std::string& what,
                                     bool write);

}  // namespace annals::postgres::detail
