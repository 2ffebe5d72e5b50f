// PostgresSnapshotStore: the SnapshotStore on PostgreSQL (decision 10). One prepared statement
// per call on a pooled autocommit connection; driver failures are translated once, by
// SQLSTATE, in error_translation.cpp.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "connection_pool.hpp"
#include "error_translation.hpp"
#include "pooled_call.hpp"
#include "snapshot_sql.hpp"

namespace annals::postgres {
namespace {


void prepare_statements(pqxx::connection& connection) {
  connection.prepare(snapshot_sql::kLoadName, snapshot_sql::kLoad);
  connection.prepare(snapshot_sql::kSaveName, snapshot_sql::kSave);
  connection.prepare(snapshot_sql::kRemoveName, snapshot_sql::kRemove);
}

class PostgresSnapshotStore final : public SnapshotStore {
 public:
  explicit PostgresSnapshotStore(PostgresSnapshotStoreOptions options)
      : options_(std::move(options)),
        pool_(options_.connection_string, options_.pool_size, prepare_statements) {
    const auto rows = run("open snapshot store", [](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return tx.exec(snapshot_sql::kTablePresent);
    });
    if (!rows[0][0].as<bool>()) {
      throw NotFoundError(
          "the annals.snapshots table is missing from the database; run `annals migrate`");
    }
  }

  std::optional<Snapshot> load(const StreamId& stream) override {
    const auto rows =
        run("load snapshot of \"" + stream.value() + "\"", [&](pqxx::connection& connection) {
          pqxx::nontransaction tx(connection);
          return tx.exec_prepared(snapshot_sql::kLoadName, stream.value());
        });
    if (rows.empty()) return std::nullopt;
    const auto& row = rows[0];
    Snapshot snapshot{.stream_id = stream,
                      .version = row[0].as<std::int64_t>(),
                      .schema_version = row[1].as<std::int32_t>(),
                      .state = nullptr};
    try {
      snapshot.state = nlohmann::json::parse(row[2].c_str(), row[2].c_str() + row[2].size());
    } catch (const nlohmann::json::exception& e) {
      throw CorruptionError("stored snapshot of stream \"" + stream.value() +
                            "\" is not JSON: " + e.what());
    }
    return snapshot;
  }

  void save(const Snapshot& snapshot) override {
    const auto state = annals::detail::encode_snapshot_state(snapshot);
    run("save snapshot of \"" + snapshot.stream_id.value() + "\"",
        [&](pqxx::connection& connection) {
          pqxx::nontransaction tx(connection);
          return tx.exec_prepared(snapshot_sql::kSaveName, snapshot.stream_id.value(),
                                  snapshot.version, snapshot.schema_version, state);
        });
  }

  void remove(const StreamId& stream) override {
    run("remove snapshot of \"" + stream.value() + "\"", [&](pqxx::connection& connection) {
      pqxx::nontransaction tx(connection);
      return tx.exec_prepared(snapshot_sql::kRemoveName, stream.value());
    });
  }

 private:
  // Snapshot statements are idempotent: a broken connection is "unavailable", never an
  // outcome in doubt.
  template <typename F>
  pqxx::result run(const std::string& what, F&& f) {
    return detail::run_pooled(pool_, what, false, options_.max_retries_on_broken_connection,
                              std::forward<F>(f));
  }

  PostgresSnapshotStoreOptions options_;
  detail::ConnectionPool<pqxx::connection> pool_;
};

}  // namespace

std::unique_ptr<SnapshotStore> make_postgres_snapshot_store(PostgresSnapshotStoreOptions options) {
  return std::make_unique<PostgresSnapshotStore>(std::move(options));
}

}  // namespace annals::postgres
