// Private: how a projection worker applies events with failure isolation: a failing event is
// retried alone with backoff and then stops the projection or is parked as a dead letter,
// while the events around it are applied and checkpointed. Dead letters an operator asked to
// retry are applied here too.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "backoff.hpp"
#include "checkpoint_keeper.hpp"
#include "lease_keeper.hpp"
#include "status_reporter.hpp"
#include "worker_status.hpp"

namespace annals::projections::detail {

/// Applies pages of one projection's events in batches fenced by its lease.
/// Thread safety: the worker's thread only.
class BatchApplier {
 public:
  BatchApplier(ProjectionStore& store, Projection& projection, std::string name,
               const ProjectionOptions& options, WorkerStatus& status, LeaseKeeper& lease,
               CheckpointKeeper& checkpoint, StatusReporter& reporter, Backoff& backoff);

  /// Applies `page` (in log order) and checkpoints it, the last batch at `through`. Returns
  /// false when it stopped early because the runner is stopping.
  /// Throws: ProjectionFailed when an event failed max_attempts times under OnFailure::kStop;
  /// the store's errors (UnavailableError, OwnershipLostError, ...), which are not an event's.
  bool apply_page(const std::vector<RecordedEvent>& page, Position through);

  /// Applies the dead letters an operator asked to retry (at most batch_size of them), each in
  /// its own batch at the checkpoint; one that fails again stays parked.
  void retry_dead_letters();

 private:
  // Where apply_page() is in its page.
  struct PageCursor {
    const std::vector<RecordedEvent>& page;
    Position through;
    std::size_t next = 0;
    // An event of the page that failed its first attempt, with its error.
    std::optional<std::pair<std::size_t, std::string>> failure;
    // Set once queued writes failed without saying whose (DeferredWriteError): from then on,
    // the page's batches are not pipelined, so that a failure belongs to its event.
    bool isolated = false;

    // Where the batch that ends before `end` is checkpointed.
    [[nodiscard]] Position commit_point(std::size_t end) const {
      return end == page.size() ? through : page[end - 1].position;
    }
    // Where the next batch ends: at the failed event, or with the page.
    [[nodiscard]] std::size_t batch_end() const { return failure ? failure->first : page.size(); }
  };

  void apply_batch(PageCursor& at);
  void report_batch(const std::vector<RecordedEvent>& page, std::size_t first, std::size_t end,
                    Clock::time_point started);
  void commit_without_applying(PageCursor& at);
  void commit_batch(Batch& batch, PageCursor& at, std::size_t end, std::size_t parked,
                    const std::function<void()>& committed = {});
  bool retry_event(const RecordedEvent& event, std::string error, Position to);
  void park_failed(const RecordedEvent& event, const std::string& error, Position to);
  void park_undecodable(const RecordedEvent& event, Batch& batch, std::size_t& parked);
  void count_parked(std::size_t parked);
  void retry_dead_letter(const DeadLetter& letter);
  std::optional<std::string> apply(const RecordedEvent& event, Batch& batch);

  ProjectionStore& store_;
  Projection& projection_;
  const std::string name_;
  const ProjectionOptions& options_;
  // Whether the projection's effects live outside the store, where a rollback cannot undo them.
  const bool in_process_;
  WorkerStatus& status_;
  LeaseKeeper& lease_;
  CheckpointKeeper& checkpoint_;
  StatusReporter& reporter_;
  Backoff& backoff_;
};

}  // namespace annals::projections::detail
