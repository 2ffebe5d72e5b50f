// annals-bench, framework figures: what the domain framework costs on top of the
// PostgreSQL store.
//
// - Rehydration: the time to load one aggregate of 1,000 and of 10,000 events, replaying every
//   event versus starting from a snapshot (Repository::load, median over repeated loads).
// - Commands through the CommandBus (load or cache, decide, append, metadata, derived event
//   ids) with 1 and 16 concurrent callers, each on its own aggregate ("distinct") or all on one
//   ("shared"), beside the bare store append of the event store benchmark (store_append with
//   the same ~200-byte payload as nlohmann trees, as the bus's codec hands the store its
//   events, expected version tracked by the writer), measured in the same
//   rounds, interleaved. Target: the bus adds <= 15 % over bare appends for distinct
//   aggregates, i.e. a rate ratio >= 0.85.
//
// Requires: `conninfo` names a database migrated to the latest schema (annals migrate; it needs
// annals.snapshots, migration 0002) whose streams of category "benchacct" are free. Each figure
// writes to fresh streams.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace annals::bench {

struct FrameworkBenchOptions {
  /// Length of each timed command slice, in seconds. Default 3.
  double seconds = 3.0;
  /// Rounds per figure; the figure is the median over rounds. Default 3.
  int rounds = 3;
  /// Untimed warm-up before each command slice, in seconds. Default 0.5.
  double warmup_seconds = 0.5;
  /// Loads timed per round for each rehydration figure. Default 20.
  int loads_per_round = 20;
  /// Only figures whose name is in this comma-separated list (empty: all).
  std::string only;
};

/// The names of the framework figures, in the order they run.
[[nodiscard]] const std::vector<std::string>& framework_figure_names();

/// Runs the framework figures and returns them as JSON:
///   {"figures": [{"name", "unit", "value", "samples": [...], "baseline": name or null,
///                 "baseline_value", "ratio", "target", "note"}]}
/// Rates are events per second (higher is better); rehydration figures are milliseconds per
/// load (lower is better) and their ratio is snapshot / replay. Progress goes to stderr.
/// Throws: annals::Error from the store, std::runtime_error on a bad `only` name.
[[nodiscard]] nlohmann::json run_framework_benchmarks(const std::string& conninfo,
                                                      const FrameworkBenchOptions& options = {});

/// The figures of run_framework_benchmarks as a plain-text table.
[[nodiscard]] std::string format_framework_figures(const nlohmann::json& result);

}  // namespace annals::bench
