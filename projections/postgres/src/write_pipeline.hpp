// Internal: executions of prepared statements queued on a transaction of the projection store
// and sent together in one round trip, in libpq's pipeline mode, with their values as bound
// parameters (never spliced into SQL text).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "db_error.hpp"

struct pg_result;  // libpq's PGresult

namespace annals::projections::detail {

/// One statement parameter as libpq's text format: a value or SQL NULL.
struct Param {
  std::string text;
  bool is_null = false;
};

/// The server refused execution index() of a pipeline (the transaction is then aborted, and
/// the executions after it were skipped): the driver layer's refusal (SQLSTATE and message),
/// which the one translator reads like any other, plus which execution it was.
class PipelineRefusal : public postgres::detail::DbError {
 public:
  PipelineRefusal(std::size_t index, postgres::detail::DbError refusal)
      : postgres::detail::DbError(std::move(refusal)), index_(index) {}

  [[nodiscard]] std::size_t index() const noexcept { return index_; }

 private:
  std::size_t index_;
};

/// The rows one execution of a pipeline returned, in text form (WritePipeline::send_collect).
///
/// Thread safety: one thread.
class PipelineRows {
 public:
  struct Deleter {
    void operator()(pg_result* result) const noexcept;
  };
  explicit PipelineRows(pg_result* result) noexcept : result_(result) {}

  [[nodiscard]] int size() const noexcept;
  [[nodiscard]] bool is_null(int row, int column) const noexcept;
  /// The value's text; empty for SQL NULL. Requires: row < size(), column in range.
  [[nodiscard]] std::string_view text(int row, int column) const noexcept;

 private:
  std::unique_ptr<pg_result, Deleter> result_;
};

/// A queue of executions of statements prepared on the server, to be sent in one round trip.
/// The values are kept in one buffer, so queueing an execution costs no allocation of its own
/// once the buffers have grown.
///
/// Thread safety: one thread (the unit of work's).
class WritePipeline {
 public:
  /// Queues an execution of the prepared statement `statement` with `params` ($1 first).
  /// Requires: the statement is prepared on the server of the connection it will be sent on
  /// (pqxx::connection::prepare_now); no value contains a NUL byte (libpq sends text
  /// parameters NUL-terminated: a NUL would cut the value).
  void add(std::string_view statement, std::span<const Param> params);
  /// Queues an execution of the SQL text `sql` as an unnamed statement, parsed with the
  /// execution (for connections behind a transaction pooler, where named statements do not
  /// last; StatementConnection). Requires: as add(), and `sql` contains no NUL byte.
  void add_unnamed(std::string_view sql, std::span<const Param> params);

  [[nodiscard]] bool empty() const noexcept { return executions_.empty(); }
  /// Queued executions.
  [[nodiscard]] std::size_t size() const noexcept { return executions_.size(); }
  /// Bytes of queued statement names and values (bounds the memory held).
  [[nodiscard]] std::size_t bytes() const noexcept { return text_.size(); }

  /// Sends every queued execution on the connection of `tx`, inside its transaction, in one
  /// round trip (libpq pipeline mode, one Sync), and empties the queue, whatever happens.
  /// Returns the number of rows the last execution affected.
  /// Throws: PipelineRefusal when the server refused an execution (`tx` is then aborted);
  /// a broken DbError when the connection failed (or was not idle): it must then be
  /// discarded, since it may still be in pipeline mode.
  /// Cost: one round trip.
  std::int64_t send(pqxx::dbtransaction& tx);

  /// As send(), but returns the rows of every execution, in the order they were queued.
  /// Throws: as send(). Cost: one round trip.
  std::vector<PipelineRows> send_collect(pqxx::dbtransaction& tx);

 private:
  struct Execution {
    std::size_t statement;    // offset of the NUL-terminated name (or SQL text) in text_
    std::size_t first_param;  // index into params_
    std::size_t params;
    bool unnamed;  // `statement` is SQL text, sent unnamed
  };

  void add_execution(std::string_view statement, std::span<const Param> params, bool unnamed);
  // No value: SQL NULL.
  static constexpr std::size_t kNull = static_cast<std::size_t>(-1);

  void clear() noexcept;
  // Sends the queue; keeps every execution's result in `collected` when given.
  std::int64_t run(pqxx::dbtransaction& tx, std::vector<PipelineRows>* collected);

  std::string text_;                 // statement names and values, each NUL-terminated
  std::vector<std::size_t> params_;  // offsets into text_, or kNull
  std::vector<Execution> executions_;
  std::vector<const char*> values_;  // send()'s parameter pointers, reused
};

}  // namespace annals::projections::detail
