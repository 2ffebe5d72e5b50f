// Typed ReadModelProjections on PostgreSQL (issue 15): a type renamed by an upcaster and stored
// under its old name reaches the typed handler through the real runner and the PostgreSQL
// stores, exactly once across runners; events that do not decode fail with the typed error,
// their writes rolled back; and ReadModelSpec, the test kit's given/when/then on PostgreSQL.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/event_store.hpp"
#include "annals/framework/typed_events.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/runner.hpp"
#include "annals/testkit/read_model_spec.hpp"
#include "read_model_support.hpp"
#include "test_database.hpp"
#include "wallet.hpp"

namespace annals::projections {
namespace {

using std::chrono::milliseconds;
using testing::Admin;
using ::testing::HasSubstr;
using testing::unique_name;
using wallet::WalletCreated;
using wallet::WalletCredited;

constexpr milliseconds kTimeout{30'000};

EventRegistry wallet_registry() {
  EventRegistry registry;
  wallet::register_wallet(registry);
  return registry;
}

// Wallets: owner, balance and number of credits, from typed handlers.
// docs:begin typed-read-model
class WalletTable final : public ReadModelProjection {
 public:
  WalletTable(const EventRegistry& registry, std::string name, std::string table)
      : ReadModelProjection(registry), name_(std::move(name)), table_(std::move(table)) {
    on<WalletCreated>([this](const WalletCreated& e, const EventContext& c, ReadModel& db) {
      db.upsert(table_, {{"wallet_id", c.stream_id().value()}}, {{"owner", e.owner_name}});
    });
    on<WalletCredited>([this](const WalletCredited& e, const EventContext& c, ReadModel& db) {
      const nlohmann::json key = {{"wallet_id", c.stream_id().value()}};
      db.increment(table_, key, "balance", e.amount_cents);
      db.increment(table_, key, "credits", 1);
    });
  }
  std::string name() const override { return name_; }
  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create", "CREATE TABLE " + table_ +
                                " (wallet_id text PRIMARY KEY, owner text,"
                                "  balance bigint NOT NULL DEFAULT 0,"
                                "  credits bigint NOT NULL DEFAULT 0)"}};
  }
  std::vector<std::string> tables() const override { return {table_}; }

 private:
  std::string name_;
  std::string table_;
};
// docs:end

class TypedReadModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = annals::testing::test_database_url();
    events_ = postgres::make_postgres_event_store({.connection_string = url_});
    store_ = make_postgres_projection_store({.connection_string = url_});
    wallet_ = annals::testing::unique_stream("wallet");
  }
  static RunnerOptions options() {
    RunnerOptions out;
    out.acquire_interval = milliseconds(20);
    out.poll_interval = milliseconds(200);
    out.request_interval = milliseconds(50);
    return out;
  }
  static ProjectionOptions policy(OnFailure on_failure) {
    ProjectionOptions out;
    out.max_attempts = 2;
    out.initial_backoff = milliseconds(1);
    out.max_backoff = milliseconds(2);
    out.on_failure = on_failure;
    return out;
  }
  Position append(NewEvent event) {
    return events_->append(StreamId(wallet_), ExpectedVersion::any(), {std::move(event)}).position;
  }
  // Runs `projection` with a fresh runner until it processed `until`.
  bool run(const std::shared_ptr<Projection>& projection, Position until,
           OnFailure on_failure = OnFailure::kStop) {
    ProjectionRunner runner(*events_, *store_, options());
    runner.add(projection, policy(on_failure));
    runner.start();
    const bool reached = runner.wait_for(projection->name(), until, kTimeout);
    runner.stop();
    return reached;
  }
  std::string row(const std::string& table) {
    return admin_.value("SELECT owner || ':' || balance || ':' || credits FROM " + table +
                        " WHERE wallet_id = '" + wallet_ + "'");
  }

  EventRegistry registry_ = wallet_registry();
  std::string url_;
  std::unique_ptr<EventStore> events_;
  std::unique_ptr<ProjectionStore> store_;
  std::string wallet_;
  Admin admin_;
};

