// Test support for the PostgreSQL projection tests: a read-model projection assembled from
// lambdas, sample events, and a second connection of the test's own to look at tables, hold
// locks and terminate backends.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/types.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "test_database.hpp"

namespace annals::projections::testing {

/// `count` random lower-case hex digits.
inline std::string random_hex(std::size_t count) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(kDigits[rng() % 16]);
  return out;
}

/// A name unique to this call, usable as a projection name and as a table name:
/// "<prefix>_<12 hex digits>".
inline std::string unique_name(const std::string& prefix) { return prefix + "_" + random_hex(12); }

/// A ReadModelProjection whose parts are set by the test.
class LambdaReadModel final : public ReadModelProjection {
 public:
  using Handler = std::function<void(const RecordedEvent&, ReadModel&)>;

  LambdaReadModel(std::string name, Handler handler)
      : name_(std::move(name)), handler_(std::move(handler)) {}

  std::string name() const override { return name_; }
  EventFilter filter() const override { return filter_; }
  std::vector<ReadModelMigration> migrations() const override { return migrations_; }
  std::vector<std::string> tables() const override { return tables_; }
  void handle(const RecordedEvent& event, ReadModel& db) override { handler_(event, db); }

  std::vector<ReadModelMigration> migrations_;
  std::vector<std::string> tables_;
  EventFilter filter_;

 private:
  std::string name_;
  Handler handler_;
};

/// A store on this process's test database.
inline std::unique_ptr<ProjectionStore> make_store(std::size_t pool_size = 4) {
  return make_postgres_projection_store(
      {.connection_string = annals::testing::test_database_url(), .pool_size = pool_size});
}

/// An event as read from an event store, with the given position and data.
inline RecordedEvent event_at(Position position, nlohmann::json data,
                              const std::string& stream = "account-1",
                              const std::string& type = "MoneyDeposited") {
  return RecordedEvent{
      .stream_id = StreamId(stream),
      .version = position.sequence(),
      .position = position,
      .id = EventId::generate(),
      .type = type,
      .schema_version = 1,
      .data = std::move(data),
      .metadata = nlohmann::json::object(),
      .recorded_at =
          std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()),
  };
}

/// A new MoneyDeposited event of `amount`, to append.
inline NewEvent deposited(std::int64_t amount) {
  return {.id = std::nullopt,
          .type = "MoneyDeposited",
          .schema_version = 1,
          .data = {{"amount", amount}},
          .metadata = nlohmann::json::object()};
}

/// A connection of the test's own to the test database (not through the store).
class Admin {
 public:
  Admin() : connection_(annals::testing::test_database_url()) {}

  /// Runs `sql` in its own transaction and returns the rows.
  pqxx::result query(const std::string& sql) {
    pqxx::work tx(connection_);
    auto rows = tx.exec(sql);
    tx.commit();
    return rows;
  }

  /// The single value of a one-row, one-column query, as text ("" for NULL).
  std::string value(const std::string& sql) {
    const auto rows = query(sql);
    return rows.empty() || rows[0][0].is_null() ? std::string() : rows[0][0].c_str();
  }

  std::int64_t count(const std::string& table) {
    return query("SELECT count(*) FROM " + table)[0][0].as<std::int64_t>();
  }

  /// The position of the newest committed event. A store's head_position() and read_all()
  /// stop at the settled log, which a transaction open anywhere in the cluster (another test
  /// process under ctest -j) holds back; waiting for this position instead waits until the
  /// events this test appended are all readable.
  annals::Position committed_head() {
    const auto rows = query(
        "SELECT transaction_id::text, global_position FROM annals.events"
        " ORDER BY transaction_id DESC, global_position DESC LIMIT 1");
    if (rows.empty()) return annals::Position::start();
    return annals::Position(rows[0][0].as<std::uint64_t>(), rows[0][1].as<std::int64_t>());
  }

  /// Ends the backend `pid` (as a crash or a network failure would).
  void terminate(int pid) { query("SELECT pg_terminate_backend(" + std::to_string(pid) + ")"); }

  pqxx::connection& connection() { return connection_; }

 private:
  pqxx::connection connection_;
};

}  // namespace annals::projections::testing
