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
#include "projection_batch.hpp"
#include "sql.hpp"
#include "statement_connection.hpp"
#include "store_rows.hpp"

namespace annals::projections {

namespace {

using detail::decode_dead_letter;
using detail::decode_rebuild;
using detail::describe;
using detail::exec_statement;
using detail::lease_of;
using detail::null_param;
using detail::optional_key;
using detail::optional_text;
using detail::optional_value;
using detail::Param;
using detail::position_of;
using detail::PostgresContext;
using detail::recorded_session;
using detail::Session;
using detail::SessionPool;
using detail::state_array;
using detail::time_of;
using detail::ttl_millis;
using detail::value;

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
          return detail::make_batch(lease, checkpoint, std::move(session), std::move(tx), watchdog_,
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
