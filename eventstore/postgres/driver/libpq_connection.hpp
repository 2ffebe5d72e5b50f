// Internal: the event store's connection, on libpq directly.
//
// libpqxx stays where it serves (the snapshot store, migrations, database checks, projection
// store sessions and read models: typed parameters, transactions, one round trip per call
// anyway); the store's hot paths keep libpq, a choice measured when the store was built.
// Two reasons not to go through libpqxx 6.4 there. Reads: libpqxx receives a
// whole result before the caller sees its first row, so a reader's decoding and the server's
// producing rows take turns; in libpq's single-row mode the server keeps sending while the
// client decodes the rows already received, and on two cores that is the difference between
// adding the two costs and overlapping them. Appends: after every statement libpqxx looks for
// notifications with one more (non-blocking) receive call, which with the result bookkeeping
// was a measurable part of a single-event append's client CPU (docs/performance.md).
// Failures are thrown as DbError (db_error.hpp), the driver layer's one failure value, which
// the retry loop and the translator read (pooled_call.hpp, error_translation.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "watchdog.hpp"

struct pg_conn;
struct pg_result;

namespace annals::postgres::detail {

class LibpqConnection {
 public:
  /// Connects. Throws: DbError (broken, not sent) when the server cannot be reached.
  explicit LibpqConnection(const std::string& connection_string);
  LibpqConnection(const LibpqConnection&) = delete;
  LibpqConnection& operator=(const LibpqConnection&) = delete;
  ~LibpqConnection();

  /// Prepares `sql` as the statement `name`. Throws as stream_prepared does. With unnamed
  /// statements (below) it only records `sql` under `name`, without a round trip.
  void prepare(const char* name, const char* sql);

  /// Unnamed statements: every later prepare() only records its SQL, and every exec_*/stream_*
  /// call of a statement sends that SQL with its parameters as libpq's unnamed statement
  /// (PQexecParams: parsed and planned for that call alone). Nothing then lives in the server
  /// session between calls, which is what a transaction-mode pooler (PgBouncer before 1.21)
  /// requires: it may hand the next call to another server connection. Call before prepare().
  void use_unnamed_statements() noexcept { unnamed_ = true; }

  /// A complete result: rows of text fields.
  class Result {
   public:
    Result() noexcept = default;
    explicit Result(pg_result* result) noexcept : result_(result) {}
    Result(Result&& other) noexcept;
    Result& operator=(Result&& other) noexcept;
    Result(const Result&) = delete;
    Result& operator=(const Result&) = delete;
    ~Result();

    [[nodiscard]] int rows() const noexcept;
    [[nodiscard]] bool empty() const noexcept { return rows() == 0; }
    [[nodiscard]] bool is_null(int row, int column) const noexcept;
    /// The field as text; empty when NULL.
    [[nodiscard]] std::string_view text(int row, int column) const noexcept;

   private:
    pg_result* result_ = nullptr;
  };

  /// Executes the prepared statement `name` with text parameters (a null pointer is NULL).
  /// Throws as stream_prepared does.
  Result exec_prepared(const char* name, std::span<const char* const> values);

  /// A parameter of exec_prepared: `length` bytes at `data` in text or binary format (libpq's
  /// paramFormats); a null `data` is NULL. Text parameters may also be given by a
  /// null-terminated `data` and length 0.
  struct Param {
    const char* data = nullptr;
    int length = 0;
    bool binary = false;
  };

  /// Executes the prepared statement `name` with parameters in text or binary format.
  /// Throws as stream_prepared does.
  Result exec_prepared_params(const char* name, std::span<const Param> params);

  /// Executes the prepared statement `name` once per parameter set, in one round trip and one
  /// implicit transaction (libpq pipeline mode, one Sync at the end), and returns one result
  /// per statement, in order. If the server refuses any statement, the whole transaction is
  /// rolled back and this throws that refusal once the connection is idle again.
  /// Throws as stream_prepared does.
  std::vector<Result> exec_prepared_pipelined(
      const char* name, std::span<const std::span<const char* const>> parameter_sets);

