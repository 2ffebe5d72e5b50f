// The personal-data suite (unit/framework/personal_data_suite.hpp) on the PostgreSQL event and
// key stores, plus what only PostgreSQL has: the hash chains and anchors keep verifying after a
// subject is forgotten, because they cover the stored ciphertext (docs/personal-data.md).
#include <pqxx/pqxx>

#include "annals/postgres/anchor.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/postgres/postgres_subject_key_store.hpp"
#include "annals/postgres/verify.hpp"
#include "personal_data_suite.hpp"
#include "test_database.hpp"

namespace {

struct PostgresStores {
  static std::unique_ptr<annals::EventStore> make_store() {
    return annals::postgres::make_postgres_event_store(
        {.connection_string = annals::testing::test_database_url(), .pool_size = 8});
  }
  static std::unique_ptr<annals::SubjectKeyStore> make_keys() {
    return annals::postgres::make_postgres_subject_key_store(
        {.connection_string = annals::testing::test_database_url(), .pool_size = 8});
  }
  static std::unique_ptr<annals::SnapshotStore> make_snapshots() {
    return annals::postgres::make_postgres_snapshot_store(
        {.connection_string = annals::testing::test_database_url(), .pool_size = 2});
  }
};

using PersonalDataPostgresTest = personal_data_suite::PersonalDataSuite<PostgresStores>;

TEST_F(PersonalDataPostgresTest, VerifyAndAnchorsPassAfterForgetting) {
  const auto id = personal_data_suite::new_id();
  const auto stream = open(id, "Donald Knuth");
  const auto url = annals::testing::test_database_url();
  const auto anchor = annals::postgres::take_anchor(url);

  static_cast<void>(personal_->forget(stream.value()));

  const auto report = annals::postgres::verify(url, {.anchors = {anchor}, .full = true});
  EXPECT_TRUE(report.ok()) << (report.findings.empty() ? "" : report.findings[0].message);
  ASSERT_EQ(report.anchors.size(), 1U);
  EXPECT_EQ(report.anchors[0].outcome, annals::postgres::AnchorOutcome::kVerified);

  // The stored bytes never changed: the name is not in the table, before or after.
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  const auto rows = tx.exec_params(
      "SELECT count(*) FROM annals.events WHERE stream_id = $1 AND data::text LIKE '%Knuth%'",
      stream.value());
  EXPECT_EQ(rows[0][0].as<int>(), 0);
  // And the key is gone from the key table: only a tombstone without material is left.
  const auto keys = tx.exec_params(
      "SELECT count(*) FILTER (WHERE key_material IS NULL), count(*) FROM annals.subject_keys"
      " WHERE subject = $1",
      stream.value());
  EXPECT_EQ(keys[0][0].as<int>(), 1);
  EXPECT_EQ(keys[0][1].as<int>(), 1);
}

}  // namespace

namespace personal_data_suite {
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, PersonalDataSuite, PostgresStores);
}  // namespace personal_data_suite
