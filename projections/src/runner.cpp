// ProjectionRunner: one thread per projection (a Worker), each with its own ChangeSignal.
//
// A worker's loop, while it holds the projection's lease (issue #4):
//   h = head_position(); token = signal.observe(); page = read_all(after cp, batch_size);
//   apply the page in one Batch and commit it; when the page came back short, every matching
//   event up to h was in it (h was settled before the read: EventReader::head_position()),
//   so the projection has processed everything up to max(last, h) and may checkpoint there.
//   Short page: wait on the signal, bounded by poll_interval and the next renewal.
// While catching up (full pages), the next page is read on another thread while the current
// one is applied; it is used only when the current page was committed whole, at its last event.
// Checkpoints that only move an idle projection past events it does not handle are written
// at most every kIdleCommitInterval; read-your-writes does not wait for them, because
// wait_for() follows the processed position, which moves at once.
//
// A store may queue a projection's writes and send them later (the PostgreSQL ReadModel sends
// them at commit, in one round trip): their failure (DeferredWriteError, from a later apply or
// from the commit) does not say which event queued them. The runner pipelines its batches
// (Batch::set_pipelined); on a DeferredWriteError the batch is rolled back and the rest of the
// page is applied again from the batch's first event unpipelined (each write sent at once), so
// that the failing event fails on its own and what follows holds for it exactly.
//
// Failure of event k of a page: the batch is rolled back, [0, k) is committed on its own
// (re-applied in a new batch, except for in-process projections, whose effects a rollback
// cannot undo and which therefore keep them), then k is retried alone with backoff; after
// max_attempts the projection stops or parks k as a dead letter in a batch committed at k.
// An event the store could not decode (RecordedEvent::decode_failure) is never applied: it is
// parked in the batch it falls in, with one attempt, whatever the failure policy (issue #11).
// Infrastructure errors (UnavailableError) never count against an event: the worker backs
// off and resumes from the stored checkpoint. A refused checkpoint or renewal
// (OwnershipLostError) drops the work at once; the worker stands by and re-acquires.
#include "annals/projections/runner.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <exception>
#include <future>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/error.hpp"

namespace annals::projections {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// Longest delay of a checkpoint write that only moves an idle projection forward.
constexpr milliseconds kIdleCommitInterval{200};
/// Reports that only update the applied count are sent at most this often.
constexpr milliseconds kReportInterval{1000};
/// Window of the events-per-second estimate.
constexpr milliseconds kRateWindow{1000};

/// Unwinds a worker whose projection failed with OnFailure::kStop.
struct ProjectionFailed {};

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

std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

std::string describe(const RecordedEvent& event) {
  return event.type + " " + event.stream_id.value() + "@" + std::to_string(event.version) + " at " +
         event.position.to_string();
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

/// One projection's thread and everything it shares with other threads.
///
/// Members marked "worker thread" are touched only by the thread (after start()); the rest
/// is guarded by mutex_.
class Worker {
 public:
  Worker(EventStore& events, ProjectionStore& store, const RunnerOptions& runner,
         std::shared_ptr<Projection> projection, ProjectionOptions options)
      : events_(events),
        store_(store),
        runner_(runner),
        projection_(std::move(projection)),
        options_(options),
        name_(projection_->name()),
        filter_(projection_->filter()),
        in_process_(dynamic_cast<InProcessProjection*>(projection_.get()) != nullptr),
        rng_(std::random_device{}()) {
    status_.name = name_;
  }

  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { join(); }

  const std::string& name() const { return name_; }

  void start(std::unique_ptr<ChangeSignal> signal) {
    {
      std::lock_guard lock(mutex_);
      signal_ = std::move(signal);  // kept until the worker is destroyed
    }
    thread_ = std::thread([this] { run(); });
  }

  /// Asks the thread to finish its batch, report, release and end; wakes every wait.
  void request_stop() {
    ChangeSignal* signal = nullptr;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      signal = signal_.get();
    }
    cv_.notify_all();
    if (signal) signal->interrupt();
  }

  void join() {
    if (thread_.joinable()) thread_.join();
  }

  /// Makes the thread look for rebuild requests and dead-letter retries without waiting for
  /// request_interval.
  void poke() {
    ChangeSignal* signal = nullptr;
    {
      std::lock_guard lock(mutex_);
      check_requests_now_ = true;
      signal = signal_.get();
    }
    cv_.notify_all();
    if (signal) signal->interrupt();
  }

  ProjectionStatus status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }

  bool wait_for(Position position, milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] {
      return processed_ >= position || stopping_ || finished_ ||
             status_.state == ProjectionState::kFailed;
    });
    return processed_ >= position;
  }

 private:
  // ---- the thread ------------------------------------------------------------------------

  void run() {
    detail::logger()->info("annals: projection {}: started by runner {}", name_, runner_.owner);
    int unavailable_in_a_row = 0;
    while (!is_stopping()) {
      try {
        if (!lease_) {
          if (!acquire()) {
            set_state(ProjectionState::kStandby);
            pause(runner_.acquire_interval);
          }
          continue;
        }
        step();
        unavailable_in_a_row = 0;
      } catch (const ProjectionFailed&) {
        break;
      } catch (const OwnershipLostError& e) {
        detail::logger()->warn("annals: projection {}: ownership lost ({}); standing by", name_,
                               e.what());
        drop_lease();
      } catch (const UnavailableError& e) {
        const auto wait = backoff(unavailable_in_a_row++);
        detail::logger()->warn("annals: projection {}: store unavailable ({}); retrying in {} ms",
                               name_, e.what(), wait.count());
        reload_ = true;
        try {
          pause(wait);
        } catch (const std::exception&) {
          drop_lease();  // the renewal during the pause failed too; re-acquire afterwards
        }
      } catch (...) {
        fail("projection stopped: " + what_of(std::current_exception()));
        break;
      }
    }
    finish();
  }

  // Takes the lease if nobody else holds it. The checkpoint is loaded by the next step().
  bool acquire() {
    auto lease = store_.try_acquire(name_, runner_.owner, runner_.lease_ttl);
    if (!lease) return false;
    lease_ = std::move(lease);
    renew_at_ = Clock::now() + renew_period();
    reload_ = true;
    rebuild_.reset();
    next_request_check_ = Clock::now();
    applied_base_ = 0;
    for (const auto& record : store_.list()) {
      if (record.name == name_) applied_base_ = record.events_applied;
    }
    applied_since_acquire_ = 0;
    {
      std::lock_guard lock(mutex_);
      status_.lease = lease_;
    }
    detail::logger()->info("annals: projection {}: acquired by {} (fencing token {})", name_,
                           lease_->owner, lease_->fencing_token);
    return true;
  }

  void step() {
    keep_lease();
    if (reload_) {
      discard_prefetch();
      cp_ = store_.checkpoint(name_);
      idle_target_.reset();
      reload_ = false;
      {
        std::lock_guard lock(mutex_);
        status_.position = cp_;
        processed_ = cp_;
      }
      cv_.notify_all();
      set_state(ProjectionState::kCatchingUp);
      report(true);
    }
    if (Clock::now() >= next_request_check_ || take_poke()) handle_requests();

    Fetched fetched = take_prefetched();
    if (!fetched.token) {
      fetched.head = events_.head_position();
      fetched.token = signal_->observe();
      fetched.page = events_.read_all(read_options(cp_));
    }
    const Position head = fetched.head;
    const auto token = *fetched.token;
    const auto& page = fetched.page;
    const bool full = page.size() >= options_.batch_size;
    // Catching up: read the next page on another thread while this one is applied. It is
    // used only if this page ends up checkpointed at its last event (see take_prefetched()).
    if (full && !is_stopping()) prefetch(page.back().position);
    double lag_seconds = 0;
    if (full) {
      const std::chrono::duration<double> age =
          std::chrono::system_clock::now() - page.front().recorded_at;
      lag_seconds = std::max(0.0, age.count());
    }
    set_head(head, lag_seconds);

    bool complete = true;
    if (!page.empty()) {
      // A short page reaches the head: the projection is live once it is applied, which the
      // state says before the commit wakes any wait_for().
      set_state(rebuild_ ? ProjectionState::kRebuilding
                : full   ? ProjectionState::kCatchingUp
                         : ProjectionState::kLive);
      const Position through = full ? page.back().position : std::max(page.back().position, head);
      complete = apply_page(page, through);
    }
    if (complete && !full && head > cp_) {
      // Nothing matching up to the head is left: processed through it, checkpoint it soon.
      idle_target_ = head;
      {
        std::lock_guard lock(mutex_);
        processed_ = std::max(processed_, head);
      }
      cv_.notify_all();
    }
    commit_idle(rebuild_.has_value());
    follow_rebuild();
    update_rate();
    if (!full) set_state(rebuild_ ? ProjectionState::kRebuilding : ProjectionState::kLive);
    report(false);
    if (full || is_stopping()) return;

    auto timeout = std::min<Clock::duration>(runner_.poll_interval, renew_at_ - Clock::now());
    timeout = std::min(timeout, next_request_check_ - Clock::now());
    if (idle_target_) {
      timeout = std::min(timeout, last_commit_ + kIdleCommitInterval - Clock::now());
    }
    if (timeout > Clock::duration::zero()) {
      signal_->wait(token, std::chrono::ceil<milliseconds>(timeout));
    }
  }

  // What one read of the log gave: the head and the change-signal token, both taken before
  // the page after the checkpoint was read (which is what lets a short page checkpoint at the
  // head and wait on the token). An empty token: nothing was fetched.
  struct Fetched {
    std::optional<std::uint64_t> token;
    Position head;
    std::vector<RecordedEvent> page;
  };

  ReadAllOptions read_options(Position after) const {
    ReadAllOptions read;
    read.after = after;
    read.max_count = options_.batch_size;
    read.filter = filter_;
    return read;
  }

  // Starts reading the page after `after` on another thread. The token is observed here,
  // before the head and the page are read there, as step() does it.
  void prefetch(Position after) {
    discard_prefetch();
    const auto token = signal_->observe();
    prefetch_after_ = after;
    prefetch_ = std::async(std::launch::async, [this, token, after] {
      Fetched fetched;
      fetched.token = token;
      fetched.head = events_.head_position();
      fetched.page = events_.read_all(read_options(after));
      return fetched;
    });
  }

  // The prefetched page if it continues from the current checkpoint (the page before it was
  // committed whole and nothing reloaded, rebuilt or reset since); otherwise nothing, and the
  // prefetch is dropped. A failed read rethrows here, as a read of step() would.
  Fetched take_prefetched() {
    if (!prefetch_.valid()) return {};
    if (prefetch_after_ != cp_) {
      discard_prefetch();
      return {};
    }
    return prefetch_.get();
  }

  void discard_prefetch() noexcept {
    if (!prefetch_.valid()) return;
    try {
      static_cast<void>(prefetch_.get());  // waits for the thread; its result is stale
    } catch (...) {
    }
  }

  // Applies `page` (in log order) and checkpoints it, the last batch at `through`. Returns
  // false when it stopped early because the runner is stopping.
  bool apply_page(const std::vector<RecordedEvent>& page, Position through) {
    const std::size_t n = page.size();
    const auto commit_point = [&](std::size_t end) {
      return end == n ? through : page[end - 1].position;
    };
    std::size_t i = 0;
    // The index of an event that failed its first attempt in this page, with its error.
    std::optional<std::pair<std::size_t, std::string>> failure;
    // Set once queued writes failed without saying whose (DeferredWriteError): from then on,
    // this page's batches are not pipelined, so that a failure belongs to its event.
    bool isolated = false;
    while (i < n) {
      if (is_stopping()) return false;
      keep_lease();
      if (failure && failure->first == i) {
        if (!retry_event(page[i], failure->second, commit_point(i + 1))) return false;
        failure.reset();
        ++i;
        continue;
      }
      const std::size_t end = failure ? failure->first : n;
      auto batch = store_.begin(*lease_, cp_);
      if (failure && in_process_) {
        // [i, end) took effect in the failed batch and a rollback cannot undo an in-process
        // projection's effects: checkpoint them without applying them twice. The undecodable
        // events among them were parked in the rolled-back batch: park them again.
        std::size_t parked = 0;
        for (std::size_t j = i; j < end; ++j) {
          if (page[j].is_undecodable()) park_undecodable(page[j], *batch, parked);
        }
        batch->commit(commit_point(end));
        committed(commit_point(end), end - i - parked);
        count_parked(parked);
        i = end;
        continue;
      }
      std::size_t k = i;
      std::string error;
      std::size_t parked = 0;
      batch->set_pipelined(!isolated);
      try {
        for (; k < end; ++k) {
          if (page[k].is_undecodable()) {
            park_undecodable(page[k], *batch, parked);
            continue;
          }
          if (auto failed = apply(page[k], *batch)) {
            error = std::move(*failed);
            break;
          }
        }
        if (k == end) {
          batch->commit(commit_point(end));
          committed(commit_point(end), end - i - parked);
          count_parked(parked);
          i = end;
          continue;
        }
      } catch (const DeferredWriteError& e) {
        // Some event of [i, k] queued a write that failed. Nobody is blamed yet: apply again
        // from i unpipelined, and the failing event fails on its own.
        if (isolated) throw;  // nothing was queued: not an event's write
        batch.reset();
        isolated = true;
        detail::logger()->info(
            "annals: projection {}: a queued write failed ({}); applying the events again "
            "unpipelined to find the one it belongs to",
            name_, e.what());
        continue;
      }
      batch.reset();  // rolls back
      count_error(error);
      detail::logger()->warn("annals: projection {}: event {} failed (attempt 1 of {}): {}", name_,
                             describe(page[k]), options_.max_attempts, error);
      failure.emplace(k, std::move(error));
    }
    return true;
  }

  // Parks an event the store could not decode (RecordedEvent::decode_failure) in `batch`, at
  // once and whatever the failure policy: no attempt can succeed on bytes that do not change,
  // and stopping would stop the projection at that row for good (issue #11). The projection
  // never sees it. Counted (`parked`) once the batch commits.
  void park_undecodable(const RecordedEvent& event, Batch& batch, std::size_t& parked) {
    const std::string error = "undecodable event: " + event.decode_failure->reason;
    batch.park(event, error, 1);
    ++parked;
    detail::logger()->warn("annals: projection {}: parked event {} as a dead letter: {}", name_,
                           describe(event), error);
  }

  void count_parked(std::size_t parked) {
    if (parked == 0) return;
    {
      std::lock_guard lock(mutex_);
      status_.dead_letters += parked;
      status_.last_error = "parked undecodable events (" + std::to_string(parked) + ")";
    }
    report(true);
  }

  // Applies `event` in `batch`. Returns the error when the projection threw. Infrastructure
  // errors propagate (they are not the event's fault), and so does a DeferredWriteError of a
  // pipelined batch: a write queued by an earlier event may have failed.
  std::optional<std::string> apply(const RecordedEvent& event, Batch& batch) {
    try {
      projection_->apply(event, batch);
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

  // Attempts 2..max_attempts at `event` alone, each in its own batch committed at `to`; then
  // the failure policy. Returns false when the runner is stopping.
  bool retry_event(const RecordedEvent& event, std::string error, Position to) {
    for (int attempt = 2; attempt <= options_.max_attempts; ++attempt) {
      if (!pause(backoff(attempt - 2))) return false;
      keep_lease();
      auto batch = store_.begin(*lease_, cp_);
      if (auto failed = apply(event, *batch)) {
        batch.reset();
        error = std::move(*failed);
        count_error(error);
        detail::logger()->warn("annals: projection {}: event {} failed (attempt {} of {}): {}",
                               name_, describe(event), attempt, options_.max_attempts, error);
        continue;
      }
      batch->commit(to);
      committed(to, 1);
      detail::logger()->info("annals: projection {}: event {} applied on attempt {}", name_,
                             describe(event), attempt);
      return true;
    }
    if (options_.on_failure == OnFailure::kStop) {
      fail("event " + describe(event) + " failed " + std::to_string(options_.max_attempts) +
           " times: " + error);
      throw ProjectionFailed{};
    }
    auto batch = store_.begin(*lease_, cp_);
    batch->park(event, error, options_.max_attempts);
    batch->commit(to);
    committed(to, 0);
    {
      std::lock_guard lock(mutex_);
      ++status_.dead_letters;
      status_.last_error = "parked " + describe(event) + ": " + error;
    }
    detail::logger()->warn(
        "annals: projection {}: parked event {} as a dead letter after {} "
        "attempts: {}",
        name_, describe(event), options_.max_attempts, error);
    report(true);
    return true;
  }

  // ---- requests: rebuilds and dead-letter retries ------------------------------------------

  void handle_requests() {
    next_request_check_ = Clock::now() + runner_.request_interval;
    if (auto request = store_.open_rebuild(name_)) {
      if (request->state == RebuildState::kRequested) {
        start_rebuild(*request);
      } else if (!rebuild_ || rebuild_->id != request->id) {
        // Running: a former owner reset the projection (it marks the request running only
        // after the reset committed) and this owner carries the replay on.
        detail::logger()->info("annals: projection {}: resuming rebuild {}", name_, request->id);
        rebuild_ = request;
      }
    }
    retry_dead_letters();
  }

  void start_rebuild(RebuildRequest request) {
    const Position target = events_.head_position();
    detail::logger()->info("annals: projection {}: rebuild {} started, replaying up to {}", name_,
                           request.id, target.to_string());
    auto batch = store_.begin(*lease_, cp_);
    try {
      projection_->reset(*batch);
    } catch (const UnavailableError&) {
      throw;
    } catch (const OwnershipLostError&) {
      throw;
    } catch (...) {
      batch.reset();
      request.state = RebuildState::kFailed;
      request.message = "reset failed: " + what_of(std::current_exception());
      detail::logger()->error("annals: projection {}: rebuild {} failed: {}", name_, request.id,
                              *request.message);
      store_.update_rebuild(request);
      return;
    }
    batch->commit(Position::start());
    cp_ = Position::start();
    last_commit_ = Clock::now();
    idle_target_.reset();
    applied_base_ = 0;
    applied_since_acquire_ = 0;
    {
      std::lock_guard lock(mutex_);
      status_.position = cp_;
      processed_ = cp_;  // the read model is empty again: earlier positions are not in it
    }
    // Marked running only now: a request found running is known to have been reset.
    request.state = RebuildState::kRunning;
    request.target = target;
    request.progress = Position::start();
    store_.update_rebuild(request);
    rebuild_ = request;
    set_state(ProjectionState::kRebuilding);
    report(true);
  }

  // Reports the progress of a running rebuild, and its end once the checkpoint passed the
  // target.
  void follow_rebuild() {
    if (!rebuild_) return;
    const Position target = rebuild_->target.value_or(Position::start());
    if (rebuild_->progress == cp_ && cp_ < target) return;
    rebuild_->progress = cp_;
    if (cp_ >= target) {
      rebuild_->state = RebuildState::kDone;
      rebuild_->message = "replayed up to " + target.to_string();
      store_.update_rebuild(*rebuild_);
      detail::logger()->info("annals: projection {}: rebuild {} done", name_, rebuild_->id);
      rebuild_.reset();
      set_state(ProjectionState::kLive);
      report(true);
      return;
    }
    store_.update_rebuild(*rebuild_);
  }

  void retry_dead_letters() {
    DeadLetterQuery query;
    query.projection = name_;
    query.state = DeadLetterState::kRetryRequested;
    query.max_count = options_.batch_size;
    for (const auto& letter : store_.list_dead_letters(query)) {
      if (is_stopping()) return;
      keep_lease();
      if (letter.event.is_undecodable()) {
        // Still the same stored bytes: the retry fails as the first attempt did.
        const std::string error = "undecodable event: " + letter.event.decode_failure->reason;
        count_error(error);
        store_.retry_failed(letter.id, error);
        detail::logger()->warn("annals: projection {}: retry of dead letter {} ({}) failed: {}",
                               name_, letter.id, describe(letter.event), error);
        continue;
      }
      auto batch = store_.begin(*lease_, cp_);
      if (auto failed = apply(letter.event, *batch)) {
        batch.reset();
        count_error(*failed);
        store_.retry_failed(letter.id, *failed);
        detail::logger()->warn("annals: projection {}: retry of dead letter {} ({}) failed: {}",
                               name_, letter.id, describe(letter.event), *failed);
        continue;
      }
      batch->resolve_dead_letter(letter.id);
      batch->commit(cp_);
      committed(cp_, 1);
      detail::logger()->info("annals: projection {}: dead letter {} ({}) applied", name_, letter.id,
                             describe(letter.event));
    }
  }

  // ---- lease, checkpoint and bookkeeping ---------------------------------------------------

  milliseconds renew_period() const { return std::max(runner_.lease_ttl / 3, milliseconds(1)); }

  // Renews the lease when due. Throws OwnershipLostError when it was lost.
  void keep_lease() {
    if (!lease_ || Clock::now() < renew_at_) return;
    auto renewed = store_.renew(*lease_, runner_.lease_ttl);
    if (!renewed) {
      throw OwnershipLostError("the lease of projection '" + name_ + "' could not be renewed");
    }
    lease_ = std::move(renewed);
    renew_at_ = Clock::now() + renew_period();
    std::lock_guard lock(mutex_);
    status_.lease = lease_;
  }

  void drop_lease() {
    discard_prefetch();
    lease_.reset();
    rebuild_.reset();
    idle_target_.reset();
    {
      std::lock_guard lock(mutex_);
      status_.lease.reset();
      if (status_.state != ProjectionState::kFailed) status_.state = ProjectionState::kStandby;
    }
    cv_.notify_all();
  }

  // Writes the checkpoint of an idle projection: at once when `now`, otherwise at most every
  // kIdleCommitInterval.
  void commit_idle(bool now) {
    if (!idle_target_ || *idle_target_ <= cp_) {
      idle_target_.reset();
      return;
    }
    if (!now && Clock::now() < last_commit_ + kIdleCommitInterval) return;
    const Position to = *idle_target_;
    auto batch = store_.begin(*lease_, cp_);
    batch->commit(to);
    committed(to, 0);
  }

  // Bookkeeping after a successful commit at `to` that applied `applied` events.
  void committed(Position to, std::size_t applied) {
    cp_ = to;
    last_commit_ = Clock::now();
    if (idle_target_ && *idle_target_ <= cp_) idle_target_.reset();
    const auto count = static_cast<std::int64_t>(applied);
    applied_since_acquire_ += count;
    window_events_ += count;
    {
      std::lock_guard lock(mutex_);
      status_.position = to;
      processed_ = std::max(processed_, to);
      status_.events_applied += applied;
      status_.lag_events =
          std::max<std::int64_t>(0, status_.head.sequence() - processed_.sequence());
    }
    cv_.notify_all();
  }

  void count_error(const std::string& error) {
    std::lock_guard lock(mutex_);
    ++status_.errors;
    status_.last_error = error;
  }

  // The projection failed for good (OnFailure::kStop, or a store error that no retry fixes):
  // report it, give the lease up so that a fixed runner can take over, and end.
  void fail(const std::string& error) {
    detail::logger()->error("annals: projection {}: failed: {}", name_, error);
    if (lease_) {
      try {
        store_.report(*lease_,
                      ProjectionReport{.state = to_string(ProjectionState::kFailed),
                                       .last_error = error,
                                       .events_applied = applied_base_ + applied_since_acquire_});
        store_.release(*lease_);
      } catch (const std::exception& e) {
        detail::logger()->warn("annals: projection {}: could not report the failure: {}", name_,
                               e.what());
      }
      lease_.reset();
    }
    // Visible only now, so that whoever wait_for() wakes sees the lease released.
    {
      std::lock_guard lock(mutex_);
      status_.state = ProjectionState::kFailed;
      status_.last_error = error;
      status_.lease.reset();
    }
    cv_.notify_all();
  }

  // The end of the thread: checkpoint what an idle projection processed, report "stopped",
  // release the lease.
  void finish() {
    discard_prefetch();
    {
      std::lock_guard lock(mutex_);
      if (status_.state != ProjectionState::kFailed) status_.state = ProjectionState::kStopped;
    }
    if (lease_) {
      try {
        commit_idle(true);
        report(true);
        store_.release(*lease_);
      } catch (const std::exception& e) {
        detail::logger()->warn("annals: projection {}: could not release its lease cleanly: {}",
                               name_, e.what());
      }
      lease_.reset();
    }
    {
      std::lock_guard lock(mutex_);
      status_.lease.reset();
      finished_ = true;
    }
    cv_.notify_all();
    detail::logger()->info("annals: projection {}: stopped at {}", name_, cp_.to_string());
  }

  // Reports the state to the store when it changed (or `force`), and the applied count at
  // most every kReportInterval.
  void report(bool force) {
    if (!lease_) return;
    ProjectionReport now;
    {
      std::lock_guard lock(mutex_);
      now.state = to_string(status_.state);
      now.last_error = status_.last_error;
    }
    now.events_applied = applied_base_ + applied_since_acquire_;
    const bool changed = !last_report_ || now.state != last_report_->state ||
                         now.last_error != last_report_->last_error;
    const bool counted = last_report_ && now.events_applied != last_report_->events_applied &&
                         Clock::now() >= last_report_at_ + kReportInterval;
    if (!force && !changed && !counted) return;
    store_.report(*lease_, now);
    last_report_ = now;
    last_report_at_ = Clock::now();
  }

  void update_rate() {
    const auto now = Clock::now();
    const std::chrono::duration<double> elapsed = now - window_start_;
    if (elapsed < kRateWindow) return;
    const double rate = static_cast<double>(window_events_) / elapsed.count();
    window_start_ = now;
    window_events_ = 0;
    std::lock_guard lock(mutex_);
    // Exponential smoothing over windows of about a second.
    status_.events_per_second = 0.5 * status_.events_per_second + 0.5 * rate;
  }

  // Exponential backoff with "equal jitter": between half and all of
  // initial_backoff * 2^failures, capped at max_backoff.
  milliseconds backoff(int failures) {
    auto wait = options_.initial_backoff;
    for (int i = 0; i < failures && wait < options_.max_backoff; ++i) wait *= 2;
    wait = std::min(wait, options_.max_backoff);
    if (wait.count() <= 1) return wait;
    std::uniform_int_distribution<milliseconds::rep> jitter(wait.count() / 2, wait.count());
    return milliseconds(jitter(rng_));
  }

  // Waits `duration` unless the runner stops (false), renewing the lease when due.
  bool pause(milliseconds duration) {
    const auto deadline = Clock::now() + duration;
    for (;;) {
      const auto wake = lease_ ? std::min(deadline, renew_at_) : deadline;
      {
        std::unique_lock lock(mutex_);
        if (cv_.wait_until(lock, wake, [&] { return stopping_; })) return false;
      }
      if (Clock::now() >= deadline) return true;
      keep_lease();
    }
  }

  void set_state(ProjectionState state) {
    {
      std::lock_guard lock(mutex_);
      if (status_.state == state || status_.state == ProjectionState::kFailed) return;
      status_.state = state;
    }
    cv_.notify_all();
  }

  void set_head(Position head, double lag_seconds) {
    std::lock_guard lock(mutex_);
    status_.head = head;
    status_.lag_events = std::max<std::int64_t>(0, head.sequence() - processed_.sequence());
    status_.lag_seconds = lag_seconds;
  }

  bool is_stopping() const {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  bool take_poke() {
    std::lock_guard lock(mutex_);
    return std::exchange(check_requests_now_, false);
  }

  EventStore& events_;
  ProjectionStore& store_;
  const RunnerOptions& runner_;
  const std::shared_ptr<Projection> projection_;
  const ProjectionOptions options_;
  const std::string name_;
  const EventFilter filter_;
  const bool in_process_;
  std::unique_ptr<ChangeSignal> signal_;  // set under mutex_ before the thread starts
  std::thread thread_;

  // Worker thread only.
  std::optional<Lease> lease_;
  Clock::time_point renew_at_;
  Clock::time_point next_request_check_;
  Clock::time_point last_commit_;
  Clock::time_point last_report_at_;
  Clock::time_point window_start_ = Clock::now();
  std::int64_t window_events_ = 0;
  bool reload_ = true;
  Position cp_;                          // the stored checkpoint, as last read or written
  std::optional<Position> idle_target_;  // processed through here, checkpoint not yet moved
  std::optional<RebuildRequest> rebuild_;
  std::optional<ProjectionReport> last_report_;
  std::int64_t applied_base_ = 0;  // events_applied of the record when acquired
  std::int64_t applied_since_acquire_ = 0;
  std::mt19937 rng_;
  std::future<Fetched> prefetch_;  // the next page, being read (see prefetch())
  Position prefetch_after_;        // where prefetch_ reads from

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;            // guarded by mutex_
  bool check_requests_now_ = false;  // guarded by mutex_
  bool finished_ = false;            // guarded by mutex_
  Position processed_;               // guarded by mutex_: every matching event up to it applied
  ProjectionStatus status_;          // guarded by mutex_
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
    detail::logger()->info("annals: projection runner {} started {} projection(s)", options_.owner,
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
      detail::logger()->info("annals: projection runner {} stopped", options_.owner);
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
  detail::logger()->info("annals: projection runner {} received signal {}; stopping",
                         impl_->owner(), received);
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
