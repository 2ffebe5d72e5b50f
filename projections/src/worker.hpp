// Private: one projection's thread in a ProjectionRunner, and the parts it composes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "annals/eventstore/detail/outage.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "backoff.hpp"
#include "batch_applier.hpp"
#include "checkpoint_keeper.hpp"
#include "lease_keeper.hpp"
#include "page_prefetcher.hpp"
#include "partition_group.hpp"
#include "rebuild_follower.hpp"
#include "status_reporter.hpp"
#include "worker_status.hpp"
#include "worker_support.hpp"

namespace annals::projections::detail {

/// Runs one projection on a thread of its own, while it holds the projection's lease.
/// Thread safety: start() once, then every method from any thread. Only the status (and the
/// change signal's interrupt()) is shared with the thread; its parts are the thread's own.
class Worker {
 public:
  /// `group`: for a partition of a partitioned projection (`projection` is then its
  /// PartitionProjection), the share of partitions this runner may hold; null otherwise.
  Worker(EventStore& events, ProjectionStore& store, const RunnerOptions& runner,
         std::shared_ptr<Projection> projection, ProjectionOptions options,
         std::shared_ptr<PartitionGroup> group = nullptr);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  [[nodiscard]] const std::string& name() const { return name_; }

  /// Starts the thread; it wakes on `signal`, kept until the worker is destroyed.
  void start(std::unique_ptr<ChangeSignal> signal);
  /// Asks the thread to finish its batch, report, release and end; wakes every wait.
  void request_stop();
  void join();
  /// Makes the thread look for rebuild requests and dead-letter retries without waiting for
  /// request_interval.
  void poke();

  [[nodiscard]] ProjectionStatus status() const;
  /// See ProjectionRunner::wait_for().
  bool wait_for(Position position, std::chrono::milliseconds timeout);

 private:
  void interrupt();

  // The thread.
  void run();
  bool acquire();
  bool acquire_share();
  void hand_over();
  void step();
  [[nodiscard]] Page own_events(Page page) const;
  void reload();
  bool apply(const Page& page, bool full, Position read_through);
  void wait_for_change(std::uint64_t token);
  void handle_requests();
  void back_off(const UnavailableError& error);
  void end_outage();
  void drop_lease();
  void fail(const std::string& error);
  void finish();

  ProjectionStore& store_;
  const RunnerOptions& runner_;
  const std::shared_ptr<Projection> projection_;
  const ProjectionOptions options_;
  const std::string name_;
  // A partition's: its projection view and its runner's share; null when unpartitioned.
  const PartitionProjection* partition_;
  const std::shared_ptr<PartitionGroup> group_;
  WorkerStatus status_;
  LeaseKeeper lease_;
  StatusReporter reporter_;
  CheckpointKeeper checkpoint_;
  Backoff backoff_;
  PagePrefetcher pages_;
  BatchApplier applier_;
  RebuildFollower rebuild_;
  std::mutex signal_mutex_;               // guards signal_ against interrupt() before start()
  std::unique_ptr<ChangeSignal> signal_;  // set before the thread starts
  std::thread thread_;

  // Worker thread only.
  bool reload_ = true;
  annals::detail::Outage outage_;  // the current outage of a store, if any
  Clock::time_point next_request_check_;
};

}  // namespace annals::projections::detail
