// The bank service's metrics, served at GET /metrics in the Prometheus text format through
// prometheus-cpp and annals::prometheus: the library's own metrics (annals_*: appends, reads,
// subscriptions, projections; docs/observability.md) and the service's (bank_*: commands by
// outcome, a command latency histogram, HTTP requests refused for room), plus each
// projection's state. docs/samples/bank.md lists them with example PromQL.
//
// Thread safety: every method from any number of threads at once.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "annals/eventstore/metrics.hpp"
#include "annals/eventstore/snapshot_store.hpp"

namespace bank {

/// What became of a command.
enum class Outcome {
  kOk,        ///< events appended (or an idempotent re-send answered)
  kRejected,  ///< a business rule refused it (404, 409, 422)
  kInvalid,   ///< bad input (400)
  kFailed,    ///< a server fault (5xx)
};

/// The commands the service handles.
enum class CommandKind { kOpen, kDeposit, kWithdraw, kClose, kDelete };

/// One projection's progress, as the runner (or, in another process, the store) reports it.
struct ProjectionProgress {
  std::string name;
  std::string state;
  std::string position;
  std::int64_t lag_events = 0;
  double lag_seconds = 0;
  std::uint64_t events_applied = 0;
  std::uint64_t errors = 0;
};

class Metrics {
 public:
  /// Upper bounds of the command latency buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 12> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

  /// Creates the registry, the annals sink over it and the bank's own series (every command
  /// and outcome at 0).
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  ~Metrics();

  /// The sink to attach to the stores and the runner (annals_* metrics).
  [[nodiscard]] const std::shared_ptr<annals::MetricsSink>& annals_sink() const noexcept {
    return annals_sink_;
  }

  void record(CommandKind command, Outcome outcome, std::chrono::nanoseconds latency) noexcept;

  /// Counts one request answered 503 because every worker was busy and the queue was full.
  void count_rejected_request() noexcept;

  /// Commands of that kind and outcome so far.
  [[nodiscard]] std::uint64_t count(CommandKind command, Outcome outcome) const noexcept;

  /// The exposition text of every metric. `projections`: each projection's progress, shown as
  /// annals_projection_state{projection, state} (1 for its current state, 0 for the others).
  /// `from_checkpoints`: the projections run in another process (bank-projector), so their lag
  /// gauges are set here from `projections` (this process's runner sets them otherwise).
  /// `snapshots`: the snapshot store's counters, shown as annals_snapshots_ignored_total{reason};
  /// null: not shown.
  [[nodiscard]] std::string render(const std::vector<ProjectionProgress>& projections,
                                   bool from_checkpoints,
                                   const annals::SnapshotStoreStats* snapshots);

 private:
  static constexpr std::size_t kCommands = 5;
  static constexpr std::size_t kOutcomes = 4;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<annals::MetricsSink> annals_sink_;
  std::array<std::array<prometheus::Counter*, kOutcomes>, kCommands> commands_{};
  std::array<prometheus::Histogram*, kCommands> latency_{};
  prometheus::Counter* rejected_requests_ = nullptr;
  prometheus::Family<prometheus::Gauge>* projection_state_ = nullptr;
};

}  // namespace bank
