// annals error taxonomy.
//
// Every failure that leaves an annals library is an `annals::Error` (a std::runtime_error) with a
// closed `ErrorCode` and a `retryable()` answer. Driver exceptions (libpqxx, nlohmann_json,
// Boost) never leave the library: each module translates them once, by SQLSTATE or by type.
//
//   try { store->append(stream, ExpectedVersion::exact(v), events); }
//   catch (const annals::ConcurrencyError& e) { /* reload, decide again */ }
//
// Thread safety: error objects are immutable values.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "annals/eventstore/types.hpp"

namespace annals {

/// The closed set of failure kinds. Stable: tools map them to exit codes.
enum class ErrorCode {
  kInvalidArgument,   ///< Bad input; nothing was written. Never retried.
  kNotFound,          ///< A named thing does not exist. Never retried.
  kDomain,            ///< A user's business rule refused the command. Never retried.
  kConcurrency,       ///< Expected version did not match. Retry by reloading and deciding again.
  kIdempotency,       ///< Event ids partly overlap stored ones. Never retried.
  kUnavailable,       ///< Infrastructure failure; nothing was written. Retry the call.
  kOutcomeUnknown,    ///< Commit in doubt. Retry with the same event ids (appends are idempotent).
  kCorruption,        ///< Stored data violates an invariant. Never retried; alert a human.
  kInternal,          ///< A bug in annals. Never retried.
  kPermissionDenied,  ///< The database role may not do this. Never retried; fix the role or grants.
};

/// Stable lower-case name of a code, e.g. "concurrency".
[[nodiscard]] std::string_view to_string(ErrorCode code) noexcept;

/// Base of every annals error.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);

  /// The failure kind.
  [[nodiscard]] ErrorCode code() const noexcept { return code_; }
  /// True when the same call (or, for conflicts, a reload + re-decide) may succeed.
  [[nodiscard]] virtual bool retryable() const noexcept { return false; }

 private:
  ErrorCode code_;
};

/// Bad input (invalid stream id, malformed JSON, oversized payload, ...). Nothing was written.
class InvalidArgumentError : public Error {
 public:
  explicit InvalidArgumentError(const std::string& message)
      : Error(ErrorCode::kInvalidArgument, message) {}
};

/// A named object (stream, projection, ...) does not exist where it must.
class NotFoundError : public Error {
 public:
  explicit NotFoundError(const std::string& message) : Error(ErrorCode::kNotFound, message) {}
};

/// An append to a deleted stream (its last event is a tombstone, see EventWriter::delete_stream)
/// that did not ask to reopen it (StreamAppend::reopen). Nothing was written. Code kNotFound:
/// the stream is gone for writers; never retried.
class StreamDeletedError : public NotFoundError {
 public:
  /// `deleted_version`: the version of the stream's tombstone.
  StreamDeletedError(const StreamId& stream, StreamVersion deleted_version);

  /// The deleted stream.
  [[nodiscard]] const StreamId& stream_id() const noexcept { return stream_id_; }
  /// The version of its tombstone (its current version).
  [[nodiscard]] StreamVersion deleted_version() const noexcept { return deleted_version_; }

 private:
  StreamId stream_id_;
  StreamVersion deleted_version_;
};

/// A business rule refused a command. Users derive their own domain errors from this.
class DomainError : public Error {
 public:
  explicit DomainError(const std::string& message) : Error(ErrorCode::kDomain, message) {}
};

/// The stream's version did not match the expected version. Nothing was written.
///
/// Carries the stream, the expected version and the actual version (empty when the stream
/// does not exist), both as the typed values the append was given (`stream_id()`,
/// `expected_version()`) and as their string forms (`stream()`, `expected()`: "any",
/// "no-stream", "exists" or a number). Subclasses for other refusals of the same kind (a
/// projection's lost lease) carry a message only; their typed accessors are then empty.
class ConcurrencyError : public Error {
 public:
  ConcurrencyError(const StreamId& stream, const ExpectedVersion& expected,
                   std::optional<StreamVersion> actual);
  /// From the string forms; the typed accessors are filled when the strings parse.
  ConcurrencyError(std::string stream, std::string expected, std::optional<std::int64_t> actual);

