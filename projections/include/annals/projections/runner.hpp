// ProjectionRunner runs many projections in one process. Each projection catches up from its
// checkpoint and then follows live events (woken by the store's change signal, with a slow
// poll as fallback), in batches of bounded size whatever the backlog. Each batch is applied
// and checkpointed in one unit of work of the ProjectionStore.
//
//   annals::projections::ProjectionRunner runner(store, projection_store);
//   runner.add(std::make_shared<Balances>());
//   runner.run_until_signal();  // SIGINT / SIGTERM: finish the batch, release leases
//
// Ownership: before running a projection the runner takes its lease; while another process
// holds it, the runner stands by and takes over once the lease lapses, or, on a store that
// watches sessions (PostgreSQL by default), once the owner's database session ends. The lease
// is renewed by a thread of its own, also while a long batch runs. A refused renewal, or a
// refused checkpoint, stops work on the projection (fencing).
//
// Outages: while the event store or the projection store is unavailable (UnavailableError),
// a projection reports "reconnecting", logs a warning once, retries with the same capped
// exponential backoff and jitter (ProjectionOptions::initial_backoff, max_backoff), logs the
// outage's length once it is over and resumes from its stored checkpoint.
//
// Failures: an event whose apply throws is retried with exponential backoff; after
// `max_attempts` the projection either stops (state "failed") or parks the event as a dead
// letter and continues, per ProjectionOptions::on_failure. Dead-letter retries and rebuilds
// asked for through the store (e.g. by `annals dead-letters retry` or `annals projections
// rebuild`) are carried out by the owner.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/metrics.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"

namespace annals::projections {

/// What a projection does with an event that still fails after every retry.
enum class OnFailure {
  kStop,        ///< stop the projection (state "failed"); fix and restart
  kDeadLetter,  ///< park the event as a dead letter and continue with the next one
};

/// Per-projection settings.
struct ProjectionOptions {
  /// Most events per batch (one unit of work). Default 500.
  std::size_t batch_size = 500;
  /// Attempts at a failing event, the first included. Default 5.
  int max_attempts = 5;
  /// Wait before the second attempt at a failing event, or at reaching a store that is
  /// unavailable; doubles each time (with jitter: between half and all of it) up to
  /// max_backoff. Default 100 ms.
  std::chrono::milliseconds initial_backoff{100};
  /// Longest wait between attempts. Default 5 s.
  std::chrono::milliseconds max_backoff{5000};
  /// Default: stop the projection.
  OnFailure on_failure = OnFailure::kStop;
  /// Run the projection as this many partitions by a hash of the stream id
  /// (annals/projections/partitions.hpp): 1 to kMaxPartitions. It decides the count only when
  /// the projection is first partitioned (it never ran unpartitioned); afterwards the count
  /// stored in the ProjectionStore wins (repartition() changes it), whatever is given here.
  /// Each partition is then a projection of its own in status() (named
  /// "<name>.part-<k>-of-<N>"). Not for DocumentProjections. Default 1: unpartitioned.
  int partitions = 1;
};

/// Settings of a runner.
struct RunnerOptions {
  /// This runner's name in lease rows. Default: "<hostname>:<pid>:<random>".
  std::string owner;
  /// How long a lease lasts without renewal; renewed every third of it, during batches too.
  /// A dead owner's projections are taken over at most this long (plus acquire_interval)
  /// after it died; on a store that watches sessions, within acquire_interval of the end of
  /// its database session (docs/operations.md, "Takeover"). Default 10 s.
  std::chrono::milliseconds lease_ttl{10'000};
  /// How often a standby runner tries to acquire a lease held by another: one cheap UPDATE
  /// that usually matches no row. Bounds how long a takeover waits once the lease is free.
  /// Default 500 ms.
  std::chrono::milliseconds acquire_interval{500};
  /// Longest wait for live events without a wake-up (the fallback poll). Default 1 s.
  std::chrono::milliseconds poll_interval{1000};
  /// How often the owner looks for rebuild requests and dead-letter retries. Default 1 s.
  std::chrono::milliseconds request_interval{1000};
  /// Where the projections report events applied, errors, dead letters, lag, batch latency
  /// and ownership changes (label projection=<name>; see annals/eventstore/metrics.hpp and
  /// docs/observability.md). Batch latencies carry the trace id of the batch's last event that
  /// has a traceparent as an exemplar. Default null: no metrics, no cost.
  std::shared_ptr<MetricsSink> metrics;
};

enum class ProjectionState {
  kStarting,    ///< added, not yet owned
  kStandby,     ///< another runner owns it
  kCatchingUp,  ///< reading a backlog
  kLive,        ///< caught up, waiting for new events
  kRebuilding,  ///< replaying after a reset
  /// a store is unavailable (UnavailableError): backing off with jitter, then resuming from
  /// the stored checkpoint
  kReconnecting,
  kStopped,  ///< the runner stopped
  kFailed,   ///< an event kept failing with OnFailure::kStop; see last_error
};

/// Stable lower-case name: "starting", "standby", "catching-up", "live", "rebuilding",
/// "reconnecting", "stopped", "failed".
[[nodiscard]] const char* to_string(ProjectionState state) noexcept;

/// A snapshot of one projection's progress, as this runner sees it.
struct ProjectionStatus {
  std::string name;
  ProjectionState state = ProjectionState::kStarting;
  /// Last committed checkpoint.
  Position position;
  /// Head of the log when last read.
  Position head;
  /// Events between what was processed and head (approximate: the difference of global
  /// sequence numbers; 0 when live).
  std::int64_t lag_events = 0;
  /// How far behind in time: age of the oldest unapplied event when last read; 0 when live.
  double lag_seconds = 0;
  /// Recent throughput (events applied per second, smoothed).
  double events_per_second = 0;
  /// Events applied by this runner.
  std::uint64_t events_applied = 0;
  /// Failed attempts at applying events, and events parked as dead letters.
  std::uint64_t errors = 0;
  std::uint64_t dead_letters = 0;
  std::optional<std::string> last_error;
  /// The lease held, if this runner owns the projection.
  std::optional<Lease> lease;
};

/// Runs projections: see the header comment.
///
/// Thread safety: add() before start(); every other method from any thread. The runner
/// starts one thread per projection. The event store and projection store must outlive it.
class ProjectionRunner {
 public:
  ProjectionRunner(EventStore& events, ProjectionStore& store, RunnerOptions options = {});
  ProjectionRunner(const ProjectionRunner&) = delete;
  ProjectionRunner& operator=(const ProjectionRunner&) = delete;
  /// Stops (see stop()).
  ~ProjectionRunner();

