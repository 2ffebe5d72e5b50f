// Where projections keep their progress and coordination state: checkpoints, ownership
// leases with fencing tokens, dead letters and rebuild requests (ARCHITECTURE decision 7 and
// the scale-out path).
//
// Two implementations: make_in_memory_projection_store() (in_memory_projection_store.hpp) for
// tests and services run without a database, and PostgresProjectionStore
// (annals/projections/postgres/postgres_projection_store.hpp), which several runner processes
// on several machines can share. The `annals` CLI reads and writes the PostgreSQL one.
//
// Ownership: at most one runner owns a projection at a time, through a lease (owner, expiry,
// fencing token). Every takeover increases the token, and a checkpoint write carrying an older
// token is refused, so a paused or partitioned former owner can never overwrite newer progress.
// Leases are plain rows, so they work behind transaction poolers. The PostgreSQL store can also
// watch the owner's database session and free a dead owner's lease before it expires (its
// session_liveness option); the in-memory store has no sessions and relies on expiry alone.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection.hpp"

namespace annals::projections {

/// The right to run one projection, until `expires_at` unless renewed. What try_acquire() and
/// renew() return is exactly what list() shows (owner, token, expiry).
struct Lease {
  std::string projection;
  std::string owner;
  /// Grows with every takeover; checkpoint writes carry it. The first lease of a projection
  /// has a token of at least 1.
  std::int64_t fencing_token = 0;
  /// Server time (for PostgreSQL, the database clock) when the lease lapses.
  std::chrono::system_clock::time_point expires_at;

  friend bool operator==(const Lease&, const Lease&) = default;
};

/// The checkpoint write was refused: another runner took the projection over (the fencing
/// token is stale) or the checkpoint is not where this writer last saw it. Nothing of the
/// unit of work was committed. The runner stops working on the projection and tries to
/// acquire it again.
///
/// A ConcurrencyError (code kConcurrency, retryable) on the projection's checkpoint rather
/// than on a stream: stream(), expected() and actual() are empty.
class OwnershipLostError : public ConcurrencyError {
 public:
  explicit OwnershipLostError(const std::string& message) : ConcurrencyError(message) {}
};

/// Writes that a projection queued in a pipelined batch (Batch::set_pipelined) failed when they
/// were finally sent. The PostgreSQL ReadModel's upsert() and increment() are sent at the next
/// exec() or remove(), or with the checkpoint at Batch::commit(), in one round trip, so the
/// error may surface while a later event is applied, or at commit: which event queued the
/// failing write is not known from it. The batch's unit of work is rolled back (nothing of it
/// is committed). The runner then applies the events again unpipelined, so that the failure
/// policy applies to the exact event.
///
/// An InvalidArgumentError (code kInvalidArgument, never retried as is): the projection's
/// writes were refused. cause() holds the refusal itself, as the annals error the write would
/// have thrown had it been sent alone (e.g. InvalidArgumentError for a violated constraint,
/// NotFoundError for a missing table); what() repeats its message.
class DeferredWriteError : public InvalidArgumentError {
 public:
  DeferredWriteError(const std::string& message, std::exception_ptr cause)
      : InvalidArgumentError(message), cause_(std::move(cause)) {}

  /// The failure of the queued write (std::rethrow_exception() it to inspect its class).
  [[nodiscard]] const std::exception_ptr& cause() const noexcept { return cause_; }

