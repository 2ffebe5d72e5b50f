// A projection worker's part in rebuilds (see rebuild_follower.hpp).
#include "rebuild_follower.hpp"

#include <exception>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"
#include "worker_support.hpp"

namespace annals::projections::detail {

using annals::detail::logger;

RebuildFollower::RebuildFollower(ProjectionStore& store, EventReader& events,
                                 Projection& projection, std::string name, WorkerStatus& status,
                                 CheckpointKeeper& checkpoint, StatusReporter& reporter)
    : store_(store),
      events_(events),
      projection_(projection),
      name_(std::move(name)),
      status_(status),
      checkpoint_(checkpoint),
      reporter_(reporter) {}

void RebuildFollower::check_request() {
  auto request = store_.open_rebuild(name_);
  if (!request) return;
  if (request->state == RebuildState::kRequested) {
    start(*request);
  } else if (!rebuild_ || rebuild_->id != request->id) {
    // Running: a former owner reset the projection (it marks the request running only after
    // the reset committed) and this owner carries the replay on.
    logger()->info("annals: projection {}: resuming rebuild {}", name_, request->id);
    rebuild_ = request;
  }
}

void RebuildFollower::start(RebuildRequest request) {
  const Position target = events_.head_position();
  logger()->info("annals: projection {}: rebuild {} started, replaying up to {}", name_, request.id,
                 target.to_string());
  auto batch = checkpoint_.begin();
  if (auto failed = reset(*batch)) {
    batch.reset();
    request.state = RebuildState::kFailed;
    request.message = "reset failed: " + *failed;
    logger()->error("annals: projection {}: rebuild {} failed: {}", name_, request.id,
                    *request.message);
    store_.update_rebuild(request);
    return;
  }
  checkpoint_.commit_reset(*batch);
  // Give the batch's connection back first: a store with a pool of one connection would
  // otherwise wait for it below (annals::postgres::open gives a small budget one).
  batch.reset();
  // Marked running only now: a request found running is known to have been reset.
  request.state = RebuildState::kRunning;
  request.target = target;
  request.progress = Position::start();
  store_.update_rebuild(request);
  rebuild_ = request;
  status_.set_state(ProjectionState::kRebuilding);
  reporter_.report(true);
}

// Resets the projection in `batch`. Returns the error when the projection threw; the store's
// errors propagate.
std::optional<std::string> RebuildFollower::reset(Batch& batch) {
  try {
    projection_.reset(batch);
    return std::nullopt;
  } catch (const UnavailableError&) {
    throw;
  } catch (const OwnershipLostError&) {
    throw;
  } catch (...) {
    return what_of(std::current_exception());
  }
}

void RebuildFollower::follow() {
  if (!rebuild_) return;
  const Position cp = checkpoint_.position();
  const Position target = rebuild_->target.value_or(Position::start());
  if (rebuild_->progress == cp && cp < target) return;
  rebuild_->progress = cp;
  if (cp >= target) {
    rebuild_->state = RebuildState::kDone;
    rebuild_->message = "replayed up to " + target.to_string();
    store_.update_rebuild(*rebuild_);
    logger()->info("annals: projection {}: rebuild {} done", name_, rebuild_->id);
    rebuild_.reset();
    status_.set_state(ProjectionState::kLive);
    reporter_.report(true);
    return;
  }
  store_.update_rebuild(*rebuild_);
}

}  // namespace annals::projections::detail
