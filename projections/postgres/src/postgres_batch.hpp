// Internal: what the PostgreSQL ProjectionStore and ReadModel share: pooled sessions with their
// cache of prepared statements, and the context through which a ReadModelProjection writes
// inside a unit of work of the store (queueing its writes in a pipelined batch).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>
#include <pqxx/pqxx>

#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/documents.hpp"
#include "connection_pool.hpp"
#include "statement_connection.hpp"
#include "watchdog.hpp"
#include "write_pipeline.hpp"

namespace annals::projections::detail {

/// The library's one logger helper (annals/eventstore/detail/logger.hpp).
using annals::detail::logger;

/// A database connection with the store's statements prepared, and the read-model statements
/// prepared on it so far (prepared once per connection per distinct statement).
struct Session {
  explicit Session(const std::string& connection_string);

  struct Statement {
    std::string name;
    std::size_t parameters = 0;
    /// Prepared on the server already, so that its executions can be queued in a
    /// WritePipeline (PostgresContext::defer); otherwise prepared by libpqxx on first use.
    bool deferred = false;
  };

  /// The statement cached under `key`, or nullptr.
  const Statement* find(const std::string& key) const;
  /// Registers `sql` (prepared by libpqxx on first use) under a new name and caches it.
  const Statement& add(const std::string& key, const std::string& sql, std::size_t parameters);
  /// Registers `sql` like add() and has the server parse it at once (StatementConnection::check:
  /// prepared in the session's open transaction, where a prepared statement outlives a
  /// rollback; or parsed unnamed), so that its executions can be queued
  /// (PostgresContext::defer).
  /// Throws: the driver's error (the transaction is then aborted).
  const Statement& add_deferred(const std::string& key, const std::string& sql,
                                std::size_t parameters);

  StatementConnection connection;
  std::unordered_map<std::string, Statement> statements;
  /// Names given to read-model statements so far (never reused, even after a failure).
  std::size_t names = 0;
};

/// The session's socket, for the store's watchdog (postgres::detail::run_pooled).
inline int socket_of(Session& session) noexcept { return session.connection.sock(); }

/// A thread-safe pool of sessions, opened lazily up to a maximum: the event store's pool
/// (a session whose connection broke is discarded, and the next acquire() opens a new one).
using SessionPool = postgres::detail::ConnectionPool<Session>;

/// The database transaction of a unit of work (a Batch, or prepare()'s setup), as seen by the
/// projection writing through it. Implemented by the store's units of work next to UnitOfWork,
/// so ReadModelProjection finds it with a cross-cast. It is also the DocumentWork of a
/// DocumentProjection (postgres_documents.cpp: its collections are jsonb tables written through
/// the same transaction, queued like ReadModel's writes).
class PostgresContext : public DocumentWork {
 public:
  PostgresContext() = default;
  PostgresContext(const PostgresContext&) = delete;
  PostgresContext& operator=(const PostgresContext&) = delete;
  ~PostgresContext() override;

  // DocumentWork (postgres_documents.cpp).
  void set_up_collections(const std::vector<CollectionSpec>& collections) override;
  Documents& documents(const std::vector<CollectionSpec>& collections) override;
  void clear_collections(const std::vector<CollectionSpec>& collections) override;
  [[nodiscard]] bool skip_applied(const Position& position) override {
    return applied_inline(position);
  }

  /// The projection the unit of work belongs to.
  [[nodiscard]] virtual const std::string& projection_name() const noexcept = 0;
  [[nodiscard]] virtual Session& session() noexcept = 0;
  [[nodiscard]] virtual pqxx::dbtransaction& transaction() noexcept = 0;

  /// Translates the driver failure being handled into an annals error (by SQLSTATE, in
  /// annals::postgres's translator), remembering a broken connection so that it is not
  /// returned to the pool. `what` names the operation for the message; `read_model` words it
  /// for a statement on the projection's own tables rather than on the annals schema.
  [[noreturn]] void fail(const std::exception& error, const std::string& what,
                         bool read_model = true);
  [[nodiscard]] bool broken() const noexcept { return broken_; }

