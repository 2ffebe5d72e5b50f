// ProjectionRunner: one thread per projection (a Worker), each with its own ChangeSignal.
//
// A worker's loop, while it holds the projection's lease (issue #4; LeaseKeeper):
//   h = head_position(); token = signal.observe(); page = read_all(after cp, batch_size);
//   apply the page in one Batch and commit it; when the page came back short, every matching
//   event up to h was in it (h was settled before the read: EventReader::head_position()),
//   so the projection has processed everything up to max(last, h) and may checkpoint there.
//   Short page: wait on the signal, bounded by poll_interval and the next renewal.
// Each part has its own unit: reading ahead while catching up (PagePrefetcher), applying with
// failure isolation (BatchApplier), the checkpoint and its idle writes (CheckpointKeeper),
// rebuilds (RebuildFollower), and the status shown to other threads (WorkerStatus) and to the
// store (StatusReporter).
// Infrastructure errors (UnavailableError) never count against an event: the worker backs
// off and resumes from the stored checkpoint. A refused checkpoint or renewal
// (OwnershipLostError) drops the work at once; the worker stands by and re-acquires.
#include "annals/projections/runner.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"
#include "backoff.hpp"
#include "batch_applier.hpp"
#include "checkpoint_keeper.hpp"
#include "lease_keeper.hpp"
#include "page_prefetcher.hpp"
#include "rebuild_follower.hpp"
#include "status_reporter.hpp"
#include "worker_status.hpp"
#include "worker_support.hpp"

namespace annals::projections {
namespace {

using annals::detail::logger;
using detail::Clock;
using std::chrono::milliseconds;

std::string random_hex(std::size_t count) {
  std::random_device device;
  std::mt19937 rng(device());
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(kDigits[rng() % 16]);
  return out;
}

std::string default_owner() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  const std::string hostname = host[0] != '\0' ? host : "localhost";
  return hostname + ":" + std::to_string(getpid()) + ":" + random_hex(4);
}

void validate(const RunnerOptions& options) {
  const auto positive = [](milliseconds value, const char* field) {
    if (value.count() <= 0) {
      throw InvalidArgumentError(std::string("invalid RunnerOptions::") + field + " of " +
                                 std::to_string(value.count()) + " ms: it must be positive");
    }
  };
  positive(options.lease_ttl, "lease_ttl");
  positive(options.acquire_interval, "acquire_interval");
  positive(options.poll_interval, "poll_interval");
  positive(options.request_interval, "request_interval");
}

void validate(const std::string& name, const ProjectionOptions& options) {
  const auto invalid = [&](const std::string& what) {
    throw InvalidArgumentError("invalid ProjectionOptions of projection '" + name + "': " + what);
  };
  if (options.batch_size == 0) invalid("batch_size must be at least 1");
  if (options.max_attempts < 1) {
    invalid("max_attempts must be at least 1, not " + std::to_string(options.max_attempts));
  }
  if (options.initial_backoff.count() < 0 || options.max_backoff.count() < 0) {
    invalid("initial_backoff and max_backoff must not be negative");
  }
  if (options.initial_backoff > options.max_backoff) {
    invalid("initial_backoff (" + std::to_string(options.initial_backoff.count()) +
            " ms) exceeds max_backoff (" + std::to_string(options.max_backoff.count()) + " ms)");
  }
}

}  // namespace

const char* to_string(ProjectionState state) noexcept {
  switch (state) {
    case ProjectionState::kStarting:
      return "starting";
    case ProjectionState::kStandby:
      return "standby";
    case ProjectionState::kCatchingUp:
      return "catching-up";
    case ProjectionState::kLive:
      return "live";
    case ProjectionState::kRebuilding:
      return "rebuilding";
    case ProjectionState::kStopped:
      return "stopped";
    case ProjectionState::kFailed:
      return "failed";
  }
  return "unknown";
}

namespace {

/// One projection's thread and the parts it composes. Only status_ (and the signal's
/// interrupt()) is shared with other threads; everything else is the thread's own.
class Worker {
 public:
  Worker(EventStore& events, ProjectionStore& store, const RunnerOptions& runner,
         std::shared_ptr<Projection> projection, ProjectionOptions options)
      : runner_(runner),
        projection_(std::move(projection)),
        options_(options),
        name_(projection_->name()),
        status_(name_),
        lease_(store, name_, runner_, status_),
        reporter_(store, name_, lease_, status_),
        checkpoint_(store, name_, lease_, status_, reporter_),
        backoff_(options_.initial_backoff, options_.max_backoff),
        pages_(events, projection_->filter(), options_.batch_size),
        applier_(store, *projection_, name_, options_, status_, lease_, checkpoint_, reporter_,
                 backoff_),
        rebuild_(store, events, *projection_, name_, status_, checkpoint_, reporter_) {}

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { join(); }