  /// Executes `sql`, which takes no parameters. Throws as stream_prepared does.
  Result exec(const char* sql);

  /// Runs `copy_sql` (a `COPY ... TO STDOUT`, no parameters) and calls `on_data` with each
  /// CopyData message as it arrives (one row each; in binary format the first also carries the
  /// header and the last is the trailer). The connection is idle again when this returns or
  /// throws. Throws: what `on_data` threw; as stream_prepared does.
  void copy_out(const char* copy_sql, const std::function<void(std::string_view)>& on_data);

  /// Bounds every later wait for the server by `timeout` on `watchdog`: a call still waiting
  /// that long, and while rows or COPY data stream, a wait that long for the next one, has
  /// its socket shut down and fails as a broken connection. A bound on progress, not on the
  /// whole call: a long read that keeps receiving is never cut. Null `watchdog` (the default):
  /// no bound. For one-off calls on a connection of their own (verify, anchors); pooled calls
  /// use run_pooled's call deadline instead. Requires: `watchdog` outlives the calls.
  void set_progress_timeout(Watchdog* watchdog, std::chrono::milliseconds timeout) noexcept {
    watchdog_ = watchdog;
    progress_timeout_ = timeout;
  }

  /// The socket, to wait for notifications with poll().
  [[nodiscard]] int socket() const noexcept;

  /// Reads what the server sent without blocking and returns how many notifications (LISTEN)
  /// arrived, discarding them. Throws: DbError (broken) when the connection broke.
  int take_notifications();

  /// The fields of one row as text; a NULL field has a null data().
  using Row = std::span<const std::string_view>;

  /// Executes the prepared statement `name` with text parameters (a null pointer is NULL) and
  /// calls `on_row` for each row as it arrives. The connection is idle again when this
  /// returns or throws: after an error the remaining rows are read and dropped.
  /// `statement_timeout` (milliseconds as text, e.g. "30000"; null: none): the server cancels
  /// the statement after that long (SQLSTATE 57014). It is set for this statement alone, in
  /// the same round trip (pipeline mode: a transaction-local set_config, then the statement,
  /// then Sync), so other statements on the connection keep the session's setting.
  /// Throws: what `on_row` threw; DbError: broken when the connection broke (the statement may
  /// have reached the server), refused with the SQLSTATE when the server refused it.
  /// `binary_results`: ask for every column in binary format (libpq's resultFormat 1).
  void stream_prepared(const char* name, std::span<const char* const> values,
                       const std::function<void(Row)>& on_row,
                       const char* statement_timeout = nullptr, bool binary_results = false);

 private:
  [[noreturn]] void throw_connection_error(const std::string& what) const;
  // Takes ownership of `result` and returns it when it is a success; throws otherwise.
  Result checked(pg_result* result, const char* what) const;
  // Pipeline mode: queues the transaction-local statement timeout of stream_prepared.
  void send_statement_timeout(const char* statement_timeout, const char* what);
  // Pipeline mode: reads the results of the statement timeout's set_config; returns its error
  // result if the server refused it (then the pipeline is aborted).
  pg_result* take_setting_results(const char* what);
  // Pipeline mode: reads up to the Sync's result and leaves pipeline mode.
  void end_pipeline(const char* what);

  // Arms the progress timeout (set_progress_timeout) for one wait; arms nothing without it.
  [[nodiscard]] Watchdog::Call progress() const;

  // The SQL recorded for `name` in unnamed mode; null when statements are prepared.
  [[nodiscard]] const char* unnamed_sql(const char* name) const;

  pg_conn* connection_;
  bool unnamed_ = false;
  std::vector<std::pair<std::string, std::string>> statements_;  // unnamed mode: name, SQL
  std::vector<std::string_view> fields_;                         // one row, reused
  Watchdog* watchdog_ = nullptr;
  std::chrono::milliseconds progress_timeout_{0};
};

}  // namespace annals::postgres::detail