 private:
  std::exception_ptr cause_;
};

/// A change of a projection's partition layout (annals/projections/partitions.hpp), committed
/// by Batch::commit_layout() in one unit of work with the batch's own writes.
struct LayoutChange {
  /// Leases the caller holds, one per row it replaces; every one must still be current.
  std::vector<Lease> held;
  /// Rows deleted, with their resolved and skipped dead letters and rebuild requests.
  std::vector<std::string> remove;
  /// Rows whose lease is cleared and fencing token increased; their checkpoint is kept.
  std::vector<std::string> fence;
  /// Rows created when missing; every one gets its checkpoint at `at`, its lease cleared and
  /// its fencing token increased.
  std::vector<std::string> place;
  Position at;
};

/// One batch of work on a projection: the projection applies events through it, then
/// commit() stores the new checkpoint in the same unit of work. Destroying it without commit
/// rolls back.
///
/// Thread safety: one thread at a time.
class Batch : public UnitOfWork {
 public:
  /// Records `event` (all of it) as a dead letter of this projection, with the error of its
  /// last attempt and the number of attempts made. Takes effect with commit(); the store
  /// assigns its id then.
  virtual void park(const RecordedEvent& event, const std::string& error, int attempts) = 0;
  /// Marks dead letter `id` resolved (its retry succeeded in this batch). Takes effect with
  /// commit().
  virtual void resolve_dead_letter(std::int64_t id) = 0;
  /// Lets the store queue the projection's writes in this batch and send them together (one
  /// round trip for many writes, e.g. at commit()) instead of one at a time. The failure of a
  /// queued write then surfaces later, as a DeferredWriteError, from a later write that needs
  /// an answer or from commit(). Switching it off sends what is queued. The runner pipelines
  /// its batches, and applies events again unpipelined to find the one whose write failed.
  /// Default: off; a store that cannot queue ignores it.
  virtual void set_pipelined(bool pipelined) { static_cast<void>(pipelined); }
  /// Stores `checkpoint` and commits, if the lease is still current (same owner and fencing
  /// token, not released) and the stored checkpoint still equals the one this batch began at.
  /// Any position is accepted, including the unchanged checkpoint (a dead-letter retry) and
  /// Position::start() (a rebuild). At most one commit per batch.
  /// Throws: OwnershipLostError when refused (nothing of the batch is stored, parked events
  /// included); DeferredWriteError when writes the projection queued failed (nothing is
  /// stored; see set_pipelined()); UnavailableError / OutcomeUnknownError when the store failed
  /// (after OutcomeUnknownError, read the checkpoint again to learn the outcome).
  virtual void commit(Position checkpoint) = 0;
  /// Commits this batch's writes together with `change` instead of a checkpoint: all of it or
  /// nothing. This batch's own lease must be among `change.held`, and the stored checkpoint of
  /// its row must still be the one it began at. At most one commit per batch.
  /// Throws: OwnershipLostError (a lease of `held` is no longer current, or the checkpoint
  /// moved); InvalidArgumentError (a removed row has parked or retry-requested dead letters,
  /// a row is named twice, or a row to remove or fence is not registered); the errors of
  /// commit(). Default: InvalidArgumentError (the store cannot change layouts).
  virtual void commit_layout(const LayoutChange& change);
};

/// A projection as the store knows it, for status tables.
struct ProjectionRecord {
  std::string name;
  Position checkpoint;
  /// Empty when no runner holds the lease.
  std::optional<std::string> owner;
  std::optional<std::chrono::system_clock::time_point> lease_expires_at;
  std::int64_t fencing_token = 0;
  /// Last state the owner reported: "starting", "catching-up", "live", "rebuilding",
  /// "reconnecting", "stopped", "failed" (see ProjectionState).
  std::string state;
  /// Last error the owner reported, if any.
  std::optional<std::string> last_error;
  /// Events applied since the projection was registered or last rebuilt.
  std::int64_t events_applied = 0;
  std::chrono::system_clock::time_point updated_at;
  /// True when the lease is held and has not expired (by the store's clock) and, where the
  /// store watches sessions, its owner's session is alive.
  bool owned = false;
  /// PostgreSQL read models: the schema of the tables' current generation (blue/green
  /// rebuilds, annals/projections/postgres/blue_green.hpp); empty where the migrations created
  /// them, and on stores without schemas.
  std::optional<std::string> read_schema;
};

/// What an owner reports about its projection (stored with the record; see report()).
struct ProjectionReport {
  std::string state;
  std::optional<std::string> last_error;
  std::int64_t events_applied = 0;
};

enum class DeadLetterState {
  kParked,          ///< waiting for an operator
  kRetryRequested,  ///< an operator asked the owner to apply it again
  kResolved,        ///< a retry succeeded
  kSkipped,         ///< an operator gave up on it
};

/// Stable lower-case name: "parked", "retry-requested", "resolved", "skipped".
[[nodiscard]] const char* to_string(DeadLetterState state) noexcept;
/// Throws InvalidArgumentError for an unknown name.
[[nodiscard]] DeadLetterState parse_dead_letter_state(const std::string& text);

/// An event a projection could not apply, kept with the event itself so that an owner can
/// apply it again without the event store.
struct DeadLetter {
  std::int64_t id = 0;
  std::string projection;
  RecordedEvent event;
  std::string error;
  int attempts = 0;
  DeadLetterState state = DeadLetterState::kParked;
  std::chrono::system_clock::time_point parked_at;
  std::chrono::system_clock::time_point updated_at;
};

/// Which dead letters list_dead_letters() returns. Empty fields match everything.
struct DeadLetterQuery {
  std::optional<std::string> projection;
  std::optional<DeadLetterState> state;
  std::size_t max_count = 1000;
};

enum class RebuildState {
  kRequested,  ///< waiting for the projection's owner
  kRunning,    ///< the owner reset the projection and is replaying
  kDone,       ///< replayed up to `target`
  kFailed,     ///< see `message`
};

/// Stable lower-case name: "requested", "running", "done", "failed".
[[nodiscard]] const char* to_string(RebuildState state) noexcept;

/// A request to rebuild a projection: reset its read model and checkpoint, then replay. Made
/// by anyone (the CLI, an API); carried out by the projection's owner, which reports progress.
struct RebuildRequest {
  std::int64_t id = 0;
  std::string projection;
  RebuildState state = RebuildState::kRequested;
  /// The log head when the owner started; the rebuild is done once the checkpoint passes it.
  std::optional<Position> target;
  /// The checkpoint the owner last reported during the replay.
  std::optional<Position> progress;
  /// Failure reason or a note from the owner.
  std::optional<std::string> message;
  std::chrono::system_clock::time_point requested_at;
  std::chrono::system_clock::time_point updated_at;
};

/// Checkpoints, leases, dead letters and rebuild requests of projections.
///
/// Thread safety: every method may be called from any thread at once.
class ProjectionStore {
 public:
  ProjectionStore() = default;
  ProjectionStore(const ProjectionStore&) = delete;
  ProjectionStore& operator=(const ProjectionStore&) = delete;
  virtual ~ProjectionStore() = default;