  const std::string& name() const { return name_; }

  void start(std::unique_ptr<ChangeSignal> signal) {
    {
      std::lock_guard lock(signal_mutex_);
      signal_ = std::move(signal);  // kept until the worker is destroyed
    }
    thread_ = std::thread([this] { run(); });
  }

  /// Asks the thread to finish its batch, report, release and end; wakes every wait.
  void request_stop() {
    status_.request_stop();
    interrupt();
  }

  void join() {
    if (thread_.joinable()) thread_.join();
  }

  /// Makes the thread look for rebuild requests and dead-letter retries without waiting for
  /// request_interval.
  void poke() {
    status_.poke();
    interrupt();
  }

  ProjectionStatus status() const { return status_.snapshot(); }

  bool wait_for(Position position, milliseconds timeout) {
    return status_.wait_for(position, timeout);
  }

 private:
  void interrupt() {
    std::lock_guard lock(signal_mutex_);
    if (signal_) signal_->interrupt();
  }

  // ---- the thread ------------------------------------------------------------------------

  void run() {
    logger()->info("annals: projection {}: started by runner {}", name_, runner_.owner);
    int unavailable_in_a_row = 0;
    while (!status_.is_stopping()) {
      try {
        if (!lease_.held()) {
          if (!acquire()) {
            status_.set_state(ProjectionState::kStandby);
            lease_.pause(runner_.acquire_interval);
          }
          continue;
        }
        step();
        unavailable_in_a_row = 0;
      } catch (const detail::ProjectionFailed& failed) {
        fail(failed.error);
        break;
      } catch (const OwnershipLostError& e) {
        logger()->warn("annals: projection {}: ownership lost ({}); standing by", name_, e.what());
        drop_lease();
      } catch (const UnavailableError& e) {
        back_off(e, unavailable_in_a_row++);
      } catch (...) {
        fail("projection stopped: " + detail::what_of(std::current_exception()));
        break;
      }
    }
    finish();
  }

  // Takes the lease if nobody else holds it. The checkpoint is loaded by the next step().
  bool acquire() {
    if (!lease_.try_acquire()) return false;
    reload_ = true;
    rebuild_.forget();
    next_request_check_ = Clock::now();
    reporter_.count_from_record();
    lease_.publish();
    logger()->info("annals: projection {}: acquired by {} (fencing token {})", name_,
                   lease_.lease().owner, lease_.lease().fencing_token);
    return true;
  }