TEST_F(TypedReadModelTest, ARenamedTypeStoredUnderItsOldNameIsProjectedExactlyOnce) {
  const auto name = unique_name("typed_wallets");
  const auto table = unique_name("wallets");
  append(wallet::raw("WalletCreated", 1, {{"owner", "ada"}}));   // v1 -> v3
  append(wallet::raw("FundsAdded", 1, {{"amount", 2}}));         // old name, v1
  append(wallet::raw("FundsAdded", 2, {{"amount_cents", 30}}));  // old name, v2
  const auto first =
      append(wallet::raw("WalletCredited", 3, {{"amount_cents", 4}, {"currency", "EUR"}}));
  ASSERT_TRUE(run(std::make_shared<WalletTable>(registry_, name, table), first));
  EXPECT_EQ(row(table), "ada:234:3");
  EXPECT_EQ(store_->checkpoint(name), first);

  // A second runner (a restart) continues from the checkpoint: nothing is applied twice.
  const auto second = append(wallet::raw("FundsAdded", 1, {{"amount", 1}}));
  ASSERT_TRUE(run(std::make_shared<WalletTable>(registry_, name, table), second));
  EXPECT_EQ(row(table), "ada:334:4");
  EXPECT_EQ(store_->checkpoint(name), second);
}

TEST_F(TypedReadModelTest, AnEventThatDoesNotDecodeIsParkedAndItsWritesRolledBack) {
  const auto name = unique_name("typed_parker");
  const auto table = unique_name("wallets");
  append(wallet::raw("WalletCreated", 3, {{"owner_name", "ada"}, {"currency", "EUR"}}));
  const auto bad = append(wallet::raw("WalletCredited", 3, {{"amount_cents", "ten"}}));
  const auto last = append(wallet::raw("FundsAdded", 2, {{"amount_cents", 7}}));
  ASSERT_TRUE(
      run(std::make_shared<WalletTable>(registry_, name, table), last, OnFailure::kDeadLetter));
  EXPECT_EQ(row(table), "ada:7:1");
  const auto letters = store_->list_dead_letters({.projection = name});
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].event.position, bad);
  EXPECT_THAT(letters[0].error, HasSubstr("\"WalletCredited\" v3"));
  EXPECT_THAT(letters[0].error, HasSubstr(wallet_));
}

// ---- ReadModelSpec -------------------------------------------------------------------------

TEST(ReadModelSpecTest, GivenOldAndTypedEventsWhenProjectedThenTheTablesHoldTheExpectedRows) {
  const auto registry = wallet_registry();
  // docs:begin read-model-spec
  WalletTable projection(registry, "spec_wallets", "wallets");
  annals::testkit::ReadModelSpec spec(registry, annals::testing::test_database_url());
  spec.given("wallet-1", WalletCreated{.owner_name = "ada", .currency = "EUR"})
      .given("wallet-1", wallet::raw("FundsAdded", 1, {{"amount", 2}}))  // the old name
      .given("wallet-2",
             wallet::raw("WalletOpenedWithFunds", 1, {{"owner", "bob"}, {"initial", 3}}))
      .given("wallet-1", WalletCredited{.amount_cents = 5, .currency = "EUR"})
      .when(projection)
      .then_rows("SELECT wallet_id, owner, balance, credits FROM wallets ORDER BY wallet_id",
                 {{{"wallet_id", "wallet-1"}, {"owner", "ada"}, {"balance", 205}, {"credits", 2}},
                  {{"wallet_id", "wallet-2"}, {"owner", "bob"}, {"balance", 300}, {"credits", 1}}});
  // docs:end
}

TEST(ReadModelSpecTest, SpecsShareADatabaseWithoutSeeingEachOther) {
  const auto registry = wallet_registry();
  WalletTable first(registry, "spec_wallets", "wallets");
  WalletTable second(registry, "spec_wallets", "wallets");
  annals::testkit::ReadModelSpec a(registry, annals::testing::test_database_url());
  annals::testkit::ReadModelSpec b(registry, annals::testing::test_database_url());
  a.given("wallet-1", WalletCredited{.amount_cents = 1, .currency = "EUR"}).when(first);
  b.given("wallet-1", WalletCredited{.amount_cents = 2, .currency = "EUR"}).when(second);
  a.then_rows("SELECT balance FROM wallets", {{{"balance", 1}}});
  b.then_rows("SELECT balance FROM wallets", {{{"balance", 2}}});
  EXPECT_NE(a.schema(), b.schema());
}

TEST(ReadModelSpecTest, ThenFailsNamesTheEventAndKeepsItsWritesOut) {
  const auto registry = wallet_registry();
  WalletTable projection(registry, "spec_wallets", "wallets");
  annals::testkit::ReadModelSpec spec(registry, annals::testing::test_database_url());
  spec.given("wallet-1", WalletCredited{.amount_cents = 5, .currency = "EUR"})
      .given("wallet-1", wallet::raw("WalletCredited", 3, {{"amount_cents", "ten"}}))
      .when(projection)
      .then_fails("does not fit its C++ type");
  EXPECT_EQ(spec.query("SELECT balance FROM wallets"),
            (std::vector<nlohmann::json>{{{"balance", 5}}}));
}

}  // namespace
}  // namespace annals::projections
