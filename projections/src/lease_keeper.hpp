// Private: a projection worker's hold on its projection's lease: taken when nobody else holds
// it, renewed every third of its time to live by a heartbeat thread of its own (so that a batch
// that runs longer than the lease does not lose it), published in the worker's status.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "worker_status.hpp"
#include "worker_support.hpp"

namespace annals::projections::detail {

/// The lease of one projection, as its worker holds it. While a lease is held, a heartbeat
/// thread renews it when due, whatever the worker's thread is doing (applying a long batch,
/// waiting for events). A renewal the store refuses (the lease was taken over or released)
/// marks the lease lost: the worker's next keep() throws, and the batch in flight cannot
/// commit anyway (its fencing token is stale). A renewal that fails for another reason
/// (the store is unreachable) is tried again soon; the lease stays held, since a lapsed lease
/// that nobody took can still be renewed and a taken one is fenced at commit.
///
/// Thread safety: every method from the worker's thread only; the heartbeat thread shares the
/// lease with it under one mutex.
class LeaseKeeper {
 public:
  LeaseKeeper(ProjectionStore& store, std::string name, const RunnerOptions& runner,
              WorkerStatus& status);
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;
  /// Stops the heartbeat thread (waits for a renewal in flight).
  ~LeaseKeeper();

  /// Takes the lease if nobody else holds it; true when taken. Not yet published (publish()).
  bool try_acquire();
  /// Shows the lease in the status.
  void publish();
  /// Throws OwnershipLostError when the heartbeat found the lease lost.
  void keep();
  /// Stops renewing and gives the lease up in the store (forgotten even when that throws).
  /// Requires: held().
  void release();
  /// Forgets the lease (lost, or released); the status is the caller's.
  void drop();

  [[nodiscard]] bool held() const;
  /// A copy of the lease as last renewed. Requires: held().
  [[nodiscard]] Lease lease() const;

  /// Waits `duration` unless the runner stops (false). The heartbeat renews meanwhile.
  bool pause(std::chrono::milliseconds duration);

 private:
  void heartbeat();
  void renew_once(std::unique_lock<std::mutex>& lock);
  [[nodiscard]] std::chrono::milliseconds renew_period() const;

  ProjectionStore& store_;
  const std::string name_;
  const RunnerOptions& runner_;
  WorkerStatus& status_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<Lease> lease_;
  bool lost_ = false;             // a renewal was refused; keep() throws
  std::uint64_t generation_ = 0;  // changes with every acquisition, release and drop
  Clock::time_point renew_at_;
  bool warned_ = false;  // one warning per run of failed renewals
  bool closing_ = false;
  std::thread thread_;  // started by the first acquisition
};

}  // namespace annals::projections::detail
