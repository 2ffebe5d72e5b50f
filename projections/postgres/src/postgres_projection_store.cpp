// PostgresProjectionStore: checkpoints, leases, dead letters and rebuild requests in the tables
// of sql/0003_create_projections.sql.
//
// Session liveness (sql/0011): unless options.session_liveness is off, the store keeps a
// presence connection (presence.hpp) whose advisory-lock key its leases record, and a lease
// whose recorded session ended is free for try_acquire at once. A lease statement that finds
// the store's own key free records no session (RETURNING shows NULL): the presence is then
// reopened under a new key and the lease renewed with it in the same call.
//
// Every call except a batch is one prepared statement on a pooled autocommit connection (one
// round trip). Those calls are safe to repeat, so a broken connection is retried on a new one;
// a repeated try_acquire by the same owner finds its own unexpired lease and only renews it.
// A Batch is a pqxx::work on one pooled connection: the projection's writes, the dead-letter
// changes and the guarded checkpoint UPDATE commit together (ARCHITECTURE decision 7). Driver
// failures are translated once, by annals::postgres's translator (error_translation.hpp).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/detail/stored_event.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "error_translation.hpp"
#include "parse_int.hpp"
#include "pooled_call.hpp"
#include "postgres_batch.hpp"
#include "presence.hpp"
#include "sql.hpp"
#include "statement_connection.hpp"

