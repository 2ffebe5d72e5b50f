// annals-bench: fills a store quickly for the long haul, through the store's own append path.
//
// Writers (threads, each with its own connection of one store) take the next `streams_per_append`
// stream numbers from a shared counter and write them with one EventStore::append_multi: every
// stream gets `events_per_stream` events at once, expected version no_stream. So every event
// goes through annals.append_events, which computes the hash chain in the database, as every
// append does; nothing is copied past the store's functions or triggers. A writer holds one
// append's events at a time, so the builder's memory does not grow with the store.
//
// Stream `<category>-<n>` holds events whose data field "n" runs n * events_per_stream + 1, ...
#pragma once

#include <cstdint>
#include <string>

#include "harness.hpp"

namespace annals::bench {

struct StoreBuildOptions {
  /// Writer threads (and store connections). Default 4.
  int writers = 4;
  /// Events written to each stream, all in one append. Default 100.
  int events_per_stream = 100;
  /// Streams per append_multi call. Default 10 (1,000 events per call).
  int streams_per_append = 10;
  /// Stream ids are `<category>-<n>`. Default "lh".
  std::string category = "lh";
};

/// What a build did.
struct StoreBuild {
  std::uint64_t events = 0;
  std::uint64_t appends = 0;
  double seconds = 0.0;
  [[nodiscard]] double rate() const {
    return seconds > 0.0 ? static_cast<double>(events) / seconds : 0.0;
  }
};

/// Writes streams number `first_stream` up to (not including) `end_stream`, printing progress
/// on stderr about every 5 %. Throws the first error a writer met (annals::Error from the
/// store); the other writers stop after their current append.
StoreBuild build_streams(const std::string& conninfo, const Payload& payload,
                         std::uint64_t first_stream, std::uint64_t end_stream,
                         const StoreBuildOptions& options);

/// The id of stream number `n`.
[[nodiscard]] std::string built_stream_id(const StoreBuildOptions& options, std::uint64_t n);

}  // namespace annals::bench
