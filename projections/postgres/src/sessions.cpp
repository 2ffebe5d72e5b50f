// Pooled sessions of the PostgreSQL projection store with their prepared statements, and the
// context through which a read model writes inside a unit of work (postgres_batch.hpp).
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

namespace annals::projections::detail {

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

}  // namespace annals::projections::detail
