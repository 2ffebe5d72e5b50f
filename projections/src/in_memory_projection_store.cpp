// The in-memory ProjectionStore. It follows the same contract as the PostgreSQL store
// (tests/support/projection_store_contract.hpp): leases with fencing tokens, a checkpoint
// written by compare-and-set, and batches whose dead-letter changes take effect atomically
// with the checkpoint. One mutex guards everything; no user code runs under it.
#include "annals/projections/in_memory_projection_store.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/projections/document_reader.hpp"
#include "in_memory_documents.hpp"

namespace annals::projections {
namespace {

using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

struct ProjectionRow {
  Position checkpoint;
  std::optional<std::string> owner;
  std::int64_t fencing_token = 0;
  // Expiry by the steady clock decides; the system-clock copy is what callers see.
  SteadyClock::time_point lease_deadline;
  SystemClock::time_point lease_expires_at;
  std::string state;
  std::optional<std::string> last_error;
  std::int64_t events_applied = 0;
  SystemClock::time_point updated_at;

  bool is_held(SteadyClock::time_point now) const { return owner && lease_deadline > now; }
  bool is_current(const Lease& lease) const {
    return owner == lease.owner && fencing_token == lease.fencing_token;
  }
};

// Shared by the store and its batches, so that a batch never dangles.
struct State {
  std::mutex mutex;
  std::map<std::string, ProjectionRow> projections;  // by name, so list() is ordered
  std::map<std::int64_t, DeadLetter> dead_letters;   // by id: oldest first
  std::map<std::int64_t, RebuildRequest> rebuilds;
  std::int64_t next_dead_letter_id = 1;
  std::int64_t next_rebuild_id = 1;
  // The collections of DocumentProjections (in_memory_documents.hpp).
  std::shared_ptr<detail::DocumentTables> documents = std::make_shared<detail::DocumentTables>();

  ProjectionRow& row(const std::string& projection) {
    const auto found = projections.find(projection);
    if (found == projections.end()) {
      throw NotFoundError("projection '" + projection +
                          "' is not registered (ProjectionStore::prepare() registers it)");
    }
    return found->second;
  }

  DeadLetter& dead_letter(std::int64_t id) {
    const auto found = dead_letters.find(id);
    if (found == dead_letters.end()) {
      throw NotFoundError("dead letter " + std::to_string(id) + " does not exist");
    }
    return found->second;
  }
};

Lease lease_of(const std::string& projection, const ProjectionRow& row) {
  return Lease{.projection = projection,
               .owner = row.owner.value_or(""),
               .fencing_token = row.fencing_token,
               .expires_at = row.lease_expires_at};
}

void require_positive(std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) {
    throw InvalidArgumentError("invalid lease ttl " + std::to_string(ttl.count()) +
                               " ms: it must be positive");
  }
}

// The unit of work prepare() runs setup() in: nothing to roll back in memory; a
// DocumentProjection declares its collections through it.
class SetupWork final : public UnitOfWork, public DocumentWork {
 public:
  SetupWork(std::shared_ptr<detail::DocumentTables> documents, std::string projection)
      : documents_(std::move(documents)), projection_(std::move(projection)) {}

  void set_up_collections(const std::vector<CollectionSpec>& collections) override {
    documents_->declare(projection_, collections);
  }
  Documents& documents(const std::vector<CollectionSpec>&) override {
    throw InvalidArgumentError("projection '" + projection_ +
                               "': documents are written by handlers, not by setup()");
  }
  void clear_collections(const std::vector<CollectionSpec>&) override {
    throw InvalidArgumentError("projection '" + projection_ +
                               "': collections are cleared by a rebuild, not by setup()");
  }

 private:
  std::shared_ptr<detail::DocumentTables> documents_;
  std::string projection_;
};

class InMemoryBatch final : public Batch, public DocumentWork {
 public:
  InMemoryBatch(std::shared_ptr<State> state, Lease lease, Position begun_at)
      : state_(std::move(state)),
        lease_(std::move(lease)),
        begun_at_(begun_at),
        staged_(state_->documents, lease_.projection) {}

  void set_up_collections(const std::vector<CollectionSpec>& collections) override {
    state_->documents->declare(lease_.projection, collections);
  }
  Documents& documents(const std::vector<CollectionSpec>& collections) override {
    staged_.allow(collections);
    return staged_;
  }
  void clear_collections(const std::vector<CollectionSpec>& collections) override {
    staged_.clear(collections);
  }

  void park(const RecordedEvent& event, const std::string& error, int attempts) override {
    parked_.push_back(DeadLetter{.id = 0,
                                 .projection = lease_.projection,
                                 .event = event,
                                 .error = error,
                                 .attempts = attempts,
                                 .state = DeadLetterState::kParked,
                                 .parked_at = {},
                                 .updated_at = {}});
  }

