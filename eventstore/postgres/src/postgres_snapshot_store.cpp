// PostgresSnapshotStore: the SnapshotStore on PostgreSQL (decision 10). One prepared statement
// per call on a pooled autocommit connection; driver failures are translated once, by
// SQLSTATE, in error_translation.cpp. Snapshots are bound to the event chain: the
// save statement records the event's hash and a digest, the load statement checks both against
// the stored events, and this class counts and logs what it ignores.
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "connection_pool.hpp"
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
          "the annals.snapshots table (with the columns of migration 0006) is missing from the "
          "database; run `annals migrate`");
    }
  }

  std::optional<Snapshot> load(const StreamId& stream) override {
    auto found = lookup(stream);
    if (!found.usable()) return std::nullopt;
    return std::move(found.snapshot);
  }

  SnapshotLookup lookup(const StreamId& stream) override {
    const auto rows =
        run("load snapshot of \"" + stream.value() + "\"", [&](pqxx::connection& connection) {
          pqxx::nontransaction tx(connection);
          return tx.exec_prepared(snapshot_sql::kLoadName, stream.value());
        });
    if (rows.empty()) return {};
    const auto& row = rows[0];
    Snapshot snapshot{.stream_id = stream,
                      .version = row[0].as<std::int64_t>(),
                      .schema_version = row[1].as<std::int32_t>(),
                      .state = nullptr};
    const std::string_view text(row[2].c_str(), row[2].size());
    try {
      check_json_text_depth(text, "the state");
      snapshot.state = nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
      throw CorruptionError("stored snapshot of stream \"" + stream.value() +
                            "\" is not JSON: " + e.what());
    } catch (const InvalidArgumentError& e) {
      throw CorruptionError("stored snapshot of stream \"" + stream.value() +
                            "\" is refused: " + e.what());
    }
    SnapshotLookup result{std::move(snapshot), verdict_of(row[3].as<int>())};
    if (result.ignored != SnapshotIgnored::kNone) {
      count(result.ignored);
      annals::detail::log_snapshot_ignored_by_store(stream, result.snapshot->version,
                                                    result.ignored);
    }
    return result;
  }

  SnapshotStoreStats stats() const override {
    return SnapshotStoreStats{.ignored_unbound = ignored_unbound_.load(),
                              .ignored_history_differs = ignored_history_differs_.load(),
                              .ignored_state_edited = ignored_state_edited_.load()};
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
    return detail::run_pooled(
        pool_, what, false,
        detail::RetryPolicy{.max_broken_retries = options_.max_retries_on_broken_connection},
        std::forward<F>(f));
  }

  // The verdict column of snapshot_sql::kLoad.
  static SnapshotIgnored verdict_of(int verdict) {
    switch (verdict) {
      case 0:
        return SnapshotIgnored::kNone;
      case 1:
        return SnapshotIgnored::kUnbound;
      case 2:
        return SnapshotIgnored::kHistoryDiffers;
      case 3:
        return SnapshotIgnored::kStateEdited;
      default:
        throw InternalError("snapshot load returned an unknown verdict " + std::to_string(verdict));
    }
  }

  void count(SnapshotIgnored reason) noexcept {
    switch (reason) {
      case SnapshotIgnored::kNone:
        return;
      case SnapshotIgnored::kUnbound:
        ++ignored_unbound_;
        return;
      case SnapshotIgnored::kHistoryDiffers:
        ++ignored_history_differs_;
        return;
      case SnapshotIgnored::kStateEdited:
        ++ignored_state_edited_;
        return;
    }
  }

  PostgresSnapshotStoreOptions options_;
  std::atomic<std::uint64_t> ignored_unbound_{0};
  std::atomic<std::uint64_t> ignored_history_differs_{0};
  std::atomic<std::uint64_t> ignored_state_edited_{0};
  detail::ConnectionPool<pqxx::connection> pool_;
};

}  // namespace

std::unique_ptr<SnapshotStore> make_postgres_snapshot_store(PostgresSnapshotStoreOptions options) {
  return std::make_unique<PostgresSnapshotStore>(std::move(options));
}

}  // namespace annals::postgres
