// Private: a projection worker's part in rebuilds (ProjectionRunner::rebuild): it resets the
// projection when a rebuild was requested, replays the log from the start through the usual
// loop, and reports the progress until the checkpoint passes the head it started at.
#pragma once

#include <optional>
#include <string>

#include "annals/eventstore/event_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "checkpoint_keeper.hpp"
#include "status_reporter.hpp"
#include "worker_status.hpp"

namespace annals::projections::detail {

/// The rebuild of one projection that its worker runs, if any.
/// Thread safety: the worker's thread only.
class RebuildFollower {
 public:
  RebuildFollower(ProjectionStore& store, EventReader& events, Projection& projection,
                  std::string name, WorkerStatus& status, CheckpointKeeper& checkpoint,
                  StatusReporter& reporter);

  /// Starts a requested rebuild, or carries on the one a former owner started.
  void check_request();
  /// Reports the progress of the running rebuild, and its end once the checkpoint passed the
  /// target.
  void follow();
  [[nodiscard]] bool active() const { return rebuild_.has_value(); }
  /// Forgets the running rebuild (the lease was lost or taken anew; the next owner carries on).
  void forget() { rebuild_.reset(); }

 private:
  void start(RebuildRequest request);
  std::optional<std::string> reset(Batch& batch);

  ProjectionStore& store_;
  EventReader& events_;
  Projection& projection_;
  const std::string name_;
  WorkerStatus& status_;
  CheckpointKeeper& checkpoint_;
  StatusReporter& reporter_;
  std::optional<RebuildRequest> rebuild_;
};

}  // namespace annals::projections::detail
