#include "libpq_connection.hpp"

#include <libpq-fe.h>

#include <array>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "db_error.hpp"

namespace annals::postgres::detail {
namespace {

struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using OwnedResult = std::unique_ptr<PGresult, ResultDeleter>;

bool is_error(ExecStatusType status) noexcept {
  return status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_SINGLE_TUPLE;
}

// The server refused a statement: its message, with the SQLSTATE when it sent one.
[[noreturn]] void throw_server_error(const PGresult* result) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  throw DbError::refused(PQresultErrorMessage(result), state == nullptr ? "" : state);
}

}  // namespace

LibpqConnection::LibpqConnection(const std::string& connection_string)
    : connection_(PQconnectdb(connection_string.c_str())) {
  if (connection_ == nullptr) throw DbError::broken("libpq: out of memory", false);
  if (PQstatus(connection_) != CONNECTION_OK) {
    const std::string message = PQerrorMessage(connection_);
    PQfinish(connection_);
    throw DbError::broken(message, false);
  }
}

LibpqConnection::~LibpqConnection() { PQfinish(connection_); }

void LibpqConnection::throw_connection_error(const std::string& what) const {
  // Every caller had started a request (or was reading what one sent): it may have arrived.
  throw DbError::broken(what + ": " + PQerrorMessage(connection_), true);
}

LibpqConnection::Result::Result(Result&& other) noexcept
    : result_(std::exchange(other.result_, nullptr)) {}