  [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
  [[nodiscard]] const std::string& expected() const noexcept { return expected_; }
  /// The stream's version when the append was refused; empty when the stream had no events.
  [[nodiscard]] std::optional<std::int64_t> actual() const noexcept { return actual_; }
  /// The stream as a typed id; empty for a subclass that names no stream.
  [[nodiscard]] const std::optional<StreamId>& stream_id() const noexcept { return stream_id_; }
  /// The expectation the append was given; empty for a subclass that names none.
  [[nodiscard]] const std::optional<ExpectedVersion>& expected_version() const noexcept {
    return expected_version_;
  }
  [[nodiscard]] bool retryable() const noexcept override { return true; }

 protected:
  /// A refusal of the concurrency kind that is not about one stream's version.
  explicit ConcurrencyError(const std::string& message);

 private:
  std::string stream_;
  std::string expected_;
  std::optional<std::int64_t> actual_;
  std::optional<StreamId> stream_id_;
  std::optional<ExpectedVersion> expected_version_;
};

/// Some, but not all, of an append's event ids are already stored (or stored in another
/// stream or at other versions), or all are stored as this append would store them but with
/// other content (event type, schema version, data or metadata: a changed re-send).
/// An exact re-send is not an error: it returns the original result. Nothing was written.
class IdempotencyError : public Error {
 public:
  explicit IdempotencyError(const std::string& message) : Error(ErrorCode::kIdempotency, message) {}
  /// A changed re-send: the first event whose content differs is stored in `stream` at
  /// `version`.
  IdempotencyError(const std::string& message, std::string stream, std::int64_t version)
      : Error(ErrorCode::kIdempotency, message),
        changed_stream_(std::move(stream)),
        changed_version_(version) {}

  /// For a changed re-send, the stream of the first differing stored event; else empty.
  [[nodiscard]] const std::string& changed_stream() const noexcept { return changed_stream_; }
  /// For a changed re-send, the stored version of the first differing event; else empty.
  [[nodiscard]] std::optional<std::int64_t> changed_version() const noexcept {
    return changed_version_;
  }

 private:
  std::string changed_stream_;
  std::optional<std::int64_t> changed_version_;
};

/// The infrastructure failed (connection lost, server shutting down). Nothing was written.
class UnavailableError : public Error {
 public:
  explicit UnavailableError(const std::string& message) : Error(ErrorCode::kUnavailable, message) {}
  [[nodiscard]] bool retryable() const noexcept override { return true; }

 protected:
  UnavailableError(ErrorCode code, const std::string& message) : Error(code, message) {}
};

/// The connection broke while a write was in flight: it may or may not have committed.
/// Retrying with the same event ids is safe; the store answers with the original result.
class OutcomeUnknownError : public UnavailableError {
 public:
  explicit OutcomeUnknownError(const std::string& message)
      : UnavailableError(ErrorCode::kOutcomeUnknown, message) {}
};

/// A wait for a position to become readable (annals::postgres::wait_for_position, e.g. on a
/// hot standby that lags its primary) timed out. Nothing was written; retry the wait, or read
/// from the primary.
class PositionNotVisibleError : public UnavailableError {
 public:
  PositionNotVisibleError(const Position& position, std::chrono::milliseconds waited,
                          const std::string& message)
      : UnavailableError(message), position_(position), waited_(waited) {}
  /// The position waited for.
  [[nodiscard]] const Position& position() const noexcept { return position_; }
  /// How long the wait lasted.
  [[nodiscard]] std::chrono::milliseconds waited() const noexcept { return waited_; }

 private:
  Position position_;
  std::chrono::milliseconds waited_;
};

/// Stored data breaks an invariant (broken hash chain, misordered transaction ids, ...).
class CorruptionError : public Error {
 public:
  explicit CorruptionError(const std::string& message) : Error(ErrorCode::kCorruption, message) {}
};

/// The database refused the statement for the connection's role (SQLSTATE 42501): for example
/// an application running as the writer role tried to change history, or a reader tried to
/// append (docs/security.md). Nothing was written. Never retried: use the right role or grants.
class PermissionDeniedError : public Error {
 public:
  explicit PermissionDeniedError(const std::string& message)
      : Error(ErrorCode::kPermissionDenied, message) {}
};

/// An annals bug or an unexpected driver failure.
class InternalError : public Error {
 public:
  explicit InternalError(const std::string& message) : Error(ErrorCode::kInternal, message) {}
};

}  // namespace annals
