// `annals export` and `annals import FILE`: the log as NDJSON (annals/postgres/log_transfer.hpp;
// docs/cli.md).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace annals::cli {

/// Arguments of `annals export`.
struct ExportArgs {
  std::optional<std::string> category;  ///< --category
  std::optional<std::string> from;      ///< --from POSITION: events after it
  std::optional<std::string> output;    ///< --output FILE instead of standard output
};

/// Arguments of `annals import`.
struct ImportArgs {
  std::string file;
  bool json = false;
  /// Draw progress in place on `err` (standard error is a terminal and --json not given).
  bool progress = false;
};

/// Writes the export to args.output or `out`; a summary line goes to `err`.
/// Throws: InvalidArgumentError (bad position or category, an output file that cannot be
/// written); annals errors from the store.
void export_events(const std::string& url, const ExportArgs& args, std::ostream& out,
                   std::ostream& err);

/// Imports args.file and prints what it did to `out`; progress (args.progress) goes to `err`.
/// Throws: ExitError(kFindings) when a hash chain of the file does not verify (nothing
/// written); annals errors from the store and the file.
void import_events(const std::string& url, const ImportArgs& args, std::ostream& out,
                   std::ostream& err);

}  // namespace annals::cli
