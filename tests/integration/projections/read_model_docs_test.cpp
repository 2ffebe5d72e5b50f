// The examples of docs/read-models.md, compiled and run against PostgreSQL. The blocks between
// `// docs:begin NAME` and `// docs:end` are copied into the doc verbatim (dedented), and
// tests/docs keeps the two identical (STYLE 2.8).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/app.hpp"
#include "annals/projections/documents.hpp"
#include "annals/projections/postgres/open.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/runner.hpp"
#include "test_database.hpp"

namespace docs {

// docs:begin read-model-projection
// Balances of bank accounts, one row per account, kept by a read-model projection.
class AccountBalances final : public annals::projections::ReadModelProjection {
 public:
  // The checkpoint, lease and migration records are kept under this name: keep it stable.
  std::string name() const override { return "account_balances"; }

  // Only events of "account-..." streams are read; the checkpoint moves past the others.
  annals::EventFilter filter() const override { return {.category = "account", .event_types = {}}; }

  // The projection owns its tables. Each migration runs once, in order, and is recorded in
  // annals.projection_migrations; add new ones at the end, never edit an applied one.
  std::vector<annals::projections::ReadModelMigration> migrations() const override {
    return {
        {"0001_create_account_balances",
         "CREATE TABLE account_balances ("
         "  account_id text PRIMARY KEY,"
         "  owner      text NOT NULL,"
         "  balance    bigint NOT NULL DEFAULT 0,"
         "  closed     boolean NOT NULL DEFAULT false)"},
        {"0002_add_last_movement",
         "ALTER TABLE account_balances ADD COLUMN last_movement_at timestamptz"},
    };
  }

  // What a rebuild empties (one TRUNCATE) before replaying the log.
  std::vector<std::string> tables() const override { return {"account_balances"}; }

  void handle(const annals::RecordedEvent& e, annals::projections::ReadModel& db) override {
    const annals::projections::Columns key = {{"account_id", e.stream_id.value()}};
    if (e.type == "AccountOpened") {
      db.upsert("account_balances", key, {{"owner", e.data.at("owner")}});
    } else if (e.type == "MoneyDeposited") {
      db.increment("account_balances", key, "balance", e.data.at("amount").get<std::int64_t>());
    } else if (e.type == "MoneyWithdrawn") {
      db.increment("account_balances", key, "balance", -e.data.at("amount").get<std::int64_t>());
    } else if (e.type == "AccountClosed") {
      db.upsert("account_balances", key, {{"closed", true}});
    }
  }
};
// docs:end

// docs:begin read-model-exec
// A projection that needs more than upsert/increment/remove writes its own SQL through exec():
// values are $n parameters, never spliced into the text.
class LargeDeposits final : public annals::projections::ReadModelProjection {
 public:
  std::string name() const override { return "large_deposits"; }
  annals::EventFilter filter() const override {
    return {.category = "account", .event_types = {"MoneyDeposited"}};
  }
  std::vector<annals::projections::ReadModelMigration> migrations() const override {
    return {{"0001_create_large_deposits",
             "CREATE TABLE large_deposits (event_id uuid PRIMARY KEY, account_id text NOT NULL,"
             " amount bigint NOT NULL, position text NOT NULL)"}};
  }
  std::vector<std::string> tables() const override { return {"large_deposits"}; }

  void handle(const annals::RecordedEvent& e, annals::projections::ReadModel& db) override {
    const auto amount = e.data.at("amount").get<std::int64_t>();
    if (amount < 1000) return;
    db.exec(
        "INSERT INTO large_deposits (event_id, account_id, amount, position)"
        " VALUES ($1, $2, $3, $4)",
        {e.id.to_string(), e.stream_id.value(), amount, e.position.to_string()});
  }
};
// docs:end

std::vector<annals::NewEvent> history(const std::string& owner) {
  auto event = [](std::string type, nlohmann::json data) {
    return annals::NewEvent{.id = std::nullopt,
                            .type = std::move(type),
                            .schema_version = 1,
                            .data = std::move(data),
                            .metadata = nlohmann::json::object()};
  };
  return {event("AccountOpened", {{"owner", owner}}), event("MoneyDeposited", {{"amount", 1500}}),
          event("MoneyWithdrawn", {{"amount", 200}}), event("MoneyDeposited", {{"amount", 50}})};
}

// The test's look at the table (tests may use libpqxx; the docs show no client code).
std::optional<std::int64_t> balance_of(pqxx::connection& connection,
                                       const std::string& account_id) {
  pqxx::read_transaction tx(connection);
  const auto rows =
      tx.exec_params("SELECT balance FROM account_balances WHERE account_id = $1", account_id);
  if (rows.empty()) return std::nullopt;
  return rows[0][0].as<std::int64_t>();
}

// docs:begin read-model-as-documents
// The same balances as JSON documents, one per account: no table to declare, and the read API
// queries them through annals (typed, with read-your-writes), on PostgreSQL or in memory.
struct AccountBalance {
  std::string owner;
  std::int64_t balance = 0;
  bool closed = false;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountBalance, owner, balance, closed)

class AccountBalanceDocuments final : public annals::projections::DocumentProjection {
 public:
  std::string name() const override { return "account_balance_documents"; }
  annals::EventFilter filter() const override { return {.category = "account", .event_types = {}}; }
  // The collection (a jsonb table doc_account_balances on PostgreSQL) and an index on balance.
  std::vector<annals::projections::CollectionSpec> collections() const override {
    return {{"account_balances", {annals::projections::DocumentIndex::ordered("balance")}}};
  }

