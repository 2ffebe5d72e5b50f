// Failure isolation of a projection worker (see batch_applier.hpp).
//
// A store may queue a projection's writes and send them later (the PostgreSQL ReadModel sends
// them at commit, in one round trip): their failure (DeferredWriteError, from a later apply or
// from the commit) does not say which event queued them. The batches are pipelined
// (Batch::set_pipelined); on a DeferredWriteError the batch is rolled back and the rest of the
// page is applied again from the batch's first event unpipelined (each write sent at once), so
// that the failing event fails on its own and what follows holds for it exactly.
//
// Failure of event k of a page: the batch is rolled back, [0, k) is committed on its own
// (re-applied in a new batch, except for in-process projections, whose effects a rollback
// cannot undo and which therefore keep them), then k is retried alone with backoff; after
// max_attempts the projection stops or parks k as a dead letter in a batch committed at k.
// An event the store could not decode (RecordedEvent::decode_failure) is never applied: it is
// parked in the batch it falls in, with one attempt, whatever the failure policy.
// Infrastructure errors (UnavailableError) never count against an event: they propagate, and
// the worker backs off and resumes from the stored checkpoint.
#include "batch_applier.hpp"

#include <exception>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/trace_context.hpp"
#include "worker_support.hpp"

namespace annals::projections::detail {

using annals::detail::logger;

BatchApplier::BatchApplier(ProjectionStore& store, Projection& projection, std::string name,
                           const ProjectionOptions& options, WorkerStatus& status,
                           LeaseKeeper& lease, CheckpointKeeper& checkpoint,
                           StatusReporter& reporter, Backoff& backoff)
    : store_(store),
      projection_(projection),
      name_(std::move(name)),
      options_(options),
      in_process_(dynamic_cast<InProcessProjection*>(&projection) != nullptr),
      status_(status),
      lease_(lease),
      checkpoint_(checkpoint),
      reporter_(reporter),
      backoff_(backoff) {}

bool BatchApplier::apply_page(const std::vector<RecordedEvent>& page, Position through) {
  PageCursor at{.page = page, .through = through};
  while (at.next < page.size()) {
    if (status_.is_stopping()) return false;
    lease_.keep();
    if (at.failure && at.failure->first == at.next) {
      if (!retry_event(page[at.next], at.failure->second, at.commit_point(at.next + 1))) {
        return false;
      }
      at.failure.reset();
      ++at.next;
    } else if (at.failure && in_process_) {
      commit_without_applying(at);
    } else {
      apply_batch(at);
    }
  }
  return true;
}

// Applies [next, batch_end()) in one batch and commits it; on an event's failure, rolls back
// and records the failure in `at`.
void BatchApplier::apply_batch(PageCursor& at) {
  const auto started = status_.metrics().start();
  const std::size_t end = at.batch_end();
  auto batch = checkpoint_.begin();
  std::size_t k = at.next;
  std::string error;
  std::size_t parked = 0;
  batch->set_pipelined(!at.isolated);
  try {
    for (; k < end; ++k) {
      if (at.page[k].is_undecodable()) {
        park_undecodable(at.page[k], *batch, parked);
        continue;
      }
      if (auto failed = apply(at.page[k], *batch)) {
        error = std::move(*failed);
        break;
      }
    }
    if (k == end) {
      const std::size_t first = at.next;
      commit_batch(*batch, at, end, parked, [&] { report_batch(at.page, first, end, started); });
      return;
    }
  } catch (const DeferredWriteError& e) {
    // Some event of [next, k] queued a write that failed. Nobody is blamed yet: apply again
    // from `next` unpipelined, and the failing event fails on its own.
    if (at.isolated) throw;  // nothing was queued: not an event's write
    batch.reset();
    at.isolated = true;
    logger()->info(
        "annals: projection {}: a queued write failed ({}); applying the events again "
        "unpipelined to find the one it belongs to",
        name_, e.what());
    return;
  }
  batch.reset();  // rolls back
  status_.count_error(error);
  logger()->warn("annals: projection {}: event {} failed (attempt 1 of {}): {}", name_,
                 describe(at.page[k]), options_.max_attempts, error);
  at.failure.emplace(k, std::move(error));
}

// [next, batch_end()) took effect in the failed batch and a rollback cannot undo an
// in-process projection's effects: checkpoints them without applying them twice. The
// undecodable events among them were parked in the rolled-back batch: parks them again.
void BatchApplier::commit_without_applying(PageCursor& at) {
  const std::size_t end = at.batch_end();
  auto batch = checkpoint_.begin();
  std::size_t parked = 0;
  for (std::size_t j = at.next; j < end; ++j) {
    if (at.page[j].is_undecodable()) park_undecodable(at.page[j], *batch, parked);
  }
  commit_batch(*batch, at, end, parked);
}

void BatchApplier::commit_batch(Batch& batch, PageCursor& at, std::size_t end, std::size_t parked,
                                const std::function<void()>& committed) {
  checkpoint_.commit(batch, at.commit_point(end), end - at.next - parked, committed);
  count_parked(parked);
  at.next = end;
}

// After a batch [first, end) of `page` committed, before its position is visible to waiters:
// its duration (with the trace id of its last
// traced event as the exemplar) and, at debug level, one line per traced event naming its
// trace id, so that a request can be followed into the projection (docs/observability.md).
// Looks for trace ids only when a sink is attached or debug logging is on.
void BatchApplier::report_batch(const std::vector<RecordedEvent>& page, std::size_t first,
                                std::size_t end, Clock::time_point started) {
  const bool debug = logger()->should_log(spdlog::level::debug);
  if (!status_.metrics().enabled() && !debug) return;
  std::string last_trace;
  for (std::size_t i = first; i < end; ++i) {
    std::string trace = trace_id_of(page[i]);
    if (trace.empty()) continue;
    if (debug) {
      // describe() names the trace id.
      logger()->debug("annals: projection {}: applied {}", name_, describe(page[i]));
    }
    last_trace = std::move(trace);
  }
  status_.metrics().observe_since(HistogramId::kProjectionBatchDuration, status_.labels(), started,
                                  last_trace);
}

// Attempts 2..max_attempts at `event` alone, each in its own batch committed at `to`; then
// the failure policy. Returns false when the runner is stopping.
bool BatchApplier::retry_event(const RecordedEvent& event, std::string error, Position to) {
  for (int attempt = 2; attempt <= options_.max_attempts; ++attempt) {
    if (!lease_.pause(backoff_.after(attempt - 2))) return false;
    lease_.keep();
    auto batch = checkpoint_.begin();
    if (auto failed = apply(event, *batch)) {
      batch.reset();
      error = std::move(*failed);
      status_.count_error(error);
      logger()->warn("annals: projection {}: event {} failed (attempt {} of {}): {}", name_,
                     describe(event), attempt, options_.max_attempts, error);
      continue;
    }
    checkpoint_.commit(*batch, to, 1);
    logger()->info("annals: projection {}: event {} applied on attempt {}", name_, describe(event),
                   attempt);
    return true;
  }
  if (options_.on_failure == OnFailure::kStop) {
    throw ProjectionFailed{"event " + describe(event) + " failed " +
                           std::to_string(options_.max_attempts) + " times: " + error};
  }
  park_failed(event, error, to);
  return true;
}

void BatchApplier::park_failed(const RecordedEvent& event, const std::string& error, Position to) {
  auto batch = checkpoint_.begin();
  batch->park(event, error, options_.max_attempts);
  checkpoint_.commit(*batch, to, 0);
  status_.count_dead_letters(1, "parked " + describe(event) + ": " + error);
  logger()->warn(
      "annals: projection {}: parked event {} as a dead letter after {} "
      "attempts: {}",
      name_, describe(event), options_.max_attempts, error);
  reporter_.report(true);
}

// Parks an event the store could not decode (RecordedEvent::decode_failure) in `batch`, at
// once and whatever the failure policy: no attempt can succeed on bytes that do not change,
// and stopping would stop the projection at that row for good. The projection
// never sees it. Counted (`parked`) once the batch commits.
void BatchApplier::park_undecodable(const RecordedEvent& event, Batch& batch, std::size_t& parked) {
  const std::string error = "undecodable event: " + event.decode_failure->reason;
  batch.park(event, error, 1);
  ++parked;
  logger()->warn("annals: projection {}: parked event {} as a dead letter: {}", name_,
                 describe(event), error);
}

void BatchApplier::count_parked(std::size_t parked) {
  if (parked == 0) return;
  status_.count_dead_letters(parked, "parked undecodable events (" + std::to_string(parked) + ")");
  reporter_.report(true);
}

void BatchApplier::retry_dead_letters() {
  DeadLetterQuery query;
  query.projection = name_;
  query.state = DeadLetterState::kRetryRequested;
  query.max_count = options_.batch_size;
  for (const auto& letter : store_.list_dead_letters(query)) {
    if (status_.is_stopping()) return;
    lease_.keep();
    retry_dead_letter(letter);
  }
}

void BatchApplier::retry_dead_letter(const DeadLetter& letter) {
  if (letter.event.is_undecodable()) {
    // Still the same stored bytes: the retry fails as the first attempt did.
    const std::string error = "undecodable event: " + letter.event.decode_failure->reason;
    status_.count_error(error);
    store_.retry_failed(letter.id, error);
    logger()->warn("annals: projection {}: retry of dead letter {} ({}) failed: {}", name_,
                   letter.id, describe(letter.event), error);
    return;
  }
  auto batch = checkpoint_.begin();
  if (auto failed = apply(letter.event, *batch)) {
    batch.reset();
    status_.count_error(*failed);
    store_.retry_failed(letter.id, *failed);
    logger()->warn("annals: projection {}: retry of dead letter {} ({}) failed: {}", name_,
                   letter.id, describe(letter.event), *failed);
    return;
  }
  batch->resolve_dead_letter(letter.id);
  checkpoint_.commit(*batch, checkpoint_.position(), 1);
  logger()->info("annals: projection {}: dead letter {} ({}) applied", name_, letter.id,
                 describe(letter.event));
}

// Applies `event` in `batch`. Returns the error when the projection threw. Infrastructure
// errors propagate (they are not the event's fault), and so does a DeferredWriteError of a
// pipelined batch: a write queued by an earlier event may have failed.
std::optional<std::string> BatchApplier::apply(const RecordedEvent& event, Batch& batch) {
  try {
    projection_.apply(event, batch);
    return std::nullopt;
  } catch (const UnavailableError&) {
    throw;
  } catch (const OwnershipLostError&) {
    throw;
  } catch (const DeferredWriteError&) {
    throw;
  } catch (...) {
    return what_of(std::current_exception());
  }
}

}  // namespace annals::projections::detail