namespace annals::projections {
namespace detail {

// --- Sessions ----------------------------------------------------------------------------------

namespace {

void prepare_store_statements(StatementConnection& connection) {
  connection.prepare(sql::kRegisterName, sql::kRegister);
  connection.prepare(sql::kMigrationLockName, sql::kMigrationLock);
  connection.prepare(sql::kMigrationsAppliedName, sql::kMigrationsApplied);
  connection.prepare(sql::kMigrationRecordName, sql::kMigrationRecord);
  connection.prepare(sql::kAcquireName, sql::kAcquire);
  connection.prepare(sql::kRenewName, sql::kRenew);
  connection.prepare(sql::kReleaseName, sql::kRelease);
  connection.prepare(sql::kExistsName, sql::kExists);
  connection.prepare(sql::kCheckpointName, sql::kCheckpoint);
  connection.prepare(sql::kCommitCheckpointName, sql::kCommitCheckpoint);
  connection.prepare(sql::kReportName, sql::kReport);
  connection.prepare(sql::kListName, sql::kList);
  connection.prepare(sql::kParkName, sql::kPark);
  connection.prepare(sql::kResolveName, sql::kResolve);
  connection.prepare(sql::kListDeadLettersName, sql::kListDeadLetters);
  connection.prepare(sql::kTransitionDeadLetterName, sql::kTransitionDeadLetter);
  connection.prepare(sql::kRetryFailedName, sql::kRetryFailed);
  connection.prepare(sql::kRequestRebuildName, sql::kRequestRebuild);
  connection.prepare(sql::kOpenRebuildName, sql::kOpenRebuild);
  connection.prepare(sql::kRebuildRequestName, sql::kRebuildRequest);
  connection.prepare(sql::kUpdateRebuildName, sql::kUpdateRebuild);
  connection.prepare(sql::kInlineAppendName, sql::kInlineAppend);
  connection.prepare(sql::kInlineLockSharedName, sql::kInlineLockShared);
  connection.prepare(sql::kInlineLockName, sql::kInlineLock);
  connection.prepare(sql::kInlineCaughtUpName, sql::kInlineCaughtUp);
  connection.prepare(sql::kInlineReadBackName, sql::kInlineReadBack);
  connection.prepare(sql::kInlineEnterName, sql::kInlineEnter);
  connection.prepare(sql::kInlineRecordName, sql::kInlineRecord);
  connection.prepare(sql::kEnterReadModelName, sql::kEnterReadModel);
  connection.prepare(sql::kInlineForgetName, sql::kInlineForget);
  connection.prepare(sql::kInlineNotifyName, sql::kInlineNotify);
  connection.prepare(sql::kDocumentOwnerName, sql::kDocumentOwner);
}

}  // namespace

Session::Session(const std::string& connection_string) : connection(connection_string) {
  prepare_store_statements(connection);
}

const Session::Statement* Session::find(const std::string& key) const {
  const auto found = statements.find(key);
  return found == statements.end() ? nullptr : &found->second;
}

const Session::Statement& Session::add(const std::string& key, const std::string& sql,
                                       std::size_t parameters) {
  Statement statement{"annals_rm_" + std::to_string(names++), parameters};
  connection.prepare(statement.name, sql);
  return statements.emplace(key, std::move(statement)).first->second;
}

const Session::Statement& Session::add_deferred(const std::string& key, const std::string& sql,
                                                std::size_t parameters) {
  Statement statement{"annals_rm_" + std::to_string(names++), parameters, true};
  connection.prepare(statement.name, sql);
  connection.check(statement.name);
  return statements.insert_or_assign(key, std::move(statement)).first->second;
}

void PostgresContext::fail(const std::exception& error, const std::string& what, bool read_model) {
  if (postgres::detail::classify(error) == postgres::detail::Failure::kBrokenConnection) {
    set_broken();
  }
  postgres::detail::rethrow_translated(
      error, what, false,
      read_model ? postgres::detail::Origin::kReadModel : postgres::detail::Origin::kEventStore);
}

void PostgresContext::defer(const Session::Statement& statement, const std::vector<Param>& params) {
  session().connection.queue(writes_, statement.name, params);
  if (writes_.bytes() >= kMaxPendingBytes) flush_writes();
}

PostgresContext::StatementDeadline::StatementDeadline(PostgresContext& context)
    : context_(context),
      call_(context.watchdog_, context.watchdog_ != nullptr ? socket_of(context.session()) : -1,
            postgres::detail::Watchdog::Clock::now() + context.statement_timeout_) {}

PostgresContext::StatementDeadline::~StatementDeadline() {
  // Cut short: the session's socket is shut down, whatever the statement returned.
  if (call_.disarm()) context_.set_broken();
}

void PostgresContext::flush_writes() {
  if (writes_.empty()) return;
  const auto count = writes_.size();
  try {
    const StatementDeadline deadline(*this);
    static_cast<void>(writes_.send(transaction()));
  } catch (const std::exception& e) {
    deferred_failed(e, count);
  }
}

void PostgresContext::deferred_failed(const std::exception& error, std::size_t count) {
  const auto what = "projection \"" + projection_name() + "\": one of " + std::to_string(count) +
                    " queued read-model writes failed";
  try {
    fail(error, what, true);
  } catch (const UnavailableError&) {
    throw;  // the store's trouble, not an event's (OutcomeUnknownError included)
  } catch (const annals::Error& translated) {
    throw DeferredWriteError(translated.what(), std::current_exception());
  }
}

}  // namespace detail

namespace {

using detail::exec_statement;
using detail::Param;
using detail::PostgresContext;
using detail::Session;
using detail::SessionPool;

// What the pool runs on each new session: nothing, or (behind a transaction pooler) switching
// it to unnamed statements (statement_connection.hpp).
SessionPool::OnConnect statement_setup(bool prepared) {
  if (prepared) return nullptr;
  return [](Session& session) { session.connection.use_unnamed_statements(); };
}

// How calls of this store are repeated (postgres::detail::run_pooled): after a broken
// connection on a new one up to 2 times, after a transient failure (serialization failure,
// deadlock) up to 8 times, both counted by one attempt counter.
// prepare() runs the projection's setup (creating tables, perhaps indexes on large ones), which
// may legitimately take long: it gets prepare_timeout; every other call gets call_timeout.
constexpr postgres::detail::RetryPolicy kRetryPolicy{
    .max_broken_retries = 2,
    .max_transient_retries = 8,
    .one_count = true,
    .component = "projection store",
};

Param value(std::string text) { return Param{std::move(text), false}; }
Param value(std::int64_t number) { return Param{std::to_string(number), false}; }
Param optional_value(const std::optional<std::string>& text) {
  return text ? Param{*text, false} : Param{{}, true};
}
Param null_param() { return Param{{}, true}; }

Position position_of(const pqxx::field& commit, const pqxx::field& sequence, const char* what) {
  return Position(postgres::detail::parse_int<std::uint64_t>(commit, what),
                  sequence.as<std::int64_t>());
}

std::optional<Position> optional_position(const pqxx::field& commit, const pqxx::field& sequence,
                                          const char* what) {
  if (commit.is_null()) return std::nullopt;
  return position_of(commit, sequence, what);
}

std::chrono::system_clock::time_point time_of(const pqxx::field& micros) {
  return std::chrono::system_clock::time_point(
      std::chrono::microseconds(micros.as<std::int64_t>()));
}

std::optional<std::string> optional_text(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return std::string(field.c_str(), field.size());
}

std::int64_t micros_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// An event's JSON for a jsonb parameter: the text it was read as, when it holds one, which
// saves parsing it only to dump it again (issue 14).
std::string json_text(const LazyJson& value) {
  if (const auto text = value.text()) return std::string(*text);
  return value.dump();
}

std::string describe(const std::string& projection) { return "projection \"" + projection + "\""; }

// TTLs travel in milliseconds; a non-positive one would create a lease that is already over.
std::int64_t ttl_millis(std::chrono::milliseconds ttl, const std::string& projection) {
  if (ttl.count() <= 0) {
    throw InvalidArgumentError(describe(projection) + ": lease ttl must be positive, got " +
                               std::to_string(ttl.count()) + " ms");
  }
  return static_cast<std::int64_t>(ttl.count());
}

std::optional<Lease> lease_of(const pqxx::result& rows, const std::string& projection) {
  if (rows.empty()) return std::nullopt;
  const auto& row = rows[0];
  return Lease{.projection = projection,
               .owner = std::string(row[0].c_str(), row[0].size()),
               .fencing_token = row[1].as<std::int64_t>(),
               .expires_at = time_of(row[2])};
}

// The owner session a lease statement recorded (column 3 of ANNALS_LEASE_COLUMNS).
std::optional<std::int64_t> recorded_session(const pqxx::result& rows) {
  if (rows.empty() || rows[0][3].is_null()) return std::nullopt;
  return rows[0][3].as<std::int64_t>();
}

Param optional_key(std::optional<std::int64_t> key) { return key ? value(*key) : null_param(); }

DeadLetterState dead_letter_state(const pqxx::field& field) {
  return parse_dead_letter_state(std::string(field.c_str(), field.size()));
}

RebuildState rebuild_state(const pqxx::field& field) {
  const std::string_view text(field.c_str(), field.size());
  if (text == "requested") return RebuildState::kRequested;
  if (text == "running") return RebuildState::kRunning;
  if (text == "done") return RebuildState::kDone;
  if (text == "failed") return RebuildState::kFailed;
  throw CorruptionError("unknown rebuild state '" + std::string(text) + "'");
}

// Columns as in sql.hpp's ANNALS_REBUILD_COLUMNS.
RebuildRequest decode_rebuild(const pqxx::row& row) {
  return RebuildRequest{
      .id = row[0].as<std::int64_t>(),
      .projection = row[1].c_str(),
      .state = rebuild_state(row[2]),
      .target = optional_position(row[3], row[4], "rebuild target"),
      .progress = optional_position(row[5], row[6], "rebuild progress"),
      .message = optional_text(row[7]),
      .requested_at = time_of(row[8]),
      .updated_at = time_of(row[9]),
  };
}

std::string_view text_of(const pqxx::field& field) {
  return std::string_view(field.c_str(), field.size());
}

// Columns as in sql.hpp's ANNALS_DEAD_LETTER_COLUMNS. The event is decoded as the event store
// decodes it (annals::detail::decode_stored_event): an undecodable event, parked as such,
// comes back marked, never as an error that would hide every other dead letter.
DeadLetter decode_dead_letter(const pqxx::row& row) {
  const auto id = row[0].as<std::int64_t>();
  return DeadLetter{
      .id = id,
      .projection = row[1].c_str(),
      .event = annals::detail::decode_stored_event({
          .stream_id = text_of(row[4]),
          .version = row[5].as<std::int64_t>(),
          .position = position_of(row[2], row[3], "dead letter transaction id"),
          .id = EventId::parse(text_of(row[6])),
          .type = text_of(row[7]),
          .schema_version = row[8].as<std::int32_t>(),
          .data = text_of(row[9]),
          .metadata = text_of(row[10]),
          .recorded_at = time_of(row[11]),
      }),
      .error = row[12].c_str(),
      .attempts = row[13].as<int>(),
      .state = dead_letter_state(row[14]),
      .parked_at = time_of(row[15]),
      .updated_at = time_of(row[16]),
  };
}

// "t1,t2,..." (array_to_string of an xid8[]) as numbers; empty text: none.
std::vector<std::uint64_t> parse_transactions(std::string_view text) {
  std::vector<std::uint64_t> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    out.push_back(postgres::detail::parse_int<std::uint64_t>(text.substr(0, comma),
                                                             "inline-applied transaction id"));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// "<what>: row '<name>' <rest>", for the refusals of a layout change.
std::string about_row(const std::string& what, const std::string& name, std::string_view rest) {
  std::string out = what;
  out += ": row '";
  out += name;
  out += "' ";
  out += rest;
  return out;
}

NotFoundError not_registered(const std::string& projection) {
  return NotFoundError(describe(projection) +
                       " is not registered (ProjectionStore::prepare() registers it)");
}

std::string state_array(std::initializer_list<DeadLetterState> states) {
  std::string text = "{";
  for (const auto state : states) {
    if (text.size() > 1) text.push_back(',');
    text += to_string(state);
  }
  return text + "}";
}

// --- Units of work -----------------------------------------------------------------------------

// The unit of work prepare() runs a projection's setup() in.
class SetupWork final : public UnitOfWork, public PostgresContext {
 public:
  SetupWork(const std::string& projection, Session& session, pqxx::work& tx)
      : projection_(projection), session_(session), tx_(tx) {}

  const std::string& projection_name() const noexcept override { return projection_; }
  Session& session() noexcept override { return session_; }
  pqxx::dbtransaction& transaction() noexcept override { return tx_; }

  void enter_read_schema() override {
    try {
      static_cast<void>(exec_statement(tx_, sql::kEnterReadModelName, projection_));
    } catch (const std::exception& e) {
      fail(e, describe(projection_) + ": enter its read schema", false);
    }
  }

 private:
  const std::string& projection_;
  Session& session_;
  pqxx::work& tx_;
};

// A batch: one transaction on one pooled session, from begin() to commit() or destruction.
class PostgresBatch final : public Batch, public PostgresContext {
 public:
  // Each statement of the batch, ROLLBACK and COMMIT included, gets `statement_timeout`
  // on `watchdog` (StatementDeadline).
  PostgresBatch(Lease lease, Position checkpoint, SessionPool::Lease session,
                std::unique_ptr<pqxx::work> tx, postgres::detail::Watchdog& watchdog,
                std::chrono::milliseconds statement_timeout)
      : lease_(std::move(lease)),
        checkpoint_(checkpoint),
        session_(std::move(session)),
        tx_(std::move(tx)) {
    set_statement_deadline(&watchdog, statement_timeout);
  }

  ~PostgresBatch() override {
    if (tx_) {
      try {
        const StatementDeadline deadline(*this);
        tx_.reset();  // rolls back
      } catch (...) {
        set_broken();
      }
    }
    if (broken()) session_.discard();
  }

  const std::string& projection_name() const noexcept override { return lease_.projection; }
  Session& session() noexcept override { return *session_; }
  pqxx::dbtransaction& transaction() noexcept override { return *tx_; }

  void park(const RecordedEvent& event, const std::string& error, int attempts) override {
    if (attempts < 1) {
      throw InvalidArgumentError(describe(lease_.projection) + ": park needs attempts >= 1, got " +
                                 std::to_string(attempts));
    }
    const std::string what = describe(lease_.projection) + ": park event " + event.id.to_string() +
                             " of stream \"" + event.stream_id.value() + "\"";
    const auto tx = open(what);
    // An undecodable event is kept as it was stored (its decode_failure holds the stored text),
    // so that reading the dead letter back decodes it, and fails, the same way.
    const auto* stored = event.is_undecodable() ? &*event.decode_failure : nullptr;
    try {
      const StatementDeadline deadline(*this);
      exec_statement(*tx, sql::kParkName, lease_.projection, event.id.to_string(),
                     stored ? stored->stream_id : event.stream_id.value(), event.version,
                     std::to_string(event.position.commit()), event.position.sequence(),
                     stored ? stored->type : event.type, event.schema_version,
                     stored ? stored->data : json_text(event.data),
                     stored ? stored->metadata : json_text(event.metadata),
                     micros_since_epoch(event.recorded_at), error, attempts);
    } catch (const annals::Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(e, what);
    }
  }

  void resolve_dead_letter(std::int64_t id) override {
    const std::string what =
        describe(lease_.projection) + ": resolve dead letter " + std::to_string(id);
    const auto tx = open(what);
    pqxx::result result;
    try {
      const StatementDeadline deadline(*this);
      result = exec_statement(*tx, sql::kResolveName, id, lease_.projection);
    } catch (const std::exception& e) {
      fail(e, what);
    }
    if (result.affected_rows() == 0) {
      throw NotFoundError(what + ": no such dead letter of this projection");
    }
  }

  bool applied_inline(const Position& position) override {
    enter_read_schema();
    if (inline_applied_.empty()) return false;
    return std::find(inline_applied_.begin(), inline_applied_.end(), position.commit()) !=
           inline_applied_.end();
  }

  // Once per batch, at its first event: enters the projection's read schema and reads the
  // transactions applied inline. Entries are added only by inline appends that committed with
  // their events, so every event this batch was given (read before it began) has its entry, if
  // any, committed already.
  void enter_read_schema() override {
    if (entered_) return;
    const std::string what = describe(lease_.projection) + ": enter its read model";
    const auto tx = open(what);
    try {
      const StatementDeadline deadline(*this);
      const auto rows = exec_statement(*tx, sql::kEnterReadModelName, lease_.projection);
      if (rows.empty()) throw not_registered(lease_.projection);
      inline_applied_ = parse_transactions(text_of(rows[0][1]));
    } catch (const annals::Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(e, what, false);
    }
    entered_ = true;
  }

  void set_pipelined(bool pipelined) override {
    if (!pipelined && has_pending_writes()) {
      static_cast<void>(open(describe(lease_.projection) + ": send the queued writes"));
      try {
        flush_writes();
      } catch (...) {
        tx_.reset();  // aborted: roll back now; the batch can only be destroyed
        throw;
      }
    }
    set_pipelined_flag(pipelined);
  }

  void commit(Position checkpoint) override {
    const std::string what = describe(lease_.projection) + ": commit checkpoint " +
                             checkpoint.to_string() + " (fencing token " +
                             std::to_string(lease_.fencing_token) + ")";
    const auto tx = open(what);
    bool committable = false;
    const auto queued = pending_writes().size();
    try {
      if (queued == 0) {
        const StatementDeadline deadline(*this);
        const auto updated = exec_statement(
            *tx, sql::kCommitCheckpointName, lease_.projection, lease_.fencing_token,
            std::to_string(checkpoint_.commit()), checkpoint_.sequence(),
            std::to_string(checkpoint.commit()), checkpoint.sequence(), lease_.owner);
        committable = updated.affected_rows() == 1;
      } else {
        // The queued writes and the guarded checkpoint write in one round trip, the checkpoint
        // write last (its statement must be prepared on the server to be queued).
        {
          const StatementDeadline deadline(*this);
          session_->connection.ready_to_queue(sql::kCommitCheckpointName);
        }
        const std::vector<Param> params = {value(lease_.projection),
                                           value(lease_.fencing_token),
                                           value(std::to_string(checkpoint_.commit())),
                                           value(checkpoint_.sequence()),
                                           value(std::to_string(checkpoint.commit())),
                                           value(checkpoint.sequence()),
                                           value(lease_.owner)};
        session_->connection.queue(pending_writes(), sql::kCommitCheckpointName, params);
        const StatementDeadline deadline(*this);
        committable = pending_writes().send(*tx) == 1;
      }
      if (committable) {
        const StatementDeadline deadline(*this);
        tx->commit();
        tx_.reset();
        return;
      }
    } catch (const detail::PipelineRefusal& e) {
      tx_.reset();
      if (e.index() < queued) deferred_failed(e, queued);
      failed_commit(e, what);  // the checkpoint write itself
    } catch (const std::exception& e) {
      tx_.reset();
      failed_commit(e, what);
    }
    // Refused: learn why for the message (the same transaction still reads fine), then roll
    // back everything this batch wrote.
    std::string why = "the projection is no longer registered";
    try {
      const StatementDeadline deadline(*this);
      const auto rows = exec_statement(*tx, sql::kCheckpointName, lease_.projection);
      if (!rows.empty()) {
        const auto stored = position_of(rows[0][0], rows[0][1], "checkpoint transaction id");
        const auto token = rows[0][2].as<std::int64_t>();
        if (token != lease_.fencing_token) {
          why = "the lease was taken over (fencing token now " + std::to_string(token) + ")";
        } else if (rows[0][3].is_null() || lease_.owner != rows[0][3].c_str()) {
          why = "the lease was released";
        } else {
          why =
              "the checkpoint moved from " + checkpoint_.to_string() + " to " + stored.to_string();
        }
      }
      tx_.reset();
    } catch (const std::exception& e) {
      tx_.reset();
      failed_commit(e, what);
    }
    throw OwnershipLostError(what + " refused: " + why + "; nothing was committed");
  }

  void commit_layout(const LayoutChange& change) override {
    const std::string what = describe(lease_.projection) + ": commit a partition layout change";
    static_cast<void>(open(what));
    check_layout_names(change, what);
    set_pipelined(false);  // sends what is queued: the change commits with it
    const auto tx = open(what);
    std::string refusal;
    try {
      const StatementDeadline deadline(*this);
      for (const auto& held : change.held) {
        if (tx->exec_params(sql::kLayoutHeld, held.projection, held.owner, held.fencing_token)
                .empty()) {
          refusal =
              "the lease of '" + held.owner + "' on '" + held.projection + "' is no longer current";
          break;
        }
      }
      if (refusal.empty() &&
          tx->exec_params(sql::kLayoutCheckpointAt, lease_.projection,
                          std::to_string(checkpoint_.commit()), checkpoint_.sequence())
              .empty()) {
        refusal =
            "the checkpoint of '" + lease_.projection + "' moved from " + checkpoint_.to_string();
      }
      if (refusal.empty()) {
        for (const auto& name : change.remove) {
          const auto open_letter = tx->exec_params(sql::kLayoutOpenDeadLetter, name);
          if (!open_letter.empty()) {
            tx_.reset();
            throw InvalidArgumentError(about_row(what, name, "has open dead letter ") +
                                       open_letter[0][0].c_str() + "; retry or skip it first");
          }
          if (tx->exec_params(sql::kLayoutRemove, name).affected_rows() != 1) {
            tx_.reset();
            throw InvalidArgumentError(about_row(what, name, "to remove is not registered"));
          }
        }
        for (const auto& name : change.fence) {
          if (tx->exec_params(sql::kLayoutFence, name).affected_rows() != 1) {
            tx_.reset();
            throw InvalidArgumentError(about_row(what, name, "to fence is not registered"));
          }
        }
        for (const auto& name : change.place) {
          static_cast<void>(tx->exec_params(
              sql::kLayoutPlace, name, std::to_string(change.at.commit()), change.at.sequence()));
        }
        tx->commit();
        tx_.reset();
        return;
      }
      tx_.reset();
    } catch (const annals::Error&) {
      throw;
    } catch (const std::exception& e) {
      tx_.reset();
      failed_commit(e, what);
    }
    throw OwnershipLostError(what + " refused: " + refusal + "; nothing was committed");
  }

 private:
  // Every row named once, names valid, this batch's lease among the held ones.
  void check_layout_names(const LayoutChange& change, const std::string& what) const {
    std::set<std::string> named;
    for (const auto* rows : {&change.remove, &change.fence, &change.place}) {
      for (const auto& name : *rows) {
        validate_projection_name(name);
        if (!named.insert(name).second) {
          throw InvalidArgumentError(about_row(what, name, "is named twice"));
        }
      }
    }
    const bool own_held = std::any_of(change.held.begin(), change.held.end(), [&](const Lease& l) {
      return l.projection == lease_.projection && l.owner == lease_.owner &&
             l.fencing_token == lease_.fencing_token;
    });
    if (!own_held) {
      throw InvalidArgumentError(what + ": the batch's own lease is not among the held ones");
    }
  }

  pqxx::work* open(const std::string& what) {
    if (!tx_) throw InvalidArgumentError(what + ": the batch is already committed or failed");
    return tx_.get();
  }

  // A failure while committing: a broken connection leaves the outcome unknown (the COMMIT may
  // have reached the server); anything else rolled the transaction back.
  [[noreturn]] void failed_commit(const std::exception& e, const std::string& what) {
    if (dynamic_cast<const annals::Error*>(&e) != nullptr) throw;
    if (postgres::detail::classify(e) == postgres::detail::Failure::kBrokenConnection) {
      set_broken();
      postgres::detail::rethrow_translated(e, what, true);
    }
    fail(e, what);
  }

  Lease lease_;
  Position checkpoint_;
  SessionPool::Lease session_;
  std::unique_ptr<pqxx::work> tx_;
  bool entered_ = false;                       // enter_read_schema() ran
  std::vector<std::uint64_t> inline_applied_;  // read by enter_read_schema()
};

// --- The store ---------------------------------------------------------------------------------

class PostgresProjectionStore final : public ProjectionStore {
 public:
  explicit PostgresProjectionStore(PostgresProjectionStoreOptions options)
      : options_(std::move(options)),
        watchdog_(options_.call_timeout),
        pool_(postgres::detail::with_timeouts(options_.connection_string,
                                              options_.connection_timeouts),
              options_.pool_size, statement_setup(options_.prepare_statements),
              options_.acquire_timeout) {
    if (options_.session_liveness) {
      presence_ = std::make_unique<detail::Presence>(postgres::detail::with_timeouts(
          options_.session_connection_string.empty() ? options_.connection_string
                                                     : options_.session_connection_string,
          options_.connection_timeouts));
    }
    const auto rows = call("open projection store", [](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return tx.exec(sql::kSchemaPresent);
    });
    if (!rows[0][0].as<bool>()) {
      throw NotFoundError(
          "the annals.projections table is missing from the database; run `annals migrate`");
    }
  }

  void prepare(Projection& projection) override {
    const auto name = projection.name();
    validate_projection_name(name);
    const auto register_and_set_up = [&](SessionPool::Lease& session) {
      pqxx::work tx(session->connection);
      exec_statement(tx, sql::kRegisterName, name);
      SetupWork work(name, *session, tx);
      try {
        projection.setup(work);
      } catch (...) {
        if (work.broken()) session.discard();
        throw;
      }
      tx.commit();
    };
    // An annals error from setup() (or a statement of it, already translated) passes as it is.
    // The whole of it (with its retries) is bounded by prepare_timeout.
    auto policy = retry_policy();
    policy.call_timeout = options_.prepare_timeout;
    postgres::detail::run_pooled(pool_, "prepare " + describe(name), nullptr, policy,
                                 register_and_set_up);
  }

  std::optional<Lease> try_acquire(const std::string& projection, const std::string& owner,
                                   std::chrono::milliseconds ttl) override {
    validate_owner(owner);
    const auto millis = ttl_millis(ttl, projection);
    const auto key = presence_key();
    const auto rows =
        call("acquire lease of " + describe(projection), [&](pqxx::connection& connection) {
          pqxx::nontransaction tx(connection);
          auto result =
              exec_statement(tx, sql::kAcquireName, projection, owner, millis, optional_key(key));
          if (result.empty()) require_exists(tx, projection);
          return result;
        });
    auto lease = lease_of(rows, projection);
    if (lease && key && !recorded_session(rows)) return renew_under_new_presence(*lease, *key, ttl);
    return lease;
  }

  std::optional<Lease> renew(const Lease& lease, std::chrono::milliseconds ttl) override {
    const auto key = presence_key();
    const auto rows = renew_with(lease, ttl, key);
    auto renewed = lease_of(rows, lease.projection);
    if (renewed && key && !recorded_session(rows)) {
      return renew_under_new_presence(*renewed, *key, ttl);
    }
    return renewed;
  }

  void release(const Lease& lease) override {
    call("release lease of " + describe(lease.projection), [&](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return exec_statement(tx, sql::kReleaseName, lease.projection, lease.owner,
                            lease.fencing_token);
    });
  }

  Position checkpoint(const std::string& projection) override {
    const auto rows =
        call("read checkpoint of " + describe(projection), [&](pqxx::connection& connection) {
          pqxx::nontransaction tx(connection);
          return exec_statement(tx, sql::kCheckpointName, projection);
        });
    if (rows.empty()) throw not_found(projection);
    return position_of(rows[0][0], rows[0][1], "checkpoint transaction id");
  }

  std::unique_ptr<Batch> begin(const Lease& lease, Position checkpoint) override {
    // A pooled connection may have broken while idle; BEGIN finds out, and the batch starts
    // on a new one.
    return postgres::detail::run_pooled(
        pool_, "begin a batch of " + describe(lease.projection), nullptr, retry_policy(),
        [&](SessionPool::Lease& session) -> std::unique_ptr<Batch> {
          auto tx = std::make_unique<pqxx::work>(session->connection);
          return std::make_unique<PostgresBatch>(lease, checkpoint, std::move(session),
                                                 std::move(tx), watchdog_,
                                                 options_.batch_statement_timeout);
        });
  }

  void report(const Lease& lease, const ProjectionReport& report) override {
    call("report on " + describe(lease.projection), [&](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return exec_statement(tx, sql::kReportName, lease.projection, lease.owner,
                            lease.fencing_token, report.state, optional_value(report.last_error),
                            report.events_applied);
    });
  }

  std::vector<ProjectionRecord> list() override {
    const auto rows = call("list projections", [](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return exec_statement(tx, sql::kListName);
    });
    std::vector<ProjectionRecord> records;
    records.reserve(rows.size());
    for (const auto& row : rows) {
      records.push_back(ProjectionRecord{
          .name = row[0].c_str(),
          .checkpoint = position_of(row[1], row[2], "checkpoint transaction id"),
          .owner = optional_text(row[3]),
          .lease_expires_at =
              row[4].is_null()
                  ? std::nullopt
                  : std::optional<std::chrono::system_clock::time_point>(time_of(row[4])),
          .fencing_token = row[5].as<std::int64_t>(),
          .state = row[6].c_str(),
          .last_error = optional_text(row[7]),
          .events_applied = row[8].as<std::int64_t>(),
          .updated_at = time_of(row[9]),
          .owned = row[10].as<bool>(),
          .read_schema = optional_text(row[11]),
      });
    }
    return records;
  }

  std::vector<DeadLetter> list_dead_letters(const DeadLetterQuery& query) override {
    const auto limit =
        query.max_count > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())
            ? std::numeric_limits<std::int64_t>::max()
            : static_cast<std::int64_t>(query.max_count);
    const auto rows = call("list dead letters", [&](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return exec_statement(tx, sql::kListDeadLettersName, optional_value(query.projection),
                            query.state ? value(to_string(*query.state)) : null_param(),
                            value(limit));
    });
    std::vector<DeadLetter> letters;
    letters.reserve(rows.size());
    for (const auto& row : rows) letters.push_back(decode_dead_letter(row));
    return letters;
  }

  void request_retry(std::int64_t id) override {
    transition(id, DeadLetterState::kRetryRequested,
               {DeadLetterState::kParked, DeadLetterState::kRetryRequested}, "request a retry of");
  }

  void skip(std::int64_t id) override {
    transition(
        id, DeadLetterState::kSkipped,
        {DeadLetterState::kParked, DeadLetterState::kRetryRequested, DeadLetterState::kSkipped},
        "skip");
  }

  void retry_failed(std::int64_t id, const std::string& error) override {
    const std::string what = "record a failed retry of dead letter " + std::to_string(id);
    const auto updated = call(what, [&](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return exec_statement(tx, sql::kRetryFailedName, id, error);
    });
    if (updated.affected_rows() == 0) throw NotFoundError(what + ": no such dead letter");
  }

  RebuildRequest request_rebuild(const std::string& projection) override {
    const std::string what = "request a rebuild of " + describe(projection);
    // An insert that conflicts with an open request committed after this statement's snapshot
    // returns no row and cannot see it either; the next statement can, hence the loop.
    for (int attempt = 0; attempt < 8; ++attempt) {
      const auto rows = call(what, [&](pqxx::connection& connection) {
        pqxx::nontransaction tx(connection);
        auto inserted = exec_statement(tx, sql::kRequestRebuildName, projection);
        if (!inserted.empty()) return inserted;
        auto open = exec_statement(tx, sql::kOpenRebuildName, projection);
        if (open.empty()) require_exists(tx, projection);
        return open;
      });
      if (!rows.empty()) return decode_rebuild(rows[0]);
    }
    throw UnavailableError(what + ": the open request kept changing; try again");
  }

  std::optional<RebuildRequest> rebuild_request(std::int64_t id) override {
    const auto rows =
        call("read rebuild request " + std::to_string(id), [&](pqxx::connection& connection) {
          pqxx::nontransaction tx(connection);
          return exec_statement(tx, sql::kRebuildRequestName, id);
        });
    if (rows.empty()) return std::nullopt;
    return decode_rebuild(rows[0]);
  }

  std::optional<RebuildRequest> open_rebuild(const std::string& projection) override {
    const auto rows =
        call("read the open rebuild of " + describe(projection), [&](pqxx::connection& connection) {
          pqxx::nontransaction tx(connection);
          return exec_statement(tx, sql::kOpenRebuildName, projection);
        });
    if (rows.empty()) return std::nullopt;
    return decode_rebuild(rows[0]);
  }

  void update_rebuild(const RebuildRequest& request) override {
    const std::string what = "update rebuild request " + std::to_string(request.id);
    const auto position_params = [](const std::optional<Position>& p) {
      return p ? std::pair{value(std::to_string(p->commit())), value(p->sequence())}
               : std::pair{null_param(), null_param()};
    };
    const auto [target_tx, target_position] = position_params(request.target);
    const auto [progress_tx, progress_position] = position_params(request.progress);
    const auto updated = call(what, [&](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return exec_statement(tx, sql::kUpdateRebuildName, request.id, to_string(request.state),
                            target_tx, target_position, progress_tx, progress_position,
                            optional_value(request.message));
    });
    if (updated.affected_rows() == 0) throw NotFoundError(what + ": no such request");
  }

 private:
  // This store's presence key, when session liveness is on and the presence session is up.
  std::optional<std::int64_t> presence_key() { return presence_ ? presence_->key() : std::nullopt; }

  pqxx::result renew_with(const Lease& lease, std::chrono::milliseconds ttl,
                          std::optional<std::int64_t> key) {
    const auto millis = ttl_millis(ttl, lease.projection);
    return call("renew lease of " + describe(lease.projection), [&](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return exec_statement(tx, sql::kRenewName, lease.projection, lease.owner, lease.fencing_token,
                            millis, optional_key(key));
    });
  }

  // A lease statement found the presence lock `dead` free: the presence session ended while
  // this process lives. Reopens it and records the new key in `lease` at once, so that the
  // lease is watched again; if the presence cannot be reopened, the lease stays on its expiry.
  std::optional<Lease> renew_under_new_presence(const Lease& lease, std::int64_t dead,
                                                std::chrono::milliseconds ttl) {
    presence_->lost(dead);
    const auto key = presence_->key();
    if (!key) return lease;
    return lease_of(renew_with(lease, ttl, key), lease.projection);
  }

  // Runs one autocommit call on a pooled session. Every call of this store may be repeated
  // (see the file comment), so a broken connection is retried on a new one and reported as
  // UnavailableError only when that keeps failing.
  template <typename F>
  pqxx::result call(const std::string& what, F&& f) {
    return postgres::detail::run_pooled(pool_, what, nullptr, retry_policy(),
                                        [&](Session& session) { return f(session.connection); });
  }

  void transition(std::int64_t id, DeadLetterState to, std::initializer_list<DeadLetterState> from,
                  const char* verb) {
    const std::string what = std::string(verb) + " dead letter " + std::to_string(id);
    const auto allowed = state_array(from);
    const auto rows = call(what, [&](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return exec_statement(tx, sql::kTransitionDeadLetterName, id, to_string(to), allowed);
    });
    if (rows.empty()) throw NotFoundError(what + ": no such dead letter");
    if (!rows[0][1].as<bool>()) {
      throw InvalidArgumentError(what + ": it is already " + rows[0][0].c_str());
    }
  }

  static NotFoundError not_found(const std::string& projection) {
    return NotFoundError(describe(projection) +
                         " is not registered (ProjectionStore::prepare() registers it)");
  }

  static void require_exists(pqxx::transaction_base& tx, const std::string& projection) {
    if (exec_statement(tx, sql::kExistsName, projection).empty()) throw not_found(projection);
  }

  static void validate_owner(const std::string& owner) {
    if (owner.empty() || owner.size() > 200) {
      throw InvalidArgumentError("lease owner must be 1 to 200 bytes, got " +
                                 std::to_string(owner.size()));
    }
    for (const char c : owner) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        throw InvalidArgumentError("lease owner \"" + owner + "\" contains a control character");
      }
    }
  }

