// The loop of one projection's worker (see worker.hpp). While it holds the projection's lease:
//   h = head_position(); token = signal.observe(); page = read_all(after cp, batch_size);
//   apply the page in one Batch and commit it; when the page came back short, every matching
//   event up to h was in it (h was settled before the read: EventReader::head_position()),
//   so the projection has processed everything up to max(last, h) and may checkpoint there.
//   Short page: wait on the signal, bounded by poll_interval. The lease is renewed meanwhile,
//   and during long batches, by LeaseKeeper's heartbeat thread.
// Reading ahead while catching up is PagePrefetcher's; applying with failure isolation
// BatchApplier's; the checkpoint and its idle writes CheckpointKeeper's; rebuilds
// RebuildFollower's; what other threads see WorkerStatus's and what the store sees
// StatusReporter's.
// Infrastructure errors (UnavailableError) never count against an event: the worker reports
// "reconnecting", backs off with jitter and resumes from the stored checkpoint (the checkpoint
// CAS keeps it exactly-once); the outage is logged when it starts and when it ends. A refused
// checkpoint or renewal (OwnershipLostError) drops the work at once; the worker stands by and
// re-acquires.
#include "worker.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/projections/partitions.hpp"

namespace annals::projections::detail {
namespace {

using annals::detail::logger;
using std::chrono::milliseconds;

double seconds_since(std::chrono::system_clock::time_point when) {
  const std::chrono::duration<double> age = std::chrono::system_clock::now() - when;
  return std::max(0.0, age.count());
}

}  // namespace

Worker::Worker(EventStore& events, ProjectionStore& store, const RunnerOptions& runner,
               std::shared_ptr<Projection> projection, ProjectionOptions options,
               std::shared_ptr<PartitionGroup> group)
    : store_(store),
      runner_(runner),
      projection_(std::move(projection)),
      options_(options),
      name_(projection_->name()),
      partition_(group ? dynamic_cast<const PartitionProjection*>(projection_.get()) : nullptr),
      group_(partition_ != nullptr ? std::move(group) : nullptr),
      status_(name_, runner_.metrics),
      lease_(store, name_, runner_, status_),
      reporter_(store, name_, lease_, status_),
      checkpoint_(store, name_, lease_, status_, reporter_),
      backoff_(options_.initial_backoff, options_.max_backoff),
      pages_(events, projection_->filter(), options_.batch_size),
      applier_(store, *projection_, name_, options_, status_, lease_, checkpoint_, reporter_,
               backoff_),
      rebuild_(store, events, *projection_, name_, status_, checkpoint_, reporter_) {}

Worker::~Worker() { join(); }

void Worker::start(std::unique_ptr<ChangeSignal> signal) {
  {
    std::lock_guard lock(signal_mutex_);
    signal_ = std::move(signal);  // kept until the worker is destroyed
  }
  thread_ = std::thread([this] { run(); });
}

void Worker::request_stop() {
  status_.request_stop();
  interrupt();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::poke() {
  status_.poke();
  interrupt();
}

ProjectionStatus Worker::status() const { return status_.snapshot(); }

bool Worker::wait_for(Position position, milliseconds timeout) {
  return status_.wait_for(position, timeout);
}

void Worker::interrupt() {
  std::lock_guard lock(signal_mutex_);
  if (signal_) signal_->interrupt();
}

void Worker::run() {
  logger()->info("annals: projection {}: started by runner {}", name_, runner_.owner);
  while (!status_.is_stopping()) {
    try {
      if (!lease_.held()) {
        const bool acquired = acquire_share();
        end_outage();
        if (!acquired) {
          status_.set_state(ProjectionState::kStandby);
          lease_.pause(runner_.acquire_interval);
        }
        continue;
      }
      if (group_ && group_->must_release(partition_->index())) {
        hand_over();
        continue;
      }
      step();
      end_outage();
    } catch (const ProjectionFailed& failed) {
      fail(failed.error);
      break;
    } catch (const OwnershipLostError& e) {
      logger()->warn("annals: projection {}: ownership lost ({}); standing by", name_, e.what());
      status_.count_ownership_change("lost");
      drop_lease();
    } catch (const UnavailableError& e) {
      back_off(e);
    } catch (...) {
      fail("projection stopped: " + what_of(std::current_exception()));
      break;
    }
  }
  finish();
}

// Takes the lease if nobody else holds it. The checkpoint is loaded by the next step().
bool Worker::acquire() {
  if (!lease_.try_acquire()) return false;
  if (!group_ && stored_partition_count(store_, name_) > 1) {
    // Partitioned since this runner added it (repartition()): its partitions carry the
    // progress now, and running the projection's own row too would apply events twice.
    lease_.release();
    lease_.drop();
    throw ProjectionFailed{"projection '" + name_ +
                           "' was partitioned since this runner started; restart the runner to "
                           "run its partitions"};
  }
  reload_ = true;
  rebuild_.forget();
  next_request_check_ = Clock::now();
  reporter_.count_from_record();
  lease_.publish();
  status_.count_ownership_change("acquired");
  logger()->info("annals: projection {}: acquired by {} (fencing token {})", name_,
                 lease_.lease().owner, lease_.lease().fencing_token);
  return true;
}

// A partition is taken only within this runner's share (partition_group.hpp).
bool Worker::acquire_share() {
  if (!group_) return acquire();
  if (!group_->reserve(partition_->index())) return false;
  try {
    if (acquire()) return true;
  } catch (...) {
    group_->released(partition_->index());
    throw;
  }
  group_->released(partition_->index());
  return false;
}

// This runner holds more partitions than its share: checkpoint what was processed, release
// this one for another runner and stand by.
void Worker::hand_over() {
  pages_.discard();
  checkpoint_.commit_idle(true);
  status_.set_state(ProjectionState::kStandby);
  reporter_.report(true);
  lease_.release();
  status_.count_ownership_change("released");
  logger()->info("annals: projection {}: released to rebalance ({} runners, share {})", name_,
                 group_->live_runners(), group_->share());
  drop_lease();
  lease_.pause(runner_.acquire_interval);
}

// A partition's page without the events of other partitions' streams, dropped before they are
// applied (and so before they are decoded).
Page Worker::own_events(Page page) const {
  if (partition_ == nullptr) return page;
  std::erase_if(page.events, [this](const RecordedEvent& e) { return !partition_->owns(e); });
  return page;
}

// One turn of the loop: read a page (or take the one read ahead), apply and checkpoint it,
// follow a rebuild, report; after a short page, wait for new events.
void Worker::step() {
  lease_.keep();
  if (reload_) reload();
  if (Clock::now() >= next_request_check_ || status_.take_poke()) handle_requests();

  const Page read = pages_.next(*signal_, checkpoint_.position());
  const bool full = read.events.size() >= options_.batch_size;
  // Catching up: read the next page on another thread while this one is applied. It is
  // used only if this page ends up checkpointed at its last event.
  if (full && !status_.is_stopping()) pages_.prefetch(*signal_, read.events.back().position);
  status_.set_head(read.head, full ? seconds_since(read.events.front().recorded_at) : 0.0);
  const Page page = own_events(read);
  if (full && page.events.empty()) {
    // A partition's full page of other partitions' events: move past it.
    auto batch = checkpoint_.begin();
    checkpoint_.commit(*batch, read.events.back().position, 0);
  }

  if (apply(page, full, read.events.empty() ? Position::start() : read.events.back().position) &&
      !full && page.head > checkpoint_.position()) {
    // Nothing matching up to the head is left: processed through it, checkpoint it soon.
    checkpoint_.reached_head(page.head);
  }
  checkpoint_.commit_idle(rebuild_.active());
  rebuild_.follow();
  checkpoint_.update_rate();
  if (!full) {
    status_.set_state(rebuild_.active() ? ProjectionState::kRebuilding : ProjectionState::kLive);
  }
  reporter_.report(false);
  if (full || status_.is_stopping()) return;
  wait_for_change(page.token);
}

// Reads the checkpoint again (after acquiring the lease or an error) and catches up from it.
void Worker::reload() {
  pages_.discard();
  checkpoint_.reload();
  reload_ = false;
  // During an outage the state stays "reconnecting" until a read succeeds.
  if (!outage_.active()) status_.set_state(ProjectionState::kCatchingUp);
  reporter_.report(true);
}

// Applies `page` and checkpoints it. Returns false when it stopped early because the runner
// is stopping.
bool Worker::apply(const Page& page, bool full, Position read_through) {
  if (page.events.empty()) return true;
  // A short page reaches the head: the projection is live once it is applied, which the
  // state says before the commit wakes any wait_for().
  status_.set_state(rebuild_.active() ? ProjectionState::kRebuilding
                    : full            ? ProjectionState::kCatchingUp
                                      : ProjectionState::kLive);
  // The last event read, of any partition: everything up to it was processed.
  const Position last = std::max(page.events.back().position, read_through);
  return applier_.apply_page(page.events, full ? last : std::max(last, page.head));
}

// Waits for events after `token`, bounded by poll_interval, the next look at requests and the
// next idle checkpoint write. (The lease's renewal does not need this thread.)
void Worker::wait_for_change(std::uint64_t token) {
  auto timeout =
      std::min<Clock::duration>(runner_.poll_interval, next_request_check_ - Clock::now());
  if (const auto due = checkpoint_.idle_commit_due()) {
    timeout = std::min(timeout, *due - Clock::now());
  }
  if (timeout > Clock::duration::zero()) {
    signal_->wait(token, std::chrono::ceil<milliseconds>(timeout));
  }
}

// Rebuild requests and dead-letter retries, every request_interval or when poked.
void Worker::handle_requests() {
  next_request_check_ = Clock::now() + runner_.request_interval;
  rebuild_.check_request();
  applier_.retry_dead_letters();
}

// A store is unavailable: report "reconnecting" (to the store too, when only the event
// store is down), warn once per outage, and wait out the backoff while keeping the lease.
// Everything after the stored checkpoint is read again afterwards.
void Worker::back_off(const UnavailableError& error) {
  const auto wait = backoff_.after(outage_.failures());
  if (outage_.fail()) {
    logger()->warn("annals: projection {}: store unavailable ({}); reconnecting with backoff",
                   name_, error.what());
  }
  reload_ = true;
  status_.set_state(ProjectionState::kReconnecting);
  try {
    reporter_.report(false);
  } catch (const std::exception&) {
    // The projection store is down too; the state is reported once it is back.
  }
  try {
    lease_.pause(wait);
  } catch (const std::exception&) {
    drop_lease();  // the renewal during the pause failed too; re-acquire afterwards
    status_.set_state(ProjectionState::kReconnecting);
  }
}

// A turn of the loop succeeded: an outage in progress is over.
void Worker::end_outage() {
  if (const auto ended = outage_.end()) {
    logger()->info(
        "annals: projection {}: stores available again after {} ms ({} failed attempts); "
        "resuming from the checkpoint",
        name_, ended->duration.count(), ended->failed_attempts);
  }
}

void Worker::drop_lease() {
  pages_.discard();
  lease_.drop();
  if (group_) group_->released(partition_->index());
  rebuild_.forget();
  checkpoint_.forget_idle();
  status_.stand_by();
}

// The projection failed for good (OnFailure::kStop, or a store error that no retry fixes):
// report it, give the lease up so that a fixed runner can take over, and end.
void Worker::fail(const std::string& error) {
  logger()->error("annals: projection {}: failed: {}", name_, error);
  if (lease_.held()) {
    try {
      reporter_.report_failed(error);
      lease_.release();
      status_.count_ownership_change("released");
    } catch (const std::exception& e) {
      logger()->warn("annals: projection {}: could not report the failure: {}", name_, e.what());
    }
    lease_.drop();
    if (group_) group_->released(partition_->index());
  }
  // Visible only now, so that whoever wait_for() wakes sees the lease released.
  status_.fail(error);
}

// The end of the thread: checkpoint what an idle projection processed, report "stopped",
// release the lease.
void Worker::finish() {
  pages_.discard();
  status_.stop();
  if (lease_.held()) {
    try {
      checkpoint_.commit_idle(true);
      reporter_.report(true);
      lease_.release();
      status_.count_ownership_change("released");
    } catch (const std::exception& e) {
      logger()->warn("annals: projection {}: could not release its lease cleanly: {}", name_,
                     e.what());
    }
    lease_.drop();
    if (group_) group_->released(partition_->index());
  }
  status_.finish();
  logger()->info("annals: projection {}: stopped at {}", name_, checkpoint_.position().to_string());
}

}  // namespace annals::projections::detail
