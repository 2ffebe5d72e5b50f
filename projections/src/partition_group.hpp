// Private: how a runner runs a partitioned projection (annals/projections/partitions.hpp). Each
// partition is a Worker of its own over a PartitionProjection, a view of the user's projection
// under the partition's row name; one PartitionGroup per projection decides how many
// partitions this runner may hold.
//
// The rebalancing rule: a runner holds a seat row ("<name>.runner-<k>") while it runs; the
// number of seats held (ProjectionRecord::owned) is the number of live runners R, and a runner
// holds at most ceil(N / R) partitions. A runner under its share takes free partitions; one
// over it releases its highest-numbered partition, one at a time. A runner without a seat (all
// N seats are held) takes no partition. A dead runner's seat and partitions are free once its
// leases lapse or, on PostgreSQL, once its session ends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"

namespace annals::projections::detail {

/// One partition of a projection, as a projection of its own: its row name, the projection's
/// filter; apply() and reset() go to the projection, one call at a time across the partitions
/// of this runner (a projection object is called by one thread at a time). setup() does
/// nothing: the projection's own row ran it. The worker drops other partitions' events before
/// they reach apply() (and so before they are decoded).
class PartitionProjection final : public Projection {
 public:
  PartitionProjection(std::shared_ptr<Projection> projection, std::shared_ptr<std::mutex> calls,
                      int index, int count);

  [[nodiscard]] std::string name() const override { return name_; }
  [[nodiscard]] EventFilter filter() const override { return projection_->filter(); }
  void setup(UnitOfWork&) override {}
  void apply(const RecordedEvent& event, UnitOfWork& work) override;
  void reset(UnitOfWork& work) override;

  [[nodiscard]] int index() const noexcept { return index_; }
  [[nodiscard]] int count() const noexcept { return count_; }
  /// Whether `event` belongs to this partition.
  [[nodiscard]] bool owns(const RecordedEvent& event) const;

 private:
  std::shared_ptr<Projection> projection_;
  std::shared_ptr<std::mutex> calls_;
  int index_;
  int count_;
  std::string name_;
};

/// The share of one partitioned projection this runner may hold, kept by a thread of its own
/// that holds the runner's seat and counts the live runners every acquire_interval.
/// Thread safety: every method from any thread.
class PartitionGroup {
 public:
  /// Registers the seat rows (ProjectionStore::prepare). Throws: the store's errors.
  PartitionGroup(ProjectionStore& store, std::string projection, int count,
                 const RunnerOptions& runner);
  PartitionGroup(const PartitionGroup&) = delete;
  PartitionGroup& operator=(const PartitionGroup&) = delete;
  /// Stops the thread and releases the seat.
  ~PartitionGroup();

  void start();
  void stop();

  /// Whether this runner may take partition `index` now; if so it counts as held until
  /// released().
  [[nodiscard]] bool reserve(int index);
  /// Partition `index` is no longer held (its acquisition failed, it was released or lost).
  void released(int index);
  /// Whether this runner holds more than its share and `index` is the partition to give up.
  [[nodiscard]] bool must_release(int index) const;

  /// Live runners as last counted, and this runner's share (0 without a seat).
  [[nodiscard]] int live_runners() const;
  [[nodiscard]] int share() const;

 private:
  void run();
  void turn();

  ProjectionStore& store_;
  const std::string projection_;
  const int count_;
  const RunnerOptions& runner_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::optional<Lease> seat_;
  int live_ = 1;
  int share_ = 0;
  std::set<int> held_;
  std::chrono::steady_clock::time_point renew_at_;
  std::thread thread_;
};

}  // namespace annals::projections::detail
