#include "read_horizon.hpp"

#include <chrono>
#include <cstdint>
#include <string>

#include "annals/eventstore/error.hpp"
#include "database_checks.hpp"
#include "pooled_call.hpp"
#include "sql.hpp"

namespace annals::postgres {

ReadHorizon detail::query_read_horizon(LibpqConnection& connection) {
  const auto rows = connection.exec(sql::kReadHorizon);
  ReadHorizon horizon;
  if (!rows.empty()) {
    horizon.oldest = ReadHorizon::Blocker{
        .pid = parse_int<int>(rows.text(0, 0), "process id"),
        .database = std::string(rows.text(0, 1)),
        .state = std::string(rows.text(0, 2)),
        .transaction_age = std::chrono::milliseconds(
            rows.is_null(0, 3) ? 0 : parse_int<std::int64_t>(rows.text(0, 3), "age")),
        .query = std::string(rows.text(0, 4)),
    };
  }
  return horizon;
}

ReadHorizon read_horizon(const std::string& connection_string, std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0) {
    throw InvalidArgumentError("read_horizon: timeout must be positive, got " +
                               std::to_string(timeout.count()) + " ms");
  }
  return detail::with_progress_bounded_connection(connection_string, "read horizon", timeout,
                                                  detail::query_read_horizon);
}

}  // namespace annals::postgres