  // One turn of the loop: read a page (or take the one read ahead), apply and checkpoint it,
  // follow a rebuild, report; after a short page, wait for new events.
  void step() {
    lease_.keep();
    if (reload_) reload();
    if (Clock::now() >= next_request_check_ || status_.take_poke()) handle_requests();

    const detail::Page page = pages_.next(*signal_, checkpoint_.position());
    const bool full = page.events.size() >= options_.batch_size;
    // Catching up: read the next page on another thread while this one is applied. It is
    // used only if this page ends up checkpointed at its last event.
    if (full && !status_.is_stopping()) pages_.prefetch(*signal_, page.events.back().position);
    status_.set_head(page.head, full ? seconds_since(page.events.front().recorded_at) : 0.0);

    if (apply(page, full) && !full && page.head > checkpoint_.position()) {
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
  void reload() {
    pages_.discard();
    checkpoint_.reload();
    reload_ = false;
    status_.set_state(ProjectionState::kCatchingUp);
    reporter_.report(true);
  }

  // Applies `page` and checkpoints it. Returns false when it stopped early because the runner
  // is stopping.
  bool apply(const detail::Page& page, bool full) {
    if (page.events.empty()) return true;
    // A short page reaches the head: the projection is live once it is applied, which the
    // state says before the commit wakes any wait_for().
    status_.set_state(rebuild_.active() ? ProjectionState::kRebuilding
                      : full            ? ProjectionState::kCatchingUp
                                        : ProjectionState::kLive);
    const Position last = page.events.back().position;
    return applier_.apply_page(page.events, full ? last : std::max(last, page.head));
  }

  // Waits for events after `token`, bounded by poll_interval, the next renewal, the next look
  // at requests and the next idle checkpoint write.
  void wait_for_change(std::uint64_t token) {
    auto timeout =
        std::min<Clock::duration>(runner_.poll_interval, lease_.renew_at() - Clock::now());
    timeout = std::min(timeout, next_request_check_ - Clock::now());
    if (const auto due = checkpoint_.idle_commit_due()) {
      timeout = std::min(timeout, *due - Clock::now());
    }
    if (timeout > Clock::duration::zero()) {
      signal_->wait(token, std::chrono::ceil<milliseconds>(timeout));
    }
  }

  // Rebuild requests and dead-letter retries, every request_interval or when poked.
  void handle_requests() {
    next_request_check_ = Clock::now() + runner_.request_interval;
    rebuild_.check_request();
    applier_.retry_dead_letters();
  }

  void back_off(const UnavailableError& error, int failures) {
    const auto wait = backoff_.after(failures);
    logger()->warn("annals: projection {}: store unavailable ({}); retrying in {} ms", name_,
                   error.what(), wait.count());
    reload_ = true;
    try {
      lease_.pause(wait);
    } catch (const std::exception&) {
      drop_lease();  // the renewal during the pause failed too; re-acquire afterwards
    }
  }

  void drop_lease() {
    pages_.discard();
    lease_.drop();
    rebuild_.forget();
    checkpoint_.forget_idle();
    status_.stand_by();
  }

  // The projection failed for good (OnFailure::kStop, or a store error that no retry fixes):
  // report it, give the lease up so that a fixed runner can take over, and end.
  void fail(const std::string& error) {
    logger()->error("annals: projection {}: failed: {}", name_, error);
    if (lease_.held()) {
      try {
        reporter_.report_failed(error);
        lease_.release();
      } catch (const std::exception& e) {
        logger()->warn("annals: projection {}: could not report the failure: {}", name_, e.what());
      }
      lease_.drop();
    }
    // Visible only now, so that whoever wait_for() wakes sees the lease released.
    status_.fail(error);
  }

  // The end of the thread: checkpoint what an idle projection processed, report "stopped",
  // release the lease.
  void finish() {
    pages_.discard();
    status_.stop();
    if (lease_.held()) {
      try {
        checkpoint_.commit_idle(true);
        reporter_.report(true);
        lease_.release();
      } catch (const std::exception& e) {
        logger()->warn("annals: projection {}: could not release its lease cleanly: {}", name_,
                       e.what());
      }
      lease_.drop();
    }
    status_.finish();
    logger()->info("annals: projection {}: stopped at {}", name_,
                   checkpoint_.position().to_string());
  }

  static double seconds_since(std::chrono::system_clock::time_point when) {
    const std::chrono::duration<double> age = std::chrono::system_clock::now() - when;
    return std::max(0.0, age.count());
  }

  const RunnerOptions& runner_;
  const std::shared_ptr<Projection> projection_;
  const ProjectionOptions options_;
  const std::string name_;
  detail::WorkerStatus status_;
  detail::LeaseKeeper lease_;
  detail::StatusReporter reporter_;
  detail::CheckpointKeeper checkpoint_;
  detail::Backoff backoff_;
  detail::PagePrefetcher pages_;
  detail::BatchApplier applier_;
  detail::RebuildFollower rebuild_;
  std::mutex signal_mutex_;               // guards signal_ against interrupt() before start()
  std::unique_ptr<ChangeSignal> signal_;  // set before the thread starts
  std::thread thread_;

  // Worker thread only.
  bool reload_ = true;
  Clock::time_point next_request_check_;
};

}  // namespace

class ProjectionRunner::Impl {
 public:
  Impl(EventStore& events, ProjectionStore& store, RunnerOptions options)
      : events_(events), store_(store), options_(std::move(options)) {
    validate(options_);
    if (options_.owner.empty()) options_.owner = default_owner();
  }

  ~Impl() { stop(); }

