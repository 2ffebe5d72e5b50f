// What a store holds, for operators and auditors (`annals streams`, `annals stats`;
// docs/cli.md, docs/auditing.md).
//
//   for (const auto& s : annals::postgres::list_streams(url, {.category = "account"}))
//     std::cout << s.stream << " v" << s.version << '\n';
//   const auto stats = annals::postgres::store_stats(url);
//
// Both read committed rows only and change nothing; the reader and auditor roles may call them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "annals/eventstore/types.hpp"

namespace annals::postgres {

/// Options of list_streams().
struct StreamListOptions {
  /// Only streams of this category (the stream id up to its first '-'). Default: all.
  std::optional<std::string> category = std::nullopt;
  /// Only streams whose id starts with this text. Default: all.
  std::optional<std::string> prefix = std::nullopt;
  /// Only streams whose id sorts after this one (the last `stream` of a previous page).
  std::optional<std::string> after = std::nullopt;
  /// At most this many streams. Default 1,000.
  std::size_t limit = 1000;
};

/// One stream, as list_streams() reports it. Regular value type.
struct StreamSummary {
  std::string stream;
  std::int64_t version = 0;  ///< the version of its last event
  std::int64_t events = 0;   ///< events stored (versions are dense: equal to version)
  std::chrono::system_clock::time_point created;  ///< recorded_at of its first event
  std::chrono::system_clock::time_point updated;  ///< recorded_at of its last event
  std::string last_type;                          ///< the type of its last event
  /// Whether its last event is a tombstone (kStreamDeletedType; docs/stream-lifecycle.md).
  bool deleted = false;
  friend bool operator==(const StreamSummary&, const StreamSummary&) = default;
};

/// The streams of the store, ordered by id (the database's collation), at most options.limit.
/// Throws: InvalidArgumentError (an empty or '-'-containing category, an empty prefix),
/// NotFoundError (no annals schema), UnavailableError, PermissionDeniedError.
/// Cost: one connection, one statement walking the primary-key index: three index probes per
/// stream visited; with a category or prefix, streams sorting between the first match and the
/// last one are visited too. Thread safety: any thread.
[[nodiscard]] std::vector<StreamSummary> list_streams(const std::string& connection_string,
                                                      const StreamListOptions& options = {});

/// One category's share of the store.
struct CategoryStats {
  std::string category;
  std::int64_t events = 0;
  std::int64_t streams = 0;
  friend bool operator==(const CategoryStats&, const CategoryStats&) = default;
};

/// What store_stats() counts. Regular value type.
struct StoreStats {
  std::int64_t events = 0;
  std::int64_t streams = 0;
  /// On-disk size of the events table with its indexes and TOAST (pg_total_relation_size).
  std::int64_t bytes = 0;
  /// Events recorded in the last 60 and 3,600 seconds (by recorded_at, the server's clock).
  std::int64_t events_last_minute = 0;
  std::int64_t events_last_hour = 0;
  /// The position of the newest settled event; Position::start() when the log is empty.
  Position head = Position::start();
  /// The categories with the most events, most first (ties by name), at most `top` of them.
  std::vector<CategoryStats> top_categories;
};

/// Counts the store's events, streams and bytes, recent appends and the largest categories.
/// Throws: NotFoundError (no annals schema), UnavailableError, PermissionDeniedError.
/// Cost: one connection and one full scan of the events table (grouped by category), so
/// seconds per ten million events; run it on a replica or off-peak for large stores.
/// Thread safety: any thread.
[[nodiscard]] StoreStats store_stats(const std::string& connection_string, std::size_t top = 10);

}  // namespace annals::postgres
