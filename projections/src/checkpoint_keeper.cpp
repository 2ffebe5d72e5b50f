// A projection worker's checkpoint (see checkpoint_keeper.hpp).
#include "checkpoint_keeper.hpp"

#include <chrono>
#include <utility>

namespace annals::projections::detail {
namespace {

using std::chrono::milliseconds;

/// Longest delay of a checkpoint write that only moves an idle projection forward.
constexpr milliseconds kIdleCommitInterval{200};
/// Window of the events-per-second estimate.
constexpr milliseconds kRateWindow{1000};

}  // namespace

CheckpointKeeper::CheckpointKeeper(ProjectionStore& store, std::string name,
                                   const LeaseKeeper& lease, WorkerStatus& status,
                                   StatusReporter& reporter)
    : store_(store), name_(std::move(name)), lease_(lease), status_(status), reporter_(reporter) {}

void CheckpointKeeper::reload() {
  cp_ = store_.checkpoint(name_);
  idle_target_.reset();
  status_.reset_position(cp_);
}

std::unique_ptr<Batch> CheckpointKeeper::begin() { return store_.begin(lease_.lease(), cp_); }

void CheckpointKeeper::commit(Batch& batch, Position to, std::size_t applied,
                              const std::function<void()>& committed) {
  batch.commit(to);
  if (committed) committed();
  cp_ = to;
  last_commit_ = Clock::now();
  if (idle_target_ && *idle_target_ <= cp_) idle_target_.reset();
  reporter_.count_applied(applied);
  window_events_ += static_cast<std::int64_t>(applied);
  status_.committed(to, applied);
}

void CheckpointKeeper::commit_reset(Batch& batch) {
  batch.commit(Position::start());
  cp_ = Position::start();
  last_commit_ = Clock::now();
  idle_target_.reset();
  reporter_.count_from_zero();
  // The read model is empty again: earlier positions are not in it.
  status_.reset_position(cp_);
}

void CheckpointKeeper::reached_head(Position head) {
  idle_target_ = head;
  status_.processed_through(head);
}

void CheckpointKeeper::commit_idle(bool now) {
  if (!idle_target_ || *idle_target_ <= cp_) {
    idle_target_.reset();
    return;
  }
  if (!now && Clock::now() < last_commit_ + kIdleCommitInterval) return;
  const Position to = *idle_target_;
  auto batch = begin();
  commit(*batch, to, 0);
}

std::optional<Clock::time_point> CheckpointKeeper::idle_commit_due() const {
  if (!idle_target_) return std::nullopt;
  return last_commit_ + kIdleCommitInterval;
}

void CheckpointKeeper::update_rate() {
  const auto now = Clock::now();
  const std::chrono::duration<double> elapsed = now - window_start_;
  if (elapsed < kRateWindow) return;
  const double rate = static_cast<double>(window_events_) / elapsed.count();
  window_start_ = now;
  window_events_ = 0;
  status_.add_rate_sample(rate);
}

}  // namespace annals::projections::detail
