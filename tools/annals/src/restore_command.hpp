// `annals restore-check [--fix]`: the transaction ids of a store restored into another cluster
// (annals::postgres::check_restore / fix_restore; docs/cli.md, docs/schema.md "Restoring a dump").
#pragma once

#include <iosfwd>
#include <string>

namespace annals::cli {

/// Arguments of `annals restore-check`.
struct RestoreCheckArgs {
  /// Set the offset when the stored ids are ahead (as the owner, nothing else connected).
  bool fix = false;
  /// One JSON object instead of text.
  bool json = false;
};

/// Checks (and with --fix repairs) the store at `url` and prints the result to `out`.
/// Throws: ExitError(kNeedsFix) when a fix is needed and --fix was not given (after printing);
/// annals errors from the library (RestoreBlockedError when other sessions are connected).
void restore_check(const std::string& url, const RestoreCheckArgs& args, std::ostream& out);

}  // namespace annals::cli
