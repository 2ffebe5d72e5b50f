// Private: a projection worker's hold on its projection's lease: taken when nobody
// else holds it, renewed every third of its time to live, published in the worker's status.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "worker_status.hpp"
#include "worker_support.hpp"

namespace annals::projections::detail {

/// The lease of one projection, as its worker holds it.
/// Thread safety: the worker's thread only.
class LeaseKeeper {
 public:
  LeaseKeeper(ProjectionStore& store, std::string name, const RunnerOptions& runner,
              WorkerStatus& status);

  /// Takes the lease if nobody else holds it; true when taken. Not yet published (publish()).
  bool try_acquire();
  /// Shows the lease in the status.
  void publish();
  /// Renews the lease when due. Throws OwnershipLostError when it was lost.
  void keep();
  /// Gives the lease up in the store (then drop()). Requires: held().
  void release();
  /// Forgets the lease (lost, or released); the status is the caller's.
  void drop() { lease_.reset(); }

  [[nodiscard]] bool held() const { return lease_.has_value(); }
  /// Requires: held().
  [[nodiscard]] const Lease& lease() const { return *lease_; }
  /// When keep() renews next.
  [[nodiscard]] Clock::time_point renew_at() const { return renew_at_; }

  /// Waits `duration` unless the runner stops (false), renewing the lease when due.
  bool pause(std::chrono::milliseconds duration);

 private:
  [[nodiscard]] std::chrono::milliseconds renew_period() const;

  ProjectionStore& store_;
  const std::string name_;
  const RunnerOptions& runner_;
  WorkerStatus& status_;
  std::optional<Lease> lease_;
  Clock::time_point renew_at_;
};

}  // namespace annals::projections::detail
