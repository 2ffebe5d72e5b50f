// annals-bench: a thin RAII layer over raw libpq, used for the PostgreSQL ceilings, the
// database set-up and the server's settings.
//
// The ceilings talk to the server with libpq directly (not libpqxx) so that they measure what
// plain PostgreSQL does with the least client overhead: a weak ceiling would flatter every
// ratio.
//
// Thread safety: a PgConnection is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <libpq-fe.h>

namespace annals::bench {

/// Owns one PGresult.
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* result) noexcept : result_(result, &PQclear) {}

  [[nodiscard]] PGresult* get() const noexcept { return result_.get(); }
  [[nodiscard]] int rows() const noexcept { return PQntuples(result_.get()); }
  [[nodiscard]] int columns() const noexcept { return PQnfields(result_.get()); }
  /// The text of a field ("" for NULL).
  [[nodiscard]] std::string text(int row, int column) const {
    return PQgetvalue(result_.get(), row, column);
  }
  /// Touches every field of every row the way the least a client that uses its rows does:
  /// PQgetvalue and PQgetlength of each, and the value's first byte. Returns a checksum (the
  /// fields' total length plus their first bytes), so that no read can be optimised away; it
  /// is positive whenever there is a row. Cost: O(rows x columns), no copies.
  [[nodiscard]] std::uint64_t touch_all_fields() const noexcept;

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> result_{nullptr, &PQclear};
};

/// One libpq connection. Throws std::runtime_error (with the server's message) on failure.
class PgConnection {
 public:
  explicit PgConnection(const std::string& conninfo);
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  [[nodiscard]] PGconn* get() const noexcept { return conn_; }

  /// Runs a statement (or several, separated by ';') that returns no rows.
  void exec(const std::string& sql);
  /// Runs a query and returns its rows.
  [[nodiscard]] PgResult query(const std::string& sql);
  /// The first field of the first row of a query.
  [[nodiscard]] std::string scalar(const std::string& sql);
  /// Prepares a named statement; `types` are parameter type OIDs (0 = let the server infer).
  void prepare(const std::string& name, const std::string& sql, const std::vector<Oid>& types);
  /// Runs a prepared statement with text parameters (nullptr = NULL) except where `formats`
  /// says 1 (binary); `lengths` matter only for binary parameters. Checks the status. The rows
  /// come back in text (`result_format` 0) or binary (1) format.
  PgResult exec_prepared(const char* name, int count, const char* const* values, const int* lengths,
                         const int* formats, ExecStatusType expected, int result_format = 0);

  /// Runs `COPY (...) TO STDOUT` and returns the number of rows received (each read with
  /// PQgetCopyData and discarded).
  std::uint64_t copy_out_rows(const std::string& copy_sql);

 private:
  [[noreturn]] void fail(const std::string& what, const PGresult* result) const;
  PGconn* conn_ = nullptr;
};

/// The connection string `conninfo` (URI or key=value form) with its database replaced by
/// `dbname`, as a key=value string.
[[nodiscard]] std::string with_database(const std::string& conninfo, const std::string& dbname);

// Type OIDs (pg_type.dat) of the parameters the ceilings send.
inline constexpr Oid kInt4Oid = 23;
inline constexpr Oid kInt8Oid = 20;
inline constexpr Oid kTextOid = 25;
inline constexpr Oid kByteaOid = 17;
inline constexpr Oid kUuidOid = 2950;
inline constexpr Oid kJsonbOid = 3802;
inline constexpr Oid kXid8Oid = 5069;

}  // namespace annals::bench