  /// Adds a projection and prepares it in the store (ProjectionStore::prepare). A partitioned
  /// projection (ProjectionOptions::partitions, or partition rows already in the store) gets a
  /// worker per partition, of which this runner runs its share.
  /// Throws: InvalidArgumentError for a bad or duplicate name, or after start(); for
  /// `partitions` above 1 on a projection that already ran unpartitioned (use repartition()),
  /// or on a DocumentProjection.
  void add(std::shared_ptr<Projection> projection, ProjectionOptions options = {});

  /// Starts one thread per projection. Idempotent.
  void start();
  /// Stops gracefully: each projection finishes or rolls back its current batch, reports
  /// "stopped" and releases its lease. Joins the threads. Idempotent.
  void stop();
  /// Blocks SIGINT and SIGTERM in the calling thread (so call it before starting other
  /// threads, or block them there too), starts, waits for one of them, then stops.
  void run_until_signal();

  /// The runner's name in lease rows.
  [[nodiscard]] const std::string& owner() const noexcept;

  /// Status of every projection, in the order added; a partitioned one has an entry per
  /// partition (this runner's or not: see ProjectionStatus::lease).
  [[nodiscard]] std::vector<ProjectionStatus> status() const;
  /// Status of one projection; of a partitioned one's partition by its row name
  /// ("<name>.part-<k>-of-<N>"). Throws NotFoundError for an unknown name.
  [[nodiscard]] ProjectionStatus status(const std::string& name) const;

  /// Read-your-writes: blocks until projection `name` has applied every matching event up to
  /// `position` (e.g. an AppendResult's), or `timeout` elapses; true when reached (also when
  /// the events up to `position` are not ones the projection handles). Returns false at once
  /// when the projection failed or the runner is stopped. Knows only this runner's progress:
  /// while another runner owns the projection, use wait_for_checkpoint(). A partition of a
  /// partitioned projection is waited for by its row name, and only while this runner holds it.
  /// Throws NotFoundError for an unknown name.
  bool wait_for(const std::string& name, Position position, std::chrono::milliseconds timeout);

  /// Asks for a rebuild of `name` through the store (whichever runner owns it carries it
  /// out; this one at once when it is the owner) and returns the request; follow it with
  /// ProjectionStore::rebuild_request().
  /// Throws NotFoundError for an unknown name.
  RebuildRequest rebuild(const std::string& name);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace annals::projections