  void handle(const annals::RecordedEvent& e, annals::projections::Documents& docs) override {
    auto balances = docs.collection("account_balances");
    const std::string& id = e.stream_id.value();
    if (e.type == "AccountOpened") {
      balances.upsert(id, AccountBalance{.owner = e.data.at("owner").get<std::string>()});
    } else if (e.type == "MoneyDeposited") {
      balances.increment(id, "balance", e.data.at("amount").get<std::int64_t>());
    } else if (e.type == "MoneyWithdrawn") {
      balances.increment(id, "balance", -e.data.at("amount").get<std::int64_t>());
    } else if (e.type == "AccountClosed") {
      balances.patch(id, {{"closed", true}});
    }
  }
};
// docs:end

TEST(ReadModelDocsTest, BalancesFollowTheLog) {
  const std::string url = annals::testing::test_database_url();
  annals::postgres::migrate(url);  // already done for the test database; a no-op here

  // docs:begin read-model-wiring
  // One event store and one projection store on the same database.
  auto events = annals::postgres::make_postgres_event_store({.connection_string = url});
  auto projections =
      annals::projections::make_postgres_projection_store({.connection_string = url});

  annals::projections::ProjectionRunner runner(*events, *projections);
  auto balances = std::make_shared<AccountBalances>();
  runner.add(balances);  // creates or migrates account_balances
  runner.add(std::make_shared<LargeDeposits>(),
             {.batch_size = 500, .on_failure = annals::projections::OnFailure::kDeadLetter});
  runner.start();  // in a service: runner.run_until_signal();
  // docs:end

  // docs:begin read-model-read-your-writes
  // A command handler appended; the read API answers "after my command".
  const auto appended = events->append(annals::StreamId("account-42"),
                                       annals::ExpectedVersion::no_stream(), history("Ada"));
  // In the runner's process:
  bool visible = runner.wait_for("account_balances", appended.position, std::chrono::seconds(5));
  // In any other process (a separate read API), through the projection store:
  visible =
      visible && annals::projections::wait_for_checkpoint(
                     *projections, "account_balances", appended.position, std::chrono::seconds(5));
  // visible: a query of account_balances now sees the command's effects.
  // docs:end
  pqxx::connection reader(url);
  const auto balance = balance_of(reader, "account-42");
  ASSERT_TRUE(visible);
  EXPECT_EQ(balance, 1350);
  ASSERT_TRUE(runner.wait_for("large_deposits", appended.position, std::chrono::seconds(30)));
  ASSERT_TRUE(annals::projections::wait_for_checkpoint(
      *projections, "large_deposits", appended.position, std::chrono::seconds(30)));
  pqxx::read_transaction tx(reader);
  EXPECT_EQ(tx.exec("SELECT count(*), sum(amount) FROM large_deposits")[0][1].as<std::int64_t>(),
            1500);
  tx.commit();

  // docs:begin read-model-rebuild
  // Reset account_balances and its checkpoint, then replay the log. Whichever runner owns the
  // projection carries it out (here: this one) and reports progress on the request.
  auto request = runner.rebuild("account_balances");
  while (request.state == annals::projections::RebuildState::kRequested ||
         request.state == annals::projections::RebuildState::kRunning) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    request = projections->rebuild_request(request.id).value();
  }
  // request.state is kDone, or kFailed with request.message saying why.
  // docs:end
  EXPECT_EQ(request.state, annals::projections::RebuildState::kDone);
  ASSERT_TRUE(annals::projections::wait_for_checkpoint(
      *projections, "account_balances", appended.position, std::chrono::seconds(30)));
  EXPECT_EQ(balance_of(reader, "account-42"), 1350);
  runner.stop();
}

TEST(ReadModelDocsTest, TheBalancesAsDocumentsAreReadWithATypedQuery) {
  const std::string url = annals::testing::test_database_url();
  // docs:begin read-model-document-query
  auto app = annals::postgres::open(url);  // in unit tests: annals::open_in_memory()
  app->runner().add(std::make_shared<AccountBalanceDocuments>());
  app->runner().start();

  // A command handler appended; the read API answers "after my command".
  const auto appended = app->events().append(annals::StreamId("account-43"),
                                             annals::ExpectedVersion::no_stream(), history("Ada"));
  // Waits until the projection has passed the append (at most 5 s, else CatchUpTimeoutError),
  // then reads the document, decoded: {.owner = "Ada", .balance = 1350, .closed = false}.
  const std::optional<AccountBalance> balance =
      app->collection<AccountBalance>("account_balances")
          .after(appended.position, std::chrono::seconds(5))
          .get("account-43");
  // docs:end
  ASSERT_TRUE(balance.has_value());
  EXPECT_EQ(balance->owner, "Ada");
  EXPECT_EQ(balance->balance, 1350);
  EXPECT_FALSE(balance->closed);
}

}  // namespace docs