  /// Registers the projection (idempotent) and runs its setup() in a unit of work.
  /// Throws: InvalidArgumentError for a bad name; what setup() throws.
  virtual void prepare(Projection& projection) = 0;

  /// Takes the lease of `projection` for `owner` if nobody holds a live one (or `owner`
  /// already does), for `ttl`. A lease is live until it expires or is released; a store that
  /// watches owners' sessions (PostgresProjectionStoreOptions::session_liveness) also treats
  /// a lease whose owner's session ended as over. A holder that asks again keeps its token (the
  /// expiry moves); every other acquisition (first one, takeover, after expiry or release, even by
  /// the same owner) increases the fencing token. Returns the lease, or empty when someone else
  /// holds it. Concurrent callers: exactly one wins. Throws: NotFoundError when the projection was
  /// never prepared.
  [[nodiscard]] virtual std::optional<Lease> try_acquire(const std::string& projection,
                                                         const std::string& owner,
                                                         std::chrono::milliseconds ttl) = 0;
  /// Extends a held lease by `ttl` from now. Returns the renewed lease, or empty when it was
  /// lost (expired and taken, or released).
  [[nodiscard]] virtual std::optional<Lease> renew(const Lease& lease,
                                                   std::chrono::milliseconds ttl) = 0;
  /// Gives the lease up so another runner can take over at once. No effect if already lost.
  virtual void release(const Lease& lease) = 0;

  /// The stored checkpoint (Position::start() for a new projection).
  /// Throws: NotFoundError when the projection was never prepared.
  [[nodiscard]] virtual Position checkpoint(const std::string& projection) = 0;

  /// Starts a batch for the holder of `lease`, whose last known checkpoint is `checkpoint`.
  /// The checks happen at commit(); a store may refuse a stale lease here already, with the
  /// same OwnershipLostError. The store must outlive the batch.
  [[nodiscard]] virtual std::unique_ptr<Batch> begin(const Lease& lease, Position checkpoint) = 0;

  /// Stores what the owner reports (state, last error, count; every field replaces the stored
  /// one), if `lease` is still current. A report with a stale lease is ignored, not an error.
  virtual void report(const Lease& lease, const ProjectionReport& report) = 0;

  /// Every registered projection, ordered by name.
  [[nodiscard]] virtual std::vector<ProjectionRecord> list() = 0;

  /// Dead letters, oldest first.
  [[nodiscard]] virtual std::vector<DeadLetter> list_dead_letters(const DeadLetterQuery& query) = 0;
  /// Asks the owner to apply dead letter `id` again. Throws NotFoundError for an unknown id,
  /// InvalidArgumentError when it is already resolved or skipped.
  virtual void request_retry(std::int64_t id) = 0;
  /// Gives up on dead letter `id`. Throws NotFoundError for an unknown id,
  /// InvalidArgumentError when it is already resolved.
  virtual void skip(std::int64_t id) = 0;
  /// Records a failed retry of dead letter `id`: back to parked, with the new error and one
  /// more attempt. Throws NotFoundError for an unknown id.
  virtual void retry_failed(std::int64_t id, const std::string& error) = 0;

  /// Asks for a rebuild of `projection`; returns the request (an open request of the same
  /// projection is returned instead of a new one). Throws NotFoundError for an unknown
  /// projection.
  virtual RebuildRequest request_rebuild(const std::string& projection) = 0;
  /// The request with this id, if any.
  [[nodiscard]] virtual std::optional<RebuildRequest> rebuild_request(std::int64_t id) = 0;
  /// The oldest open (requested or running) request of `projection`, if any.
  [[nodiscard]] virtual std::optional<RebuildRequest> open_rebuild(
      const std::string& projection) = 0;
  /// Owner's update of a request: new state, target, progress and message (all replaced).
  /// Throws NotFoundError for an unknown id.
  virtual void update_rebuild(const RebuildRequest& request) = 0;
};

/// Blocks until the stored checkpoint of `projection` reaches `position` or `timeout`
/// elapses; true when reached. For a reader in another process than the runner (a read API
/// answering "after my command"). Polls with a short back-off.
bool wait_for_checkpoint(ProjectionStore& store, const std::string& projection, Position position,
                         std::chrono::milliseconds timeout);

}  // namespace annals::projections
