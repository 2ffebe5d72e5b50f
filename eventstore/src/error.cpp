// annals error taxonomy: names of the codes and the messages of structured errors.
#include "annals/eventstore/error.hpp"

#include <string>
#include <utility>

namespace annals {
namespace {

std::string concurrency_message(const std::string& stream, const std::string& expected,
                                const std::optional<std::int64_t>& actual) {
  std::string message =
      "wrong expected version for stream \"" + stream + "\": expected " + expected;
  message += actual.has_value() ? ", actual " + std::to_string(*actual) : ", actual: no stream";
  return message;
}

}  // namespace

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kDomain:
      return "domain";
    case ErrorCode::kConcurrency:
      return "concurrency";
    case ErrorCode::kIdempotency:
      return "idempotency";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kOutcomeUnknown:
      return "outcome_unknown";
    case ErrorCode::kCorruption:
      return "corruption";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
  }
  return "unknown";  // only reachable through a value cast from an integer outside the enum
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

// The message is built from the arguments before they are moved into the members: base
// classes are initialised first.
ConcurrencyError::ConcurrencyError(std::string stream, std::string expected,
                                   std::optional<std::int64_t> actual)
    : Error(ErrorCode::kConcurrency, concurrency_message(stream, expected, actual)),
      stream_(std::move(stream)),
      expected_(std::move(expected)),
      actual_(actual) {}

}  // namespace annals
