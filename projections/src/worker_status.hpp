// Private: what a projection worker shares with the other threads of the runner: its
// ProjectionStatus, the processed position that wait_for() follows, and the stop and poke
// flags. Everything else a worker holds is touched by its own thread only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "annals/eventstore/detail/metrics_recorder.hpp"
#include "annals/eventstore/metrics.hpp"

#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "worker_support.hpp"

namespace annals::projections::detail {

/// One worker's status and flags. Changes that a wait_for() or a pause may be waiting for
/// notify them.
/// Thread safety: every method from any thread (one mutex).
class WorkerStatus {
 public:
  /// `metrics`: RunnerOptions::metrics (null: none). The changes below that are metrics
  /// (docs/observability.md) are reported to it as they happen, outside the lock.
  WorkerStatus(const std::string& name, std::shared_ptr<MetricsSink> metrics);

  /// The projection's metrics sink and its labels (projection=<name>).
  [[nodiscard]] const annals::detail::MetricsRecorder& metrics() const noexcept { return metrics_; }
  [[nodiscard]] MetricLabels labels() const noexcept { return {.projection = name_}; }
  /// Counts an ownership change: "acquired", "lost" or "released".
  void count_ownership_change(std::string_view change) const noexcept;

  [[nodiscard]] ProjectionStatus snapshot() const;
  /// The state and last error, as a report to the store (without the applied count).
  [[nodiscard]] ProjectionReport report() const;

  /// Waits until every matching event up to `position` was processed (true), or the worker
  /// stops, finishes or fails, or `timeout` elapses (false unless processed meanwhile).
  bool wait_for(Position position, std::chrono::milliseconds timeout);

  void request_stop();
  [[nodiscard]] bool is_stopping() const;
  /// Sleeps until `deadline` or a stop request; true when stopping.
  bool wait_until_stopping(Clock::time_point deadline);

  /// Asks for a look at rebuild requests and dead-letter retries before their interval.
  void poke();
  /// Whether poke() was called since the last call (and clears it).
  bool take_poke();

  /// Sets the state, unless the projection failed.
  void set_state(ProjectionState state);
  void set_lease(std::optional<Lease> lease);
  /// No lease any more: standby, unless the projection failed.
  void stand_by();
  void set_head(Position head, double lag_seconds);

  /// The checkpoint was (re)loaded or reset: processed through `position`, nothing beyond.
  void reset_position(Position position);
  /// Every matching event up to `position` was applied (the checkpoint may follow later).
  void processed_through(Position position);
  /// A commit at `to` that applied `applied` events.
  void committed(Position to, std::size_t applied);

  void count_error(const std::string& error);
  void count_dead_letters(std::size_t count, const std::string& last_error);
  /// Folds the events-per-second of the last window in (exponential smoothing).
  void add_rate_sample(double events_per_second);

  /// Failed for good; visible only after the lease was released.
  void fail(const std::string& error);
  /// The thread is ending: stopped, unless it failed.
  void stop();
  /// The thread ended and released its lease.
  void finish();

 private:
  void report_lag(std::int64_t lag_events, std::optional<double> lag_seconds) const noexcept;

  const std::string name_;
  const annals::detail::MetricsRecorder metrics_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool check_requests_now_ = false;
  bool finished_ = false;
  Position processed_;  // every matching event up to it applied
  ProjectionStatus status_;
};

}  // namespace annals::projections::detail