  void resolve_dead_letter(std::int64_t id) override { resolved_.push_back(id); }

  void commit(Position checkpoint) override {
    if (committed_) throw InvalidArgumentError("this batch was already committed");
    std::lock_guard lock(state_->mutex);
    check_own_lease_locked();
    finish_locked(&checkpoint);
  }

  void commit_layout(const LayoutChange& change) override {
    if (committed_) throw InvalidArgumentError("this batch was already committed");
    std::lock_guard lock(state_->mutex);
    // Validate everything before changing anything: all or nothing.
    std::set<std::string> named;
    const auto once = [&](const std::string& name) {
      if (!named.insert(name).second) {
        throw InvalidArgumentError("layout change of '" + lease_.projection + "': row '" + name +
                                   "' is named twice");
      }
    };
    bool own_held = false;
    for (const auto& held : change.held) {
      own_held = own_held || (held.projection == lease_.projection && held.owner == lease_.owner &&
                              held.fencing_token == lease_.fencing_token);
      const auto found = state_->projections.find(held.projection);
      if (found == state_->projections.end() || !found->second.is_current(held)) {
        throw OwnershipLostError("layout change of '" + lease_.projection +
                                 "' refused: the lease of '" + held.owner + "' on '" +
                                 held.projection + "' is no longer current; nothing was committed");
      }
    }
    if (!own_held) {
      throw InvalidArgumentError("layout change of '" + lease_.projection +
                                 "': the batch's own lease is not among the held ones");
    }
    check_own_lease_locked();
    for (const auto& name : change.remove) {
      once(name);
      static_cast<void>(state_->row(name));
      for (const auto& [id, letter] : state_->dead_letters) {
        if (letter.projection == name && (letter.state == DeadLetterState::kParked ||
                                          letter.state == DeadLetterState::kRetryRequested)) {
          throw InvalidArgumentError("layout change of '" + lease_.projection + "': row '" + name +
                                     "' has open dead letter " + std::to_string(id) +
                                     "; retry or skip it first");
        }
      }
    }
    for (const auto& name : change.fence) {
      once(name);
      static_cast<void>(state_->row(name));
    }
    for (const auto& name : change.place) {
      once(name);
      validate_projection_name(name);
    }
    finish_locked(nullptr);
    const auto now = SystemClock::now();
    for (const auto& name : change.remove) {
      state_->projections.erase(name);
      std::erase_if(state_->dead_letters,
                    [&](const auto& entry) { return entry.second.projection == name; });
      std::erase_if(state_->rebuilds,
                    [&](const auto& entry) { return entry.second.projection == name; });
    }
    const auto clear_lease = [&](ProjectionRow& row) {
      row.owner.reset();
      ++row.fencing_token;
      row.updated_at = now;
    };
    for (const auto& name : change.fence) clear_lease(state_->projections.at(name));
    for (const auto& name : change.place) {
      auto& row = state_->projections[name];
      clear_lease(row);
      row.checkpoint = change.at;
      row.state = "stopped";
      row.last_error.reset();
      row.events_applied = 0;
    }
  }

 private:
  // Under the lock: this batch's lease is current and its row's checkpoint where it began.
  void check_own_lease_locked() {
    const auto found = state_->projections.find(lease_.projection);
    if (found == state_->projections.end()) {
      // Removed by a partition layout change: as refused as a takeover.
      throw OwnershipLostError("checkpoint of projection '" + lease_.projection +
                               "' refused: the projection is no longer registered");
    }
    auto& row = found->second;
    if (!row.is_current(lease_)) {
      throw OwnershipLostError(
          "checkpoint of projection '" + lease_.projection + "' refused: the lease of '" +
          lease_.owner + "' with token " + std::to_string(lease_.fencing_token) +
          " is no longer current (now token " + std::to_string(row.fencing_token) + ")");
    }
    if (row.checkpoint != begun_at_) {
      throw OwnershipLostError("checkpoint of projection '" + lease_.projection +
                               "' refused: expected it at " + begun_at_.to_string() +
                               ", but it is at " + row.checkpoint.to_string());
    }
  }