  // kRetryPolicy bounded by the call timeout, enforced by the store's watchdog.
  [[nodiscard]] postgres::detail::RetryPolicy retry_policy() noexcept {
    auto policy = kRetryPolicy;
    policy.call_timeout = options_.call_timeout;
    policy.watchdog = &watchdog_;
    return policy;
  }

  PostgresProjectionStoreOptions options_;
  postgres::detail::Watchdog watchdog_;
  SessionPool pool_;
  std::unique_ptr<detail::Presence> presence_;  // null when session liveness is off
};

}  // namespace

std::unique_ptr<ProjectionStore> make_postgres_projection_store(
    PostgresProjectionStoreOptions options) {
  if (options.connection_string.empty()) {
    throw InvalidArgumentError("PostgresProjectionStoreOptions::connection_string is empty");
  }
  if (options.pool_size == 0) {
    throw InvalidArgumentError("PostgresProjectionStoreOptions::pool_size must be at least 1");
  }
  constexpr std::string_view kOwner = "PostgresProjectionStoreOptions";
  postgres::detail::validate_timeouts(options.connection_timeouts, kOwner);
  postgres::detail::validate_duration(options.acquire_timeout, kOwner, "acquire_timeout", false);
  postgres::detail::validate_duration(options.call_timeout, kOwner, "call_timeout", false);
  postgres::detail::validate_duration(options.batch_statement_timeout, kOwner,
                                      "batch_statement_timeout", false);
  postgres::detail::validate_duration(options.prepare_timeout, kOwner, "prepare_timeout", false);
  return std::make_unique<PostgresProjectionStore>(std::move(options));
}

}  // namespace annals::projections
