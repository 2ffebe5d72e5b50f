// annals-bench --long-haul: does the store stay as fast, and a replay as small, when the log
// is 100 times larger?
//
// In one run, on one server: build a small store (default 100,000 events) in database
// annals_bench_lh_small and a large one (default 10,000,000 events) in annals_bench_lh_large,
// measure both with the same figures, small first, and report each figure for both sizes with
// the ratio large / small:
//
// - single-event append latency, p50 and p99 (one writer, each append to a random stream of
//   the store, expected version any; notify on, the store's defaults);
// - one-stream read latency, p50 and p99 (read_stream of a whole random stream);
// - read_all throughput, pages of 1,000 from the start of the log over the window (default
//   1,000,000 events, or the whole store when smaller);
// - catch-up into a PostgreSQL read model through annals::projections (a new projection, one
//   ReadModel::increment per event, batches of the runner's batch size) over the same window;
// - annals::postgres::verify of the whole store (events/s);
// - a no-op projection's replay of the whole store (or of its first `replay` events): its peak
//   RSS (peak_rss.hpp) and events/s.
//
// Targets: latencies of the large store within 1.25x of the small store's; throughputs at
// least 0.8x (the same 1.25x in time per event); the replay's peak RSS flat (within 1.10x).
//
// Streams hold 100 events each (store_builder.hpp), written by parallel multi-stream appends
// through the store's functions, so the database computes every hash. Before each store's
// figures: VACUUM (ANALYZE) of annals.events and a CHECKPOINT, both timed and reported.
//
// The databases are dropped and created by the run, and dropped at its end; with `reuse` they
// are kept, and a store that an earlier run completed with the same size (a marker table
// records it) is measured again without rebuilding it: a 10,000,000-event build takes minutes.
// Progress goes to stderr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace annals::bench {

struct LongHaulOptions {
  /// Events of the small store. Default 100,000.
  std::uint64_t small_events = 100'000;
  /// Events of the large store (a multiple of 100 is used: rounded up). Default 10,000,000.
  std::uint64_t large_events = 10'000'000;
  /// Events read by read_all and applied by the read-model catch-up, from the start of the log
  /// (the whole store when smaller). Default 1,000,000.
  std::uint64_t window = 1'000'000;
  /// Events of the no-op replay whose peak RSS is measured, from the start of the log (the
  /// whole store when 0 or larger). Default 0: the whole store.
  std::uint64_t replay = 0;
  /// Timed operations per latency figure (after 10 % as many untimed). Default 2,000.
  int samples = 2000;
  /// Writer threads of the build. Default 4.
  int writers = 4;
  /// The runner's batch size in the catch-up and the replay. Default 500.
  std::size_t batch_size = 500;
  /// Shortest time spent on verify passes of one store (a pass is never cut). Default 3 s.
  double verify_seconds = 3.0;
  /// Keep the databases, and measure a store completed by an earlier run. Default false.
  bool reuse = false;
  /// Skip the verify figure (a verify of 10,000,000 events takes minutes on a busy machine).
  /// Default false.
  bool skip_verify = false;
  /// Build (or find) the stores, measure nothing. Default false.
  bool build_only = false;
  /// Before measuring a store, read all its tables and indexes once (pg_prewarm's 'read'
  /// mode, into the operating system's page cache), so that both stores are measured with
  /// their data in memory rather than on the disk. Default false.
  bool prewarm = false;
  /// Partition each store's log by ranges of this many global positions (MigrateOptions::
  /// partitioned_log; the ranges for the whole build are created before it), in databases of
  /// their own (annals_bench_lh_small_part, annals_bench_lh_large_part), so the figures can be
  /// compared with an unpartitioned run's. Default 0: not partitioned.
  std::uint64_t partition_size = 0;
};

/// Builds, measures and returns
///   {"stores": [{"database", "events", "streams", "reused", "build": {...} or null,
///                "figures": {...}, "load_before_figures", "load_after_figures"}, ...],
///    "figures": [{"name", "unit", "small", "large", "ratio", "target", "pass", "note"}],
///    "options": {...}}
/// `server_url` is any database of the server (the stores' databases are created beside it).
/// Throws: annals::Error from the stores, std::runtime_error on a failed check (a short read,
/// a projection that did not catch up, a verify finding).
[[nodiscard]] nlohmann::json run_long_haul(const std::string& server_url,
                                           const LongHaulOptions& options);

/// The figures of run_long_haul as plain text: one line per build, one row per figure.
[[nodiscard]] std::string format_long_haul(const nlohmann::json& result);

}  // namespace annals::bench