  // Under the lock, after the checks: applies the staged documents, the dead-letter changes
  // and (when given) the new checkpoint.
  void finish_locked(const Position* checkpoint) {
    // Validate everything before changing anything: the commit is all or nothing.
    for (const auto id : resolved_) {
      if (state_->dead_letter(id).projection != lease_.projection) {
        throw InvalidArgumentError("dead letter " + std::to_string(id) +
                                   " belongs to another projection than '" + lease_.projection +
                                   "'");
      }
    }
    const auto now = SystemClock::now();
    {
      // With the checkpoint, under the store's lock: a reader that sees the new checkpoint
      // sees these documents.
      std::lock_guard documents(state_->documents->mutex);
      staged_.apply_locked();
    }
    if (checkpoint != nullptr) state_->row(lease_.projection).checkpoint = *checkpoint;
    for (auto& letter : parked_) {
      letter.id = state_->next_dead_letter_id++;
      letter.parked_at = now;
      letter.updated_at = now;
      state_->dead_letters.emplace(letter.id, std::move(letter));
    }
    for (const auto id : resolved_) {
      auto& letter = state_->dead_letter(id);
      // Resolved even if an operator skipped it meanwhile: the event was applied.
      letter.state = DeadLetterState::kResolved;
      letter.updated_at = now;
    }
    committed_ = true;
  }

  std::shared_ptr<State> state_;
  Lease lease_;
  Position begun_at_;
  std::vector<DeadLetter> parked_;
  std::vector<std::int64_t> resolved_;
  detail::StagedDocuments staged_;
  bool committed_ = false;
};

class InMemoryProjectionStore final : public ProjectionStore {
 public:
  // The collections of its DocumentProjections, for make_in_memory_document_reader().
  [[nodiscard]] std::shared_ptr<detail::DocumentTables> documents() const {
    return state_->documents;
  }

  void prepare(Projection& projection) override {
    const auto name = projection.name();
    validate_projection_name(name);
    SetupWork work(state_->documents, name);
    projection.setup(work);  // user code: outside the lock
    std::lock_guard lock(state_->mutex);
    if (!state_->projections.contains(name)) {
      ProjectionRow row;
      row.updated_at = SystemClock::now();
      state_->projections.emplace(name, std::move(row));
    }
  }

  std::optional<Lease> try_acquire(const std::string& projection, const std::string& owner,
                                   std::chrono::milliseconds ttl) override {
    require_positive(ttl);
    if (owner.empty()) throw InvalidArgumentError("invalid lease owner: it is empty");
    std::lock_guard lock(state_->mutex);
    auto& row = state_->row(projection);
    const auto now = SteadyClock::now();
    if (row.is_held(now) && row.owner != owner) return std::nullopt;
    if (!row.is_held(now)) {
      // A new tenure (first acquisition, after a release or after expiry): a new token.
      ++row.fencing_token;
      row.owner = owner;
    }
    row.lease_deadline = now + ttl;
    row.lease_expires_at = SystemClock::now() + ttl;
    return lease_of(projection, row);
  }

  std::optional<Lease> renew(const Lease& lease, std::chrono::milliseconds ttl) override {
    require_positive(ttl);
    std::lock_guard lock(state_->mutex);
    const auto found = state_->projections.find(lease.projection);
    if (found == state_->projections.end() || !found->second.is_current(lease)) {
      return std::nullopt;
    }
    // Expired but not taken over: the token is still the newest, so renewing is safe.
    auto& row = found->second;
    row.lease_deadline = SteadyClock::now() + ttl;
    row.lease_expires_at = SystemClock::now() + ttl;
    return lease_of(lease.projection, row);
  }

  void release(const Lease& lease) override {
    std::lock_guard lock(state_->mutex);
    const auto found = state_->projections.find(lease.projection);
    if (found == state_->projections.end() || !found->second.is_current(lease)) return;
    found->second.owner.reset();
  }

  Position checkpoint(const std::string& projection) override {
    std::lock_guard lock(state_->mutex);
    return state_->row(projection).checkpoint;
  }

  std::unique_ptr<Batch> begin(const Lease& lease, Position checkpoint) override {
    // The checks happen at commit(), where they are atomic with the write.
    return std::make_unique<InMemoryBatch>(state_, lease, checkpoint);
  }

  void report(const Lease& lease, const ProjectionReport& report) override {
    std::lock_guard lock(state_->mutex);
    const auto found = state_->projections.find(lease.projection);
    if (found == state_->projections.end() || !found->second.is_current(lease)) return;
    auto& row = found->second;
    row.state = report.state;
    row.last_error = report.last_error;
    row.events_applied = report.events_applied;
    row.updated_at = SystemClock::now();
  }

  std::vector<ProjectionRecord> list() override {
    std::lock_guard lock(state_->mutex);
    const auto now = SteadyClock::now();
    std::vector<ProjectionRecord> out;
    out.reserve(state_->projections.size());
    for (const auto& [name, row] : state_->projections) {
      ProjectionRecord record;
      record.name = name;
      record.checkpoint = row.checkpoint;
      record.owner = row.owner;
      if (row.owner) record.lease_expires_at = row.lease_expires_at;
      record.fencing_token = row.fencing_token;
      record.state = row.state;
      record.last_error = row.last_error;
      record.events_applied = row.events_applied;
      record.updated_at = row.updated_at;
      record.owned = row.is_held(now);
      out.push_back(std::move(record));
    }
    return out;
  }

