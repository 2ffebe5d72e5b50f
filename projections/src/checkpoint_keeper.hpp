// Private: a projection worker's checkpoint: the position last read from or written to the
// store, the batches that move it, and the head an idle projection has processed through but
// not yet checkpointed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "annals/projections/projection_store.hpp"
#include "lease_keeper.hpp"
#include "status_reporter.hpp"
#include "worker_status.hpp"
#include "worker_support.hpp"

namespace annals::projections::detail {

/// The stored checkpoint of one projection and the bookkeeping of every commit that moves it
/// (status, applied count, rate). Checkpoints that only move an idle projection past events it
/// does not handle are written at most every kIdleCommitInterval; read-your-writes does not
/// wait for them, because wait_for() follows the processed position, which moves at once.
/// Thread safety: the worker's thread only.
class CheckpointKeeper {
 public:
  CheckpointKeeper(ProjectionStore& store, std::string name, const LeaseKeeper& lease,
                   WorkerStatus& status, StatusReporter& reporter);

  /// The stored checkpoint, as last read or written.
  [[nodiscard]] Position position() const { return cp_; }

  /// Reads the checkpoint from the store again (after acquiring the lease or an error).
  void reload();
  /// A batch from the checkpoint, fenced by the lease. Requires: the lease is held.
  [[nodiscard]] std::unique_ptr<Batch> begin();
  /// Commits `batch` at `to`, having applied `applied` events in it. `committed` (optional)
  /// runs once the batch committed and before waiters of the position are woken (metrics,
  /// log lines), so that whoever saw the position also sees what it reported.
  void commit(Batch& batch, Position to, std::size_t applied,
              const std::function<void()>& committed = {});
  /// Commits `batch` (which reset the projection) at the start of the log.
  void commit_reset(Batch& batch);

  /// Every matching event up to `head` was applied: checkpoint it soon (commit_idle()).
  void reached_head(Position head);
  /// Writes the checkpoint of an idle projection: at once when `now`, otherwise at most every
  /// kIdleCommitInterval.
  void commit_idle(bool now);
  /// When commit_idle() writes next, if it has something to write.
  [[nodiscard]] std::optional<Clock::time_point> idle_commit_due() const;
  void forget_idle() { idle_target_.reset(); }

  /// Updates the events-per-second estimate once a window has passed.
  void update_rate();

 private:
  ProjectionStore& store_;
  const std::string name_;
  const LeaseKeeper& lease_;
  WorkerStatus& status_;
  StatusReporter& reporter_;
  Position cp_;
  std::optional<Position> idle_target_;  // processed through here, checkpoint not yet moved
  Clock::time_point last_commit_;
  Clock::time_point window_start_ = Clock::now();
  std::int64_t window_events_ = 0;
};

}  // namespace annals::projections::detail
