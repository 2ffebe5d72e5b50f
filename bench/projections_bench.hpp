// annals-bench, projection figures: what a ProjectionRunner delivers on the
// PostgreSQL store.
//
// - Catch-up: a projection that starts from the beginning of the log and applies its first
//   `events` events, into a no-op in-process projection and into a PostgreSQL read-model
//   projection (one ReadModel::increment per event, committed with the checkpoint per batch),
//   both with checkpoints in the PostgreSQL projection store. Each is beside the store's
//   read_all over the same events in pages of the runner's batch size (500), measured in the
//   same round, interleaved. Target: catch-up into a read model >= 20,000 events/s.
// - Partitioned catch-up (projection_catchup_p1, _p2, _p4): the same read-model projection as
//   1 (unpartitioned), 2 and 4 partitions (annals/projections/partitions.hpp), each run by as
//   many runners with stores and connections of their own in this process (standing in for
//   runner processes), until every partition's checkpoint passed the log's first `events`
//   events; p2 and p4 carry the ratio to p1.
// - Latency: writers append single events at a steady rate (default 1,000 appends/s in all)
//   while a live read-model projection applies them; for every append, the time from the
//   append returning to the projection having committed it (ProjectionRunner::wait_for, the
//   read-your-writes call: the read model's transaction has committed). Target: p99 <= 50 ms.
//
// Requires: `conninfo` names a database migrated to the latest schema (with the projections
// tables, migration 0003) whose log holds at least `events` events (the caller fills it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace annals::bench {

struct ProjectionBenchOptions {
  /// Rounds per figure; the figure is the median over rounds. Default 3.
  int rounds = 3;
  /// Events each catch-up applies, from the start of the log. Default 100,000.
  std::uint64_t events = 100'000;
  /// Appends per second in all during the latency measurement. Default 1,000.
  double rate = 1000;
  /// Length of each latency round, in seconds (after the projection is live). Default 5.
  double latency_seconds = 5;
  /// Writer threads sharing `rate`. Default 8.
  int writers = 8;
  /// The runner's batch size (ProjectionOptions::batch_size) and read_all's page size for the
  /// baseline. Default 500 (the runner's default).
  std::size_t batch_size = 500;
  /// Only figures whose name is in this comma-separated list (empty: all).
  std::string only;
};

/// The names of the projection figures, in the order they run.
[[nodiscard]] const std::vector<std::string>& projection_figure_names();

/// Runs the projection figures and returns them as JSON:
///   {"figures": [{"name", "unit", "value", "samples", "baseline", "baseline_value", "ratio",
///                 "target", "pass", "note"}]}
/// Catch-up figures are events/s with read_all as the baseline; latency figures are
/// milliseconds (p50, p99 over every append of every round). Progress goes to stderr.
/// Throws: annals::Error from the stores, std::runtime_error when the log is too short.
[[nodiscard]] nlohmann::json run_projection_benchmarks(const std::string& conninfo,
                                                       const ProjectionBenchOptions& options = {});

/// The figures of run_projection_benchmarks as a plain-text table.
[[nodiscard]] std::string format_projection_figures(const nlohmann::json& result);

}  // namespace annals::bench