  std::vector<DeadLetter> list_dead_letters(const DeadLetterQuery& query) override {
    std::lock_guard lock(state_->mutex);
    std::vector<DeadLetter> out;
    for (const auto& [id, letter] : state_->dead_letters) {
      if (out.size() >= query.max_count) break;
      if (query.projection && letter.projection != *query.projection) continue;
      if (query.state && letter.state != *query.state) continue;
      out.push_back(letter);
    }
    return out;
  }

  void request_retry(std::int64_t id) override {
    std::lock_guard lock(state_->mutex);
    auto& letter = state_->dead_letter(id);
    if (letter.state == DeadLetterState::kResolved || letter.state == DeadLetterState::kSkipped) {
      throw InvalidArgumentError("dead letter " + std::to_string(id) + " is " +
                                 to_string(letter.state) + "; only a parked one can be retried");
    }
    if (letter.state == DeadLetterState::kParked) {
      letter.state = DeadLetterState::kRetryRequested;
      letter.updated_at = SystemClock::now();
    }
  }

  void skip(std::int64_t id) override {
    std::lock_guard lock(state_->mutex);
    auto& letter = state_->dead_letter(id);
    if (letter.state == DeadLetterState::kResolved) {
      throw InvalidArgumentError("dead letter " + std::to_string(id) +
                                 " is resolved; there is nothing to skip");
    }
    if (letter.state != DeadLetterState::kSkipped) {
      letter.state = DeadLetterState::kSkipped;
      letter.updated_at = SystemClock::now();
    }
  }

  void retry_failed(std::int64_t id, const std::string& error) override {
    std::lock_guard lock(state_->mutex);
    auto& letter = state_->dead_letter(id);
    letter.error = error;
    ++letter.attempts;
    // An operator's skip during the retry stands; otherwise it waits for the operator again.
    if (letter.state == DeadLetterState::kRetryRequested) letter.state = DeadLetterState::kParked;
    letter.updated_at = SystemClock::now();
  }

  RebuildRequest request_rebuild(const std::string& projection) override {
    std::lock_guard lock(state_->mutex);
    static_cast<void>(state_->row(projection));
    if (auto open = open_locked(projection)) return *open;
    const auto now = SystemClock::now();
    RebuildRequest request;
    request.id = state_->next_rebuild_id++;
    request.projection = projection;
    request.state = RebuildState::kRequested;
    request.requested_at = now;
    request.updated_at = now;
    state_->rebuilds.emplace(request.id, request);
    return request;
  }

  std::optional<RebuildRequest> rebuild_request(std::int64_t id) override {
    std::lock_guard lock(state_->mutex);
    const auto found = state_->rebuilds.find(id);
    if (found == state_->rebuilds.end()) return std::nullopt;
    return found->second;
  }

  std::optional<RebuildRequest> open_rebuild(const std::string& projection) override {
    std::lock_guard lock(state_->mutex);
    return open_locked(projection);
  }

  void update_rebuild(const RebuildRequest& request) override {
    std::lock_guard lock(state_->mutex);
    const auto found = state_->rebuilds.find(request.id);
    if (found == state_->rebuilds.end()) {
      throw NotFoundError("rebuild request " + std::to_string(request.id) + " does not exist");
    }
    auto& stored = found->second;
    stored.state = request.state;
    stored.target = request.target;
    stored.progress = request.progress;
    stored.message = request.message;
    stored.updated_at = SystemClock::now();
  }

 private:
  std::optional<RebuildRequest> open_locked(const std::string& projection) const {
    for (const auto& [id, request] : state_->rebuilds) {
      if (request.projection == projection &&
          (request.state == RebuildState::kRequested || request.state == RebuildState::kRunning)) {
        return request;
      }
    }
    return std::nullopt;
  }

  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace

std::unique_ptr<DocumentReader> make_in_memory_document_reader(ProjectionStore& store) {
  auto* in_memory = dynamic_cast<InMemoryProjectionStore*>(&store);
  if (in_memory == nullptr) {
    throw InvalidArgumentError(
        "make_in_memory_document_reader() needs a store of make_in_memory_projection_store(); "
        "for PostgreSQL use make_postgres_document_reader()");
  }
  return detail::make_tables_reader(in_memory->documents(), store);
}

std::unique_ptr<ProjectionStore> make_in_memory_projection_store() {
  return std::make_unique<InMemoryProjectionStore>();
}

}  // namespace annals::projections
