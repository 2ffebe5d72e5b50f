#include "exit_code.hpp"

namespace annals::cli {

ExitCode exit_code_for(ErrorCode code) noexcept {
  // No default: a new ErrorCode must be mapped here deliberately (-Wswitch).
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kIdempotency:  // re-sending some stored ids with new ones is bad input
      return ExitCode::kUsage;
    case ErrorCode::kConcurrency:
      return ExitCode::kConflict;
    case ErrorCode::kNotFound:  // e.g. the schema is not migrated
    case ErrorCode::kDomain:
    case ErrorCode::kUnavailable:
    case ErrorCode::kOutcomeUnknown:
    case ErrorCode::kCorruption:
    case ErrorCode::kInternal:
    case ErrorCode::kPermissionDenied:  // the role's grants; docs/security.md
      return ExitCode::kError;
  }
  return ExitCode::kError;
}

}  // namespace annals::cli
