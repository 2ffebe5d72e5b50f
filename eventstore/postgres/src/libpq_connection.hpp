// Internal: a raw libpq connection for reads that stream their rows.
//
// libpqxx 6.4 receives a whole result before the caller sees its first row, so a reader's
// decoding and the server's producing rows take turns. In libpq's single-row mode the server
// keeps sending while the client decodes the rows already received: on two cores that is the
// difference between adding the two costs and overlapping them (docs/performance.md, "Reads").
// Errors are thrown as libpqxx's exception types, so the store's retry and translation rules
// (pooled_call.hpp, error_translation.hpp) apply unchanged.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct pg_conn;

namespace annals::postgres::detail {

class LibpqConnection {
 public:
  /// Connects. Throws: pqxx::broken_connection when the server cannot be reached.
  explicit LibpqConnection(const std::string& connection_string);
  LibpqConnection(const LibpqConnection&) = delete;
  LibpqConnection& operator=(const LibpqConnection&) = delete;
  ~LibpqConnection();

  /// Prepares `sql` as the statement `name`. Throws as stream_prepared does.
  void prepare(const char* name, const char* sql);

  /// The fields of one row as text; a NULL field has a null data().
  using Row = std::span<const std::string_view>;

  /// Executes the prepared statement `name` with text parameters (a null pointer is NULL) and
  /// calls `on_row` for each row as it arrives. The connection is idle again when this
  /// returns or throws: after an error the remaining rows are read and dropped.
  /// Throws: what `on_row` threw; pqxx::broken_connection when the connection broke;
  /// pqxx::sql_error carrying the SQLSTATE when the server refused the statement.
  void stream_prepared(const char* name, std::span<const char* const> values,
                       const std::function<void(Row)>& on_row);

 private:
  [[noreturn]] void throw_connection_error(const std::string& what) const;

  pg_conn* connection_;
  std::vector<std::string_view> fields_;  // one row, reused
};

}  // namespace annals::postgres::detail
