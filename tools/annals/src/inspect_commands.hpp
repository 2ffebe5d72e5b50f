// `annals streams` and `annals stats`: what a store holds, for operators and auditors
// (docs/cli.md; the library calls are annals/postgres/inspect.hpp).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace annals::cli {

/// Arguments of `annals streams`.
struct StreamsArgs {
  std::optional<std::string> category = std::nullopt;
  std::optional<std::string> prefix = std::nullopt;
  /// Continue after this stream id (the last one of a previous listing).
  std::optional<std::string> after = std::nullopt;
  /// Most streams listed (>= 0). Default 1,000.
  std::int64_t limit = 1000;
  bool json = false;
};

/// Prints the streams as a table (stream, version, events, created, updated, deleted), or one JSON
/// object per stream with --json.
/// Throws: InvalidArgumentError (bad arguments), the library's errors.
void streams(const std::string& connection_string, const StreamsArgs& args, std::ostream& out);

/// Arguments of `annals stats`.
struct StatsArgs {
  /// How many categories to list, most events first. Default 10.
  std::int64_t top = 10;
  bool json = false;
};

/// Prints events, streams, bytes, the head position, appends in the last minute and hour and
/// the top categories, as text or (with --json) one JSON object.
/// Throws: InvalidArgumentError (bad arguments), the library's errors.
void stats(const std::string& connection_string, const StatsArgs& args, std::ostream& out);

}  // namespace annals::cli