  /// Whether the events of the transaction of `position` were applied inline already
  /// (sql/0016; inline_projections.cpp): a runner's batch then skips them. Enters the read
  /// schema first (enter_read_schema()). Default: never (not a runner's batch).
  /// Throws: the translated driver error (the batch is then aborted).
  [[nodiscard]] virtual bool applied_inline(const Position& position) {
    static_cast<void>(position);
    return false;
  }
  /// Puts the projection's read schema (sql/0016: the tables of its current generation) first
  /// on the transaction's search_path, once per unit of work, before the projection touches
  /// its tables. Default: nothing (an inline append enters it with its caught-up check).
  /// Throws: the translated driver error (the unit of work is then aborted).
  virtual void enter_read_schema() {}

  /// Queues an execution of `statement` (a deferred statement of session()) with `params` as
  /// bound parameters. Sent by flush_writes(), or at once when the queued values pass
  /// kMaxPendingBytes. Requires: no value contains a NUL byte.
  void defer(const Session::Statement& statement, const std::vector<Param>& params);
  /// Sends the queued executions in one round trip.
  /// Throws: DeferredWriteError (the transaction is aborted), UnavailableError (connection or
  /// server trouble).
  void flush_writes();
  [[nodiscard]] bool has_pending_writes() const noexcept { return !writes_.empty(); }
  /// Whether the helpers queue their writes (Batch::set_pipelined); off by default.
  [[nodiscard]] bool pipelined() const noexcept { return pipelined_; }

  /// Queued values beyond which defer() sends the queue at once (bounded memory).
  static constexpr std::size_t kMaxPendingBytes = std::size_t{1} << 20;

  /// The deadline of one statement of the unit of work (a batch's statements get
  /// PostgresProjectionStoreOptions::batch_statement_timeout): from construction to
  /// destruction, the store's watchdog shuts the session's socket down if the statement is
  /// still waiting for the server at the deadline; the statement then fails as a broken
  /// connection (UnavailableError; OutcomeUnknownError for a COMMIT), and the session is
  /// discarded. Arms nothing in a unit of work without a statement deadline (prepare()'s
  /// setup, which is bounded as a whole). Thread safety: the unit of work's thread only.
  class StatementDeadline {
   public:
    explicit StatementDeadline(PostgresContext& context);
    StatementDeadline(const StatementDeadline&) = delete;
    StatementDeadline& operator=(const StatementDeadline&) = delete;
    ~StatementDeadline();

   private:
    PostgresContext& context_;
    postgres::detail::Watchdog::Call call_;
  };

 protected:
  void set_broken() noexcept { broken_ = true; }
  /// Gives each statement of this unit of work a deadline (StatementDeadline); `timeout`
  /// from the start of each.
  void set_statement_deadline(postgres::detail::Watchdog* watchdog,
                              std::chrono::milliseconds timeout) noexcept {
    watchdog_ = watchdog;
    statement_timeout_ = timeout;
  }
  void set_pipelined_flag(bool pipelined) noexcept { pipelined_ = pipelined; }
  /// The queued executions, for a commit to send its checkpoint write with them.
  [[nodiscard]] WritePipeline& pending_writes() noexcept { return writes_; }
  /// Translates a failure of sending `count` queued executions: UnavailableError stays, every
  /// other error becomes a DeferredWriteError whose cause() is the translated error.
  [[noreturn]] void deferred_failed(const std::exception& error, std::size_t count);

 private:
  bool broken_ = false;
  bool pipelined_ = false;
  WritePipeline writes_;
  postgres::detail::Watchdog* watchdog_ = nullptr;  // null: no statement deadline
  std::chrono::milliseconds statement_timeout_{0};
  std::unique_ptr<Documents> documents_;  // made by the first documents()
};

}  // namespace annals::projections::detail

namespace pqxx {

/// Lets a Param (value or NULL) travel through exec_prepared and make_dynamic_params.
template <>
struct string_traits<annals::projections::detail::Param> {
  using Param = annals::projections::detail::Param;
  static constexpr const char* name() noexcept { return "annals::projections::detail::Param"; }
  static constexpr bool has_null() noexcept { return true; }
  static bool is_null(const Param& p) { return p.is_null; }
  static Param null() { return Param{{}, true}; }
  static void from_string(const char str[], Param& p) { p = Param{str, false}; }
  static std::string to_string(const Param& p) { return p.text; }
};

}  // namespace pqxx
