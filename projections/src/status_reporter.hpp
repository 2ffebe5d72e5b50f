// Private: what a projection worker reports to the projection store (ProjectionStore::report):
// its state and last error when they change, and its applied count at most every second.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "annals/projections/projection_store.hpp"
#include "lease_keeper.hpp"
#include "worker_status.hpp"
#include "worker_support.hpp"

namespace annals::projections::detail {

/// Reports of one worker to the store, and the applied count they carry (the record's count
/// when the lease was taken, plus what was applied since).
/// Thread safety: the worker's thread only.
class StatusReporter {
 public:
  StatusReporter(ProjectionStore& store, std::string name, const LeaseKeeper& lease,
                 const WorkerStatus& status);

  /// Counts on from the stored record's count (once the lease was taken).
  void count_from_record();
  /// Counts from zero (the projection was reset for a rebuild).
  void count_from_zero();
  void count_applied(std::size_t applied);
  [[nodiscard]] std::int64_t events_applied() const;

  /// Reports the state to the store when it changed (or `force`), and the applied count at
  /// most every kReportInterval. Nothing without a lease.
  void report(bool force);
  /// Reports the projection failed with `error`. Requires: the lease is held.
  void report_failed(const std::string& error);

 private:
  ProjectionStore& store_;
  const std::string name_;
  const LeaseKeeper& lease_;
  const WorkerStatus& status_;
  std::int64_t applied_base_ = 0;  // events_applied of the record when acquired
  std::int64_t applied_since_acquire_ = 0;
  std::optional<ProjectionReport> last_report_;
  Clock::time_point last_report_at_;
};

}  // namespace annals::projections::detail