LibpqConnection::Result& LibpqConnection::Result::operator=(Result&& other) noexcept {
  if (this != &other) {
    PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

LibpqConnection::Result::~Result() { PQclear(result_); }

int LibpqConnection::Result::rows() const noexcept {
  return result_ == nullptr ? 0 : PQntuples(result_);
}

bool LibpqConnection::Result::is_null(int row, int column) const noexcept {
  return PQgetisnull(result_, row, column) != 0;
}

std::string_view LibpqConnection::Result::text(int row, int column) const noexcept {
  return std::string_view(PQgetvalue(result_, row, column),
                          static_cast<std::size_t>(PQgetlength(result_, row, column)));
}

LibpqConnection::Result LibpqConnection::checked(PGresult* raw, const char* what) const {
  Result result(raw);
  if (PQstatus(connection_) != CONNECTION_OK || raw == nullptr) throw_connection_error(what);
  if (is_error(PQresultStatus(raw))) throw_server_error(raw);
  return result;
}

Watchdog::Call LibpqConnection::progress() const {
  if (watchdog_ == nullptr) return Watchdog::Call(nullptr, -1, {});
  return Watchdog::Call(watchdog_, socket(), Watchdog::Clock::now() + progress_timeout_);
}

const char* LibpqConnection::unnamed_sql(const char* name) const {
  if (!unnamed_) return nullptr;
  for (const auto& [recorded, sql] : statements_) {
    if (recorded == name) return sql.c_str();
  }
  throw std::invalid_argument(std::string("statement ") + name + " was not prepared");
}

void LibpqConnection::prepare(const char* name, const char* sql) {
  if (unnamed_) {
    statements_.emplace_back(name, sql);
    return;
  }
  const auto waiting = progress();
  checked(PQprepare(connection_, name, sql, 0, nullptr), sql);
}

LibpqConnection::Result LibpqConnection::exec_prepared(const char* name,
                                                       std::span<const char* const> values) {
  const auto waiting = progress();
  if (const char* sql = unnamed_sql(name)) {
    return checked(PQexecParams(connection_, sql, static_cast<int>(values.size()), nullptr,
                                values.data(), nullptr, nullptr, 0),
                   name);
  }
  return checked(PQexecPrepared(connection_, name, static_cast<int>(values.size()), values.data(),
                                nullptr, nullptr, 0),
                 name);
}

LibpqConnection::Result LibpqConnection::exec_prepared_params(const char* name,
                                                              std::span<const Param> params) {
  constexpr std::size_t kMost = 16;
  if (params.size() > kMost) throw std::invalid_argument("exec_prepared: too many parameters");
  std::array<const char*, kMost> values{};
  std::array<int, kMost> lengths{};
  std::array<int, kMost> formats{};
  for (std::size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].data;
    lengths[i] = params[i].length;
    formats[i] = params[i].binary ? 1 : 0;
  }
  const auto waiting = progress();
  if (const char* sql = unnamed_sql(name)) {
    // No parameter types: the statements cast every parameter, so the server knows them.
    return checked(PQexecParams(connection_, sql, static_cast<int>(params.size()), nullptr,
                                values.data(), lengths.data(), formats.data(), 0),
                   name);
  }
  return checked(PQexecPrepared(connection_, name, static_cast<int>(params.size()), values.data(),
                                lengths.data(), formats.data(), 0),
                 name);
}

std::vector<LibpqConnection::Result> LibpqConnection::exec_prepared_pipelined(
    const char* name, std::span<const std::span<const char* const>> parameter_sets) {
  // A connection left in pipeline mode or with results unread would fail its next user, so
  // every way out but success says "broken": the pool then discards the connection.
  const char* sql = unnamed_sql(name);
  if (PQenterPipelineMode(connection_) != 1) throw_connection_error(name);
  for (const auto& values : parameter_sets) {
    const int sent = sql != nullptr
                         ? PQsendQueryParams(connection_, sql, static_cast<int>(values.size()),
                                             nullptr, values.data(), nullptr, nullptr, 0)
                         : PQsendQueryPrepared(connection_, name, static_cast<int>(values.size()),
                                               values.data(), nullptr, nullptr, 0);
    if (sent != 1) throw_connection_error(name);
  }
  if (PQpipelineSync(connection_) != 1) throw_connection_error(name);
  // Each statement's results end with a null result; the Sync's own result ends the pipeline.
  // After a refusal the remaining statements report PGRES_PIPELINE_ABORTED.
  std::vector<Result> results(parameter_sets.size());
  OwnedResult refused;
  std::size_t statement = 0;
  for (;;) {
    OwnedResult result(PQgetResult(connection_));
    if (result == nullptr) {
      if (PQstatus(connection_) != CONNECTION_OK) throw_connection_error(name);
      ++statement;
      continue;
    }
    const auto status = PQresultStatus(result.get());
    if (status == PGRES_PIPELINE_SYNC) break;
    if (status == PGRES_PIPELINE_ABORTED) continue;
    if (is_error(status)) {
      if (!refused) refused = std::move(result);
    } else if (statement < results.size()) {
      results[statement] = Result(result.release());
    }
  }
  if (PQexitPipelineMode(connection_) != 1) throw_connection_error(name);
  if (refused) throw_server_error(refused.get());
  return results;
}

LibpqConnection::Result LibpqConnection::exec(const char* sql) {
  const auto waiting = progress();
  return checked(PQexec(connection_, sql), sql);
}

void LibpqConnection::copy_out(const char* copy_sql,
                               const std::function<void(std::string_view)>& on_data) {
  {
    const auto waiting = progress();
    const OwnedResult start(PQexec(connection_, copy_sql));
    if (PQstatus(connection_) != CONNECTION_OK || start == nullptr) {
      throw_connection_error(copy_sql);
    }
    if (PQresultStatus(start.get()) != PGRES_COPY_OUT) throw_server_error(start.get());
  }
  std::exception_ptr failed;
  for (;;) {
    char* buffer = nullptr;
    const int length = [&] {
      const auto waiting = progress();
      return PQgetCopyData(connection_, &buffer, 0);
    }();
    if (length == -1) break;  // done; the final result follows
    if (length < 0) throw_connection_error(copy_sql);
    if (!failed) {
      try {
        on_data(std::string_view(buffer, static_cast<std::size_t>(length)));
      } catch (...) {
        failed = std::current_exception();  // read the rest, so the connection stays usable
      }
    }
    PQfreemem(buffer);
  }
  OwnedResult refused;
  for (;;) {
    const auto waiting = progress();
    PGresult* raw = PQgetResult(connection_);
    if (raw == nullptr) break;
    OwnedResult result(raw);
    if (is_error(PQresultStatus(raw)) && !refused) refused = std::move(result);
  }
  if (PQstatus(connection_) != CONNECTION_OK) throw_connection_error(copy_sql);
  if (failed) std::rethrow_exception(failed);
  if (refused) throw_server_error(refused.get());
}

int LibpqConnection::socket() const noexcept { return PQsocket(connection_); }

int LibpqConnection::take_notifications() {
  if (PQconsumeInput(connection_) != 1 || PQstatus(connection_) != CONNECTION_OK) {
    throw_connection_error("reading notifications");
  }
  int count = 0;
  while (PGnotify* notification = PQnotifies(connection_)) {
    PQfreemem(notification);
    ++count;
  }
  return count;
}

void LibpqConnection::send_statement_timeout(const char* statement_timeout, const char* what) {
  static constexpr const char* kSet = "SELECT pg_catalog.set_config('statement_timeout', $1, true)";
  if (PQenterPipelineMode(connection_) != 1) throw_connection_error(what);
  const std::array<const char*, 1> values{statement_timeout};
  if (PQsendQueryParams(connection_, kSet, 1, nullptr, values.data(), nullptr, nullptr, 0) != 1) {
    throw_connection_error(what);
  }
}

PGresult* LibpqConnection::take_setting_results(const char* what) {
  OwnedResult refused;
  while (PGresult* raw = PQgetResult(connection_)) {
    OwnedResult result(raw);
    if (is_error(PQresultStatus(raw)) && !refused) refused = std::move(result);
  }
  if (PQstatus(connection_) != CONNECTION_OK) throw_connection_error(what);
  return refused.release();
}

void LibpqConnection::end_pipeline(const char* what) {
  for (;;) {
    const OwnedResult result(PQgetResult(connection_));
    if (PQstatus(connection_) != CONNECTION_OK) throw_connection_error(what);
    if (result != nullptr && PQresultStatus(result.get()) == PGRES_PIPELINE_SYNC) break;
  }
  if (PQexitPipelineMode(connection_) != 1) throw_connection_error(what);
}

void LibpqConnection::stream_prepared(const char* name, std::span<const char* const> values,
                                      const std::function<void(Row)>& on_row,
                                      const char* statement_timeout, bool binary_results) {
  const bool limited = statement_timeout != nullptr;
  const char* sql = unnamed_sql(name);
  if (limited) send_statement_timeout(statement_timeout, name);
  const int result_format = binary_results ? 1 : 0;
  const int sent = sql != nullptr
                       ? PQsendQueryParams(connection_, sql, static_cast<int>(values.size()),
                                           nullptr, values.data(), nullptr, nullptr, result_format)
                       : PQsendQueryPrepared(connection_, name, static_cast<int>(values.size()),
                                             values.data(), nullptr, nullptr, result_format);
  if (sent != 1) throw_connection_error(name);
  OwnedResult refused;  // the server's first error, if any
  if (limited) {
    if (PQpipelineSync(connection_) != 1) throw_connection_error(name);
    // In pipeline mode single-row mode applies to the statement whose results come next, so it
    // is set once the setting's results are read.
    refused.reset(take_setting_results(name));
  }
  // Only fails when no query is in progress, which cannot be the case here.
  PQsetSingleRowMode(connection_);
  std::exception_ptr failed;
  for (;;) {
    OwnedResult result;
    {
      const auto waiting = progress();
      result.reset(PQgetResult(connection_));
    }
    if (result == nullptr) break;
    const auto status = PQresultStatus(result.get());
    if (status == PGRES_SINGLE_TUPLE) {
      if (failed || refused) continue;  // drain
      const int columns = PQnfields(result.get());
      fields_.resize(static_cast<std::size_t>(columns));
      for (int i = 0; i < columns; ++i) {
        fields_[static_cast<std::size_t>(i)] =
            PQgetisnull(result.get(), 0, i) != 0
                ? std::string_view()
                : std::string_view(PQgetvalue(result.get(), 0, i),
                                   static_cast<std::size_t>(PQgetlength(result.get(), 0, i)));
      }
      try {
        on_row(Row(fields_));
      } catch (...) {
        failed = std::current_exception();
      }
    } else if (is_error(status) && status != PGRES_PIPELINE_ABORTED && !refused) {
      refused = std::move(result);
    }
  }
  if (limited) end_pipeline(name);
  if (PQstatus(connection_) != CONNECTION_OK) throw_connection_error(name);
  if (failed) std::rethrow_exception(failed);
  if (refused) throw_server_error(refused.get());
}

}  // namespace annals::postgres::detail
