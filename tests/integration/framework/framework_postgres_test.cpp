// annals::framework on PostgreSQL: the framework suite (repository, snapshots, temporal
// loading, command bus, upcasting real v1/v2 rows), the snapshot store contract, and what is
// particular to the PostgreSQL snapshot store.
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/testkit/snapshot_store_contract.hpp"
#include "framework_suite.hpp"
#include "test_database.hpp"

namespace {

struct PostgresStores {
  static std::unique_ptr<annals::EventStore> make_store() {
    return annals::postgres::make_postgres_event_store(
        {.connection_string = annals::testing::test_database_url(), .pool_size = 8});
  }
  static std::unique_ptr<annals::SnapshotStore> make_snapshots() {
    return annals::postgres::make_postgres_snapshot_store(
        {.connection_string = annals::testing::test_database_url()});
  }
};

struct PostgresSnapshots {
  static std::unique_ptr<annals::SnapshotStore> make() { return PostgresStores::make_snapshots(); }
};

}  // namespace

namespace framework_suite {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, FrameworkSuite, PostgresStores);
}  // namespace framework_suite

namespace annals::testkit {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, SnapshotStoreContract, PostgresSnapshots);
}  // namespace annals::testkit

namespace {

TEST(PostgresSnapshotStoreTest, StoresStateAsJsonbInItsOwnTable) {
  auto snapshots = PostgresStores::make_snapshots();
  const auto stream = annals::testing::unique_stream("account");
  snapshots->save({.stream_id = annals::StreamId(stream),
                   .version = 12,
                   .schema_version = 3,
                   .state = {{"balance", 7}, {"owner", "ada"}}});
  pqxx::connection c(annals::testing::test_database_url());
  pqxx::nontransaction tx(c);
  const auto row = tx.exec_params1(
      "SELECT stream_version, schema_version, state->>'owner', jsonb_typeof(state) "
      "FROM annals.snapshots WHERE stream_id = $1",
      stream);
  EXPECT_EQ(row[0].as<std::int64_t>(), 12);
  EXPECT_EQ(row[1].as<int>(), 3);
  EXPECT_EQ(row[2].as<std::string>(), "ada");
  EXPECT_EQ(row[3].as<std::string>(), "object");
}

TEST(PostgresSnapshotStoreTest, TruncatingTheTableLosesOnlySpeed) {
  // Snapshots are a cache (decision 10): an operator may empty the table at any time.
  annals::EventRegistry registry;
  registry.register_events<bank::Account>();
  auto store = PostgresStores::make_store();
  auto snapshots = PostgresStores::make_snapshots();
  annals::Repository<bank::Account> accounts(
      *store, registry,
      {.snapshots = snapshots.get(), .snapshot_policy = annals::SnapshotPolicy::every(2)});
  const auto id = framework_suite::new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  account.execute(bank::Deposit{id, 5});
  account.execute(bank::Deposit{id, 6});
  accounts.save(account);
  ASSERT_TRUE(snapshots->load(account.stream_id()).has_value());
  {
    pqxx::connection c(annals::testing::test_database_url());
    pqxx::nontransaction tx(c);
    tx.exec0("DELETE FROM annals.snapshots");
  }
  const auto loaded = accounts.load(id);
  EXPECT_EQ(loaded.state(), account.state());
  EXPECT_EQ(loaded.version(), 3);
}

TEST(PostgresSnapshotStoreTest, RefusesADatabaseWithoutTheSnapshotsTable) {
  const std::string name = "annals_fw_nomig_" + framework_suite::new_id().substr(0, 8);
  {
    pqxx::connection admin(annals::testing::server_url());
    pqxx::nontransaction tx(admin);
    tx.exec0("CREATE DATABASE " + tx.quote_name(name));
  }
  std::string url = annals::testing::server_url();
  const auto slash = url.find('/', url.find("//") + 2);
  const auto query = url.find('?');
  url = url.substr(0, slash) + "/" + name + (query == std::string::npos ? "" : url.substr(query));
  EXPECT_THROW((void)annals::postgres::make_postgres_snapshot_store({.connection_string = url}),
               annals::NotFoundError);
  pqxx::connection admin(annals::testing::server_url());
  pqxx::nontransaction tx(admin);
  tx.exec0("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
}

}  // namespace