  void add(std::shared_ptr<Projection> projection, ProjectionOptions options) {
    if (!projection) throw InvalidArgumentError("cannot add a null projection");
    const auto name = projection->name();
    validate_projection_name(name);
    validate(name, options);
    std::lock_guard lock(mutex_);
    if (started_ || stopped_) {
      throw InvalidArgumentError("cannot add projection '" + name +
                                 "': the runner has already started");
    }
    if (find(name) != nullptr) {
      throw InvalidArgumentError("projection '" + name + "' was already added to this runner");
    }
    store_.prepare(*projection);
    workers_.push_back(
        std::make_unique<Worker>(events_, store_, options_, std::move(projection), options));
  }

  void start() {
    std::lock_guard lock(mutex_);
    if (started_ || stopped_) return;
    std::vector<std::unique_ptr<ChangeSignal>> signals;
    signals.reserve(workers_.size());
    for (std::size_t i = 0; i < workers_.size(); ++i) signals.push_back(events_.watch());
    started_ = true;
    for (std::size_t i = 0; i < workers_.size(); ++i) workers_[i]->start(std::move(signals[i]));
    logger()->info("annals: projection runner {} started {} projection(s)", options_.owner,
                   workers_.size());
  }

  void stop() {
    // A second caller waits until the first has joined every thread. status() and wait_for()
    // stay answerable meanwhile: the list cannot change once stopped_ is set.
    std::lock_guard joining(stop_mutex_);
    bool was_started = false;
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
      was_started = started_;
      for (auto& worker : workers_) worker->request_stop();
    }
    for (auto& worker : workers_) worker->join();
    if (was_started) {
      logger()->info("annals: projection runner {} stopped", options_.owner);
    }
  }

  const std::string& owner() const noexcept { return options_.owner; }

  std::vector<ProjectionStatus> status() const {
    std::vector<ProjectionStatus> out;
    std::lock_guard lock(mutex_);
    out.reserve(workers_.size());
    for (const auto& worker : workers_) out.push_back(worker->status());
    return out;
  }

  Worker& worker(const std::string& name) const {
    std::lock_guard lock(mutex_);
    if (Worker* found = find(name)) return *found;
    throw NotFoundError("projection '" + name + "' is not run by this runner");
  }

  ProjectionStore& store() { return store_; }

 private:
  Worker* find(const std::string& name) const {
    for (const auto& worker : workers_) {
      if (worker->name() == name) return worker.get();
    }
    return nullptr;
  }

  EventStore& events_;
  ProjectionStore& store_;
  RunnerOptions options_;
  std::mutex stop_mutex_;     // held by stop() while it joins
  mutable std::mutex mutex_;  // guards the flags and the list (which add() alone changes)
  bool started_ = false;
  bool stopped_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
};

ProjectionRunner::ProjectionRunner(EventStore& events, ProjectionStore& store,
                                   RunnerOptions options)
    : impl_(std::make_unique<Impl>(events, store, std::move(options))) {}

ProjectionRunner::~ProjectionRunner() = default;

void ProjectionRunner::add(std::shared_ptr<Projection> projection, ProjectionOptions options) {
  impl_->add(std::move(projection), options);
}

void ProjectionRunner::start() { impl_->start(); }

void ProjectionRunner::stop() { impl_->stop(); }

void ProjectionRunner::run_until_signal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigset_t previous;
  if (const int rc = pthread_sigmask(SIG_BLOCK, &signals, &previous); rc != 0) {
    throw InternalError("pthread_sigmask failed with error " + std::to_string(rc));
  }
  try {
    impl_->start();  // the threads inherit the blocked mask
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    throw;
  }
  int received = 0;
  while (sigwait(&signals, &received) != 0) {
  }
  logger()->info("annals: projection runner {} received signal {}; stopping", impl_->owner(),
                 received);
  impl_->stop();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

const std::string& ProjectionRunner::owner() const noexcept { return impl_->owner(); }

std::vector<ProjectionStatus> ProjectionRunner::status() const { return impl_->status(); }

ProjectionStatus ProjectionRunner::status(const std::string& name) const {
  return impl_->worker(name).status();
}

bool ProjectionRunner::wait_for(const std::string& name, Position position,
                                std::chrono::milliseconds timeout) {
  return impl_->worker(name).wait_for(position, timeout);
}

RebuildRequest ProjectionRunner::rebuild(const std::string& name) {
  auto& worker = impl_->worker(name);
  auto request = impl_->store().request_rebuild(name);
  worker.poke();
  return request;
}

}  // namespace annals::projections
