// The PostgreSQL projection store's Batch: one transaction on one pooled session, from begin()
// to commit() or destruction (projection_batch.hpp).
#include "projection_batch.hpp"

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
#include "store_rows.hpp"

namespace annals::projections::detail {
namespace {

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

}  // namespace

std::unique_ptr<Batch> make_batch(Lease lease, Position checkpoint, SessionPool::Lease session,
                                  std::unique_ptr<pqxx::work> tx,
                                  postgres::detail::Watchdog& watchdog,
                                  std::chrono::milliseconds statement_timeout) {
  return std::make_unique<PostgresBatch>(std::move(lease), checkpoint, std::move(session),
                                         std::move(tx), watchdog, statement_timeout);
}

}  // namespace annals::projections::detail
