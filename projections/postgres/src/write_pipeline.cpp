#include "write_pipeline.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <memory>
#include <string>
#include <string_view>

#include <pqxx/largeobject>

namespace annals::projections::detail {
namespace {

// libpqxx 6.4 has no public accessor to a connection's PGconn (ECOSYSTEM 3). It exports one,
// protected and static, to its large-object classes, and a derived class may call it. The
// queued writes must run on that connection, inside the transaction libpqxx opened there;
// libpqxx itself can pipeline only text without parameters (pqxx::pipeline).
class RawConnection : private pqxx::largeobject {
 public:
  static PGconn* of(const pqxx::dbtransaction& tx) { return raw_connection(tx); }
};

struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using OwnedResult = std::unique_ptr<PGresult, ResultDeleter>;

[[noreturn]] void throw_broken(PGconn* connection, const char* doing) {
  throw postgres::detail::DbError::broken(
      std::string("sending queued read-model writes: ") + doing + ": " + PQerrorMessage(connection),
      true);
}

std::int64_t affected_rows(PGresult* result) noexcept {
  const std::string_view text = PQcmdTuples(result);
  std::int64_t rows = 0;
  std::from_chars(text.data(), text.data() + text.size(), rows);
  return rows;
}

}  // namespace

void WritePipeline::add(std::string_view statement, std::span<const Param> params) {
  add_execution(statement, params, false);
}

void WritePipeline::add_unnamed(std::string_view sql, std::span<const Param> params) {
  add_execution(sql, params, true);
}

void WritePipeline::add_execution(std::string_view statement, std::span<const Param> params,
                                  bool unnamed) {
  executions_.push_back(Execution{text_.size(), params_.size(), params.size(), unnamed});
  text_.append(statement);
  text_.push_back('\0');
  for (const auto& param : params) {
    if (param.is_null) {
      params_.push_back(kNull);
    } else {
      params_.push_back(text_.size());
      text_.append(param.text);
      text_.push_back('\0');
    }
  }
}

void WritePipeline::clear() noexcept {
  text_.clear();
  params_.clear();
  executions_.clear();
}

void PipelineRows::Deleter::operator()(pg_result* result) const noexcept { PQclear(result); }

int PipelineRows::size() const noexcept { return PQntuples(result_.get()); }

bool PipelineRows::is_null(int row, int column) const noexcept {
  return PQgetisnull(result_.get(), row, column) == 1;
}

std::string_view PipelineRows::text(int row, int column) const noexcept {
  return std::string_view(PQgetvalue(result_.get(), row, column),
                          static_cast<std::size_t>(PQgetlength(result_.get(), row, column)));
}

std::int64_t WritePipeline::send(pqxx::dbtransaction& tx) { return run(tx, nullptr); }

std::vector<PipelineRows> WritePipeline::send_collect(pqxx::dbtransaction& tx) {
  std::vector<PipelineRows> collected;
  collected.reserve(executions_.size());
  static_cast<void>(run(tx, &collected));
  return collected;
}

std::int64_t WritePipeline::run(pqxx::dbtransaction& tx, std::vector<PipelineRows>* collected) {
  struct Clear {
    WritePipeline& pipeline;
    ~Clear() { pipeline.clear(); }
  } clear_on_exit{*this};
  if (executions_.empty()) return 0;
  // text_ no longer grows: pointers into it stay valid until clear().
  values_.resize(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    values_[i] = params_[i] == kNull ? nullptr : text_.data() + params_[i];
  }

  PGconn* connection = RawConnection::of(tx);
  // Every way out but the end of the loop below leaves the connection in pipeline mode or with
  // results unread, so it throws a broken DbError: the store then discards the connection.
  if (PQenterPipelineMode(connection) != 1) throw_broken(connection, "enter pipeline mode");
  for (const auto& execution : executions_) {
    // Blocking mode cannot deadlock on a long queue: while libpq waits to write, it also
    // reads (and buffers) what the server answered so far.
    const char* statement = text_.data() + execution.statement;
    const auto params = static_cast<int>(execution.params);
    const char* const* values = values_.data() + execution.first_param;
    const int sent =
        execution.unnamed
            ? PQsendQueryParams(connection, statement, params, nullptr, values, nullptr, nullptr, 0)
            : PQsendQueryPrepared(connection, statement, params, values, nullptr, nullptr, 0);
    if (sent != 1) throw_broken(connection, "send");
  }
  if (PQpipelineSync(connection) != 1) throw_broken(connection, "sync");

  // Each execution's results end with a null result, and the Sync's result ends the pipeline.
  // After a refusal, the executions up to the Sync report PGRES_PIPELINE_ABORTED.
  OwnedResult refused;
  std::size_t refused_at = 0;
  std::int64_t last_affected = 0;
  std::size_t execution = 0;
  for (;;) {
    OwnedResult result(PQgetResult(connection));
    if (result == nullptr) {
      if (PQstatus(connection) != CONNECTION_OK) throw_broken(connection, "receive");
      ++execution;
      continue;
    }
    const auto status = PQresultStatus(result.get());
    if (status == PGRES_PIPELINE_SYNC) break;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      if (execution + 1 == executions_.size()) last_affected = affected_rows(result.get());
      if (collected != nullptr) collected->emplace_back(result.release());
    } else if (status != PGRES_PIPELINE_ABORTED && !refused) {
      refused = std::move(result);
      refused_at = execution;
    }
  }
  if (PQexitPipelineMode(connection) != 1) throw_broken(connection, "exit pipeline mode");
  if (refused) {
    const char* sqlstate = PQresultErrorField(refused.get(), PG_DIAG_SQLSTATE);
    // A statement sent unnamed is named by the start of its text.
    std::string statement = "pipeline";
    if (refused_at < executions_.size()) {
      const auto& refused_execution = executions_[refused_at];
      statement = std::string_view(text_.data() + refused_execution.statement)
                      .substr(0, refused_execution.unnamed ? 80 : std::string_view::npos);
    }
    throw PipelineRefusal(refused_at, postgres::detail::DbError::refused(
                                          std::string(PQresultErrorMessage(refused.get())) +
                                              " (statement " + statement + ")",
                                          sqlstate == nullptr ? std::string() : sqlstate));
  }
  return last_affected;
}

}  // namespace annals::projections::detail
