// Exit codes of the `annals` tool and the mapping from annals errors to them.
//
// The codes are a contract other programs rely on (docs/cli.md): 0 ok, 1 error (server
// unavailable, corruption, internal, a failed rebuild), 2 invalid input or usage,
// 3 expected-version conflict, 4 the projection or dead letter named on the command line does
// not exist, 5 `projections rebuild --timeout` elapsed before the rebuild finished, 6 `verify`
// found problems in the stored history, 7 `read` or `read-all` printed every event, but some
// could not be decoded, 8 `restore-check` found transaction ids that need `--fix`.
#pragma once

#include <stdexcept>
#include <string>

#include "annals/eventstore/error.hpp"

namespace annals::cli {

enum class ExitCode : int {
  kOk = 0,        ///< The command did what was asked (an idempotent re-send included).
  kError = 1,     ///< The server is unavailable, or stored data or annals itself is broken.
  kUsage = 2,     ///< Bad flags or bad input; nothing was written.
  kConflict = 3,  ///< The stream's version did not match --expected-version; nothing was written.
  kNotFound = 4,  ///< The projection or dead letter named on the command line does not exist.
  kTimeout = 5,   ///< `projections rebuild --timeout` elapsed; the rebuild itself goes on.
  kFindings = 6,  ///< `verify` found edited, removed or unguarded history.
  /// `read` / `read-all` printed everything asked for, but some events could not be decoded
  /// (printed with an "undecodable" key).
  kUndecodable = 7,
  /// `restore-check` without --fix: the stored transaction ids are ahead of the server's (a
  /// restore into another cluster); stores refuse to open until `restore-check --fix`.
  kNeedsFix = 8,
};

/// A verb's outcome that has an exit code of its own rather than an annals error kind (an
/// unknown projection name, a rebuild that failed or timed out). main.cpp prints
/// `annals: <message>` and exits with code().
class ExitError : public std::runtime_error {
 public:
  ExitError(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

/// The exit code for an annals error kind. Invalid input and a partial idempotency overlap
/// (some event ids stored, some not) are the caller's mistake: kUsage. A version conflict is
/// kConflict. Everything else is kError: a NotFoundError from the library (e.g. the schema is
/// not migrated) stays 1; the verbs that name a projection or dead letter turn theirs into an
/// ExitError with kNotFound.
[[nodiscard]] ExitCode exit_code_for(ErrorCode code) noexcept;

}  // namespace annals::cli
