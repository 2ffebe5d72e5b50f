// The document read side on PostgreSQL: the DocumentContract suite (the same one that runs in
// memory, tests/unit/projections/documents_test.cpp) on the PostgreSQL event and projection
// stores and reader, plus what only PostgreSQL does: the collection's table and indexes, the
// planner's use of them, and a document refused by the database inside a pipelined batch.
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/open.hpp"
#include "annals/projections/postgres/postgres_document_reader.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/testkit/document_contract.hpp"
#include "app_domain.hpp"
#include "test_database.hpp"

namespace {

struct PostgresDocuments {
  static annals::testkit::DocumentContractEnv make() {
    const auto& url = annals::testing::test_database_url();
    annals::testkit::DocumentContractEnv env;
    env.events = annals::postgres::make_postgres_event_store({.connection_string = url});
    env.store = annals::projections::make_postgres_projection_store(
        {.connection_string = url, .pool_size = 4});
    env.reader = annals::projections::make_postgres_document_reader(
        {.connection_string = url, .pool_size = 2}, *env.store);
    return env;
  }
};

class DocumentsPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override { env_ = PostgresDocuments::make(); }
  annals::testkit::DocumentContractEnv env_;
};

TEST_F(DocumentsPostgresTest, TheCollectionIsAJsonbTableWithItsDeclaredIndexes) {
  const std::string suffix = annals::testing::random_hex(8);
  annals::testkit::document_contract::Accounts projection("docs_idx_" + suffix, "idx_" + suffix);
  env_.store->prepare(projection);
  env_.store->prepare(projection);  // idempotent: each migration ran once
  pqxx::connection connection(annals::testing::test_database_url());
  pqxx::nontransaction tx(connection);
  const auto columns = tx.exec_params(
      "SELECT column_name || ':' || data_type FROM information_schema.columns"
      " WHERE table_name = $1 ORDER BY ordinal_position",
      "doc_idx_" + suffix);
  ASSERT_EQ(columns.size(), 2U);
  EXPECT_EQ(columns[0][0].as<std::string>(), "id:text");
  EXPECT_EQ(columns[1][0].as<std::string>(), "data:jsonb");
  const auto indexes =
      tx.exec_params("SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexdef",
                     "doc_idx_" + suffix);
  std::string all;
  for (const auto& row : indexes) all += row[0].as<std::string>() + "\n";
  EXPECT_NE(all.find("gin (((data #> '{tags}'::text[])) jsonb_path_ops)"), std::string::npos)
      << all;
  EXPECT_NE(all.find("btree (((data #> '{balance}'::text[])), id)"), std::string::npos) << all;
  const auto migrations = tx.exec_params(
      "SELECT count(*) FROM annals.projection_migrations WHERE projection = $1", projection.name());
  EXPECT_EQ(migrations[0][0].as<int>(), 3);
}

TEST(AppTest, PostgresAppRunsAServiceFromCommandToTypedQuery) {
  const std::string url = annals::testing::test_database_url();
  // docs:begin read-side-open-postgres
  // Every part on one database: 8 pooled connections in all (4 event store, 2 projection
  // store, 1 snapshot store, 1 document reader), one set of timeouts.
  auto app = annals::postgres::open(url, {.max_connections = 8, .migrate = true});
  // docs:end
  app_domain::run_tally(*app, annals::testing::random_hex(8));
}

// The smallest budget gives the projection store one connection: a rebuild must not wait for a
// second one while its batch holds the first (it did, until the batch was released first).
TEST(AppTest, TheSmallestBudgetRunsAndRebuilds) {
  auto app = annals::postgres::open(annals::testing::test_database_url(), {.max_connections = 4});
  app_domain::run_tally(*app, annals::testing::random_hex(8));
}

TEST(AppTest, OpenRefusesATooSmallBudgetAndRolesWithoutMigrate) {
  EXPECT_THROW(static_cast<void>(annals::postgres::open(annals::testing::test_database_url(),
                                                        {.max_connections = 3})),
               annals::InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(annals::postgres::open(annals::testing::test_database_url(),
                                                        {.roles = annals::postgres::RoleLayout{}})),
               annals::InvalidArgumentError)
      << "roles without migrate";
}

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, DocumentContract, PostgresDocuments);
