// `annals verify` and `annals anchor`: recompute the store's hashes (annals::postgres::verify),
// prove anchored prefixes of the log, take anchors, and print the results. docs/cli.md and
// docs/auditing.md describe the output.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace annals::cli {

/// Arguments of `annals verify`.
struct VerifyArgs {
  /// Only this stream. Default: every stream.
  std::optional<std::string> stream = std::nullopt;
  /// Most findings printed (>= 1).
  std::size_t max_findings = 100;
  /// One JSON object instead of text.
  bool json = false;
  /// Files holding anchors (`annals anchor` output) whose prefixes must still match.
  std::vector<std::string> anchor_files;
  /// With anchors: re-hash from the start of the log instead of resuming.
  bool full = false;
  /// Draw the count of events examined in place on `err` (standard error is a terminal and
  /// --json not given).
  bool progress = false;
  /// Fail when the server sends nothing for this long (VerifyOptions::progress_timeout);
  /// 0: no limit.
  double progress_timeout_seconds = 60;
};

/// Arguments of `annals anchor`.
struct AnchorArgs {
  /// Also store it in annals.anchors.
  bool record = false;
  /// Accepted for symmetry: the output is JSON either way.
  bool json = false;
  /// Fail when the server sends nothing for this long (AnchorOptions::progress_timeout);
  /// 0: no limit.
  double progress_timeout_seconds = 60;
};

/// Verifies the store at `url` and prints the report to `out`; progress (args.progress) goes
/// to `err`.
/// Throws: ExitError(kFindings) when anything was found (after printing it); annals errors
/// from the store.
void verify(const std::string& url, const VerifyArgs& args, std::ostream& out, std::ostream& err);

/// Takes an anchor of the store at `url` and prints it as one line of JSON.
/// Throws: annals errors from the store.
void anchor(const std::string& url, const AnchorArgs& args, std::ostream& out);

}  // namespace annals::cli
