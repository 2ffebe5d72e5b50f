// Exit codes of the `annals` tool and the mapping from annals errors to them.
//
// The codes are a contract other programs rely on (docs/cli.md): 0 ok, 1 error (server
// unavailable, corruption, internal), 2 invalid input or usage, 3 expected-version conflict.
#pragma once

#include "annals/eventstore/error.hpp"

namespace annals::cli {

enum class ExitCode : int {
  kOk = 0,        ///< The command did what was asked (an idempotent re-send included).
  kError = 1,     ///< The server is unavailable, or stored data or annals itself is broken.
  kUsage = 2,     ///< Bad flags or bad input; nothing was written.
  kConflict = 3,  ///< The stream's version did not match --expected-version; nothing was written.
};

/// The exit code for an annals error kind. Invalid input and a partial idempotency overlap
/// (some event ids stored, some not) are the caller's mistake: kUsage. A version conflict is
/// kConflict. Everything else is kError.
[[nodiscard]] ExitCode exit_code_for(ErrorCode code) noexcept;

}  // namespace annals::cli
