// annals error taxonomy: names of the codes and the messages of structured errors.
#include "annals/eventstore/error.hpp"

#include <string>
#include <type_traits>
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

// The typed form of a string the caller gave, or nothing when it does not parse: an error
// object must be constructible from whatever text describes the failure.
template <typename T>
std::optional<T> parse_or_empty(const std::string& text) noexcept {
  try {
    if constexpr (std::is_same_v<T, StreamId>) {
      return StreamId(text);
    } else {
      return ExpectedVersion::parse(text);
    }
  } catch (...) {
    return std::nullopt;
  }
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

ConcurrencyError::ConcurrencyError(const StreamId& stream, const ExpectedVersion& expected,
                                   std::optional<StreamVersion> actual)
    : Error(ErrorCode::kConcurrency,
            concurrency_message(stream.value(), expected.to_string(), actual)),
      stream_(stream.value()),
      expected_(expected.to_string()),
      actual_(actual),
      stream_id_(stream),
      expected_version_(expected) {}

// The message is built from the arguments before they are moved into the members: base
// classes are initialised first.
ConcurrencyError::ConcurrencyError(std::string stream, std::string expected,
                                   std::optional<std::int64_t> actual)
    : Error(ErrorCode::kConcurrency, concurrency_message(stream, expected, actual)),
      stream_(std::move(stream)),
      expected_(std::move(expected)),
      actual_(actual),
      stream_id_(parse_or_empty<StreamId>(stream_)),
      expected_version_(parse_or_empty<ExpectedVersion>(expected_)) {}

ConcurrencyError::ConcurrencyError(const std::string& message)
    : Error(ErrorCode::kConcurrency, message) {}

StreamDeletedError::StreamDeletedError(const StreamId& stream, StreamVersion deleted_version)
    : NotFoundError("stream \"" + stream.value() + "\" is deleted (its tombstone is version " +
                    std::to_string(deleted_version) +
                    "): appends are refused unless they ask to reopen it; nothing written"),
      stream_id_(stream),
      deleted_version_(deleted_version) {}

}  // namespace annals
