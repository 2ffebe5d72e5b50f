// `annals partitions`: the range partitions of a partitioned log (sql/0017; docs/scaling.md,
// "Partitioned log"): list them, create the next ones ahead, archive or restore one.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

namespace annals::cli {

/// Arguments of `annals partitions`. At most one of ensure, archive and restore is set; none
/// lists the partitions.
struct PartitionsArgs {
  /// --ensure: create the ranges due ahead of the log's position.
  bool ensure = false;
  /// --ahead N (with --ensure): empty ranges to keep from now on.
  std::optional<int> ahead;
  /// --archive NAME: detach this partition and move it to `archive_schema`.
  std::string archive;
  /// --to SCHEMA: where --archive moves the partition.
  std::string archive_schema = "annals_archive";
  /// --restore NAME: attach an archived partition again.
  std::string restore;
  /// --json: JSON lines (one object per partition, or one object for the action).
  bool json = false;
};

/// Runs `annals partitions` against the store at `url` (as its owner) and prints the result.
/// Throws: annals errors from the library (InvalidArgumentError for a partition that cannot be
/// archived or restored, PermissionDeniedError when not run as the owner).
void partitions(const std::string& url, const PartitionsArgs& args, std::ostream& out);

}  // namespace annals::cli
