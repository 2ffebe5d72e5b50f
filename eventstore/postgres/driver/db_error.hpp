// Internal: DbError, the one failure value of the PostgreSQL driver layer, and the boundary
// where libpqxx's exceptions become it.
//
// Two drivers reach the server: LibpqConnection (the event store's hot paths, verify, anchors)
// throws DbError itself; libpqxx (snapshot store, migrations, database checks, projection
// store sessions) throws its own exception classes, which to_db_error() converts. Everything
// above this header (classify, the translator to annals errors, run_pooled) reads only
// DbError, so no layer imitates another's exceptions.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace annals::postgres::detail {

/// The SQLSTATEs the driver layer names (PostgreSQL Appendix A), defined once.
namespace sqlstate {
inline constexpr std::string_view kUniqueViolation = "23505";
inline constexpr std::string_view kInsufficientPrivilege = "42501";
inline constexpr std::string_view kUndefinedTable = "42P01";
inline constexpr std::string_view kUndefinedFunction = "42883";
inline constexpr std::string_view kInvalidSchemaName = "3F000";
inline constexpr std::string_view kInvalidParameterValue = "22023";
inline constexpr std::string_view kTransactionRollback = "40000";
inline constexpr std::string_view kSerializationFailure = "40001";
inline constexpr std::string_view kStatementCompletionUnknown = "40003";
inline constexpr std::string_view kDeadlockDetected = "40P01";
inline constexpr std::string_view kQueryCanceled = "57014";
inline constexpr std::string_view kAdminShutdown = "57P01";
inline constexpr std::string_view kCrashShutdown = "57P02";
inline constexpr std::string_view kCannotConnectNow = "57P03";
}  // namespace sqlstate

/// A failure of a request to the server. Thread safety: a value.
class DbError : public std::runtime_error {
 public:
  /// The server refused the request: its message and SQLSTATE (may be empty when the server
  /// sent none).
  static DbError refused(const std::string& message, const std::string& sqlstate) {
    return DbError(message, sqlstate, false, false);
  }
  /// The connection broke or could not be opened. `may_have_reached_server`: the request was
  /// (perhaps partly) sent before it broke, so it may have taken effect.
  static DbError broken(const std::string& message, bool may_have_reached_server) {
    return DbError(message, {}, true, may_have_reached_server);
  }
  /// A commit whose answer was lost (libpqxx's in_doubt_error): it may have committed. Not a
  /// broken connection to retry on: whether it is worth repeating is the caller's to decide.
  static DbError commit_in_doubt(const std::string& message) {
    return DbError(message, {}, false, true);
  }
  /// A failure on the client side (a bad call, a conversion): neither SQLSTATE nor broken.
  static DbError client(const std::string& message) { return DbError(message, {}, false, false); }

  /// The SQLSTATE the server sent; empty when it sent none or the server was not reached.
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
  /// The connection is unusable: discard it; the request may be retried on a new one.
  [[nodiscard]] bool connection_broken() const noexcept { return connection_broken_; }
  /// The request was sent and no answer tells what it did: it may have taken effect.
  [[nodiscard]] bool may_have_reached_server() const noexcept { return may_have_reached_server_; }
  /// A commit in doubt: the request reached the server, no answer came, and the connection is
  /// not reported broken (libpqxx's in_doubt_error, whose connection libpqxx already gave up).
  [[nodiscard]] bool outcome_unknown() const noexcept {
    return may_have_reached_server_ && !connection_broken_;
  }

 private:
  DbError(const std::string& message, std::string sqlstate, bool connection_broken,
          bool may_have_reached_server)
      : std::runtime_error(message),
        sqlstate_(std::move(sqlstate)),
        connection_broken_(connection_broken),
        may_have_reached_server_(may_have_reached_server) {}

  std::string sqlstate_;
  bool connection_broken_;
  bool may_have_reached_server_;
};

/// `error` as a DbError: a DbError as it is; a libpqxx exception by its class and SQLSTATE,
/// including libpqxx 6.4's quirks (insufficient_privilege thrown without its SQLSTATE: 42501;
/// the transaction_rollback family, which carries none: 40000, 40001, 40003, 40P01;
/// broken_connection: broken, may have reached the server; in_doubt_error: commit in doubt);
/// anything else as a client failure with its message. The single place where libpqxx's
/// exceptions are read (STYLE 2.4).
[[nodiscard]] DbError to_db_error(const std::exception& error);

}  // namespace annals::postgres::detail
