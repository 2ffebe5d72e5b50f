// `annals verify`: recompute the store's hash chains (annals::postgres::verify) and print the
// findings. docs/cli.md and docs/auditing.md describe the output.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>

namespace annals::cli {

/// Arguments of `annals verify`.
struct VerifyArgs {
  /// Only this stream. Default: every stream.
  std::optional<std::string> stream = std::nullopt;
  /// Most findings printed (>= 1).
  std::size_t max_findings = 100;
  /// One JSON object instead of text.
  bool json = false;
};

/// Verifies the store at `url` and prints the report to `out`.
/// Throws: ExitError(kFindings) when anything was found (after printing it); annals errors
/// from the store.
void verify(const std::string& url, const VerifyArgs& args, std::ostream& out);

}  // namespace annals::cli
