// What only the PostgreSQL ProjectionStore does, beyond the shared contract: fencing against a
// real concurrent takeover (two connections, a batch held open), the checkpoint compare-and-
// set with read-model writes, lease expiry by the database clock, read-model migrations under
// concurrent preparers, atomic resets, and broken connections (pg_terminate_backend).
// Synchronization is by held transactions, held locks and pg_locks, never by sleeping.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "read_model_support.hpp"
#include "test_database.hpp"

namespace annals::projections {
namespace {

using testing::Admin;
using testing::event_at;
using ::testing::HasSubstr;
using testing::LambdaReadModel;
using testing::make_store;
using testing::unique_name;

constexpr std::chrono::milliseconds kLongTtl{60'000};

// A read model with one table "<name>_rows (id text primary key, value text)"; each event
// upserts data.id → data.value.
class RowsProjection {
 public:
  RowsProjection()
      : name_(unique_name("rows")),
        table_(name_ + "_rows"),
        projection_(std::make_shared<LambdaReadModel>(
            name_, [table = table_](const RecordedEvent& e, ReadModel& db) {
              db.upsert(table, {{"id", e.data.at("id")}}, {{"value", e.data.at("value")}});
            })) {
    projection_->migrations_ = {
        {"0001_create_rows",
         "CREATE TABLE " + table_ + " (id text PRIMARY KEY, value text NOT NULL)"}};
    projection_->tables_ = {table_};
  }

  const std::string& name() const { return name_; }
  const std::string& table() const { return table_; }
  LambdaReadModel& projection() { return *projection_; }

  static RecordedEvent row(Position at, const std::string& id, const std::string& value) {
    return event_at(at, {{"id", id}, {"value", value}});
  }

 private:
  std::string name_;
  std::string table_;
  std::shared_ptr<LambdaReadModel> projection_;
};

// Makes the lease of `projection` lapse now, by the database clock.
void expire_lease(Admin& admin, const std::string& projection) {
  admin.query(
      "UPDATE annals.projections SET lease_expires_at = now() - interval '1 millisecond'"
      " WHERE name = '" +
      projection + "'");
}

std::int64_t micros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// --- Fencing -----------------------------------------------------------------------------------

TEST(PostgresProjectionStoreTest, StaleOwnerCommitAfterTakeoverIsRefusedAndItsWritesVanish) {
  Admin admin;
  RowsProjection rows;
  auto store_a = make_store();
  auto store_b = make_store();
  store_a->prepare(rows.projection());

  const auto lease_a = store_a->try_acquire(rows.name(), "runner-a", kLongTtl);
  ASSERT_TRUE(lease_a.has_value());
  // A holds a batch open on its connection and writes into it.
  auto batch_a = store_a->begin(*lease_a, Position::start());
  rows.projection().apply(RowsProjection::row(Position(10, 1), "from-a", "a"), *batch_a);

  // Meanwhile A's lease lapses (by the database clock) and B takes over and commits.
  expire_lease(admin, rows.name());
  const auto lease_b = store_b->try_acquire(rows.name(), "runner-b", kLongTtl);
  ASSERT_TRUE(lease_b.has_value());
  EXPECT_EQ(lease_b->fencing_token, lease_a->fencing_token + 1);
  {
    auto batch_b = store_b->begin(*lease_b, Position::start());
    rows.projection().apply(RowsProjection::row(Position(10, 1), "from-b", "b"), *batch_b);
    batch_b->commit(Position(10, 1));
  }

  // A's commit is refused; nothing of its batch is visible.
  try {
    batch_a->commit(Position(10, 1));
    FAIL() << "the stale owner's commit went through";
  } catch (const OwnershipLostError& e) {
    EXPECT_THAT(e.what(), HasSubstr(rows.name()));
    EXPECT_THAT(e.what(), HasSubstr("taken over"));
  }
  batch_a.reset();
  EXPECT_EQ(admin.count(rows.table()), 1);
  EXPECT_EQ(admin.value("SELECT value FROM " + rows.table() + " WHERE id = 'from-b'"), "b");
  EXPECT_EQ(store_a->checkpoint(rows.name()), Position(10, 1));
  const auto listed = store_a->list();
  for (const auto& r : listed) {
    if (r.name == rows.name()) {
      EXPECT_EQ(r.owner, "runner-b");
      EXPECT_EQ(r.fencing_token, lease_b->fencing_token);
    }
  }
}

TEST(PostgresProjectionStoreTest, StaleOwnerCommitWhileTheNewOwnersBatchIsOpenIsRefused) {
  Admin admin;
  RowsProjection rows;
  auto store_a = make_store();
  auto store_b = make_store();
  store_a->prepare(rows.projection());
  const auto lease_a = store_a->try_acquire(rows.name(), "runner", kLongTtl);
  ASSERT_TRUE(lease_a.has_value());
  auto batch_a = store_a->begin(*lease_a, Position::start());
  rows.projection().apply(RowsProjection::row(Position(5, 5), "old", "a"), *batch_a);

  // The same owner name, restarted elsewhere, takes the lapsed lease back: a new incarnation,
  // so a new token, while the old one still has its batch open.
  expire_lease(admin, rows.name());
  const auto lease_b = store_b->try_acquire(rows.name(), "runner", kLongTtl);
  ASSERT_TRUE(lease_b.has_value());
  EXPECT_GT(lease_b->fencing_token, lease_a->fencing_token);
  auto batch_b = store_b->begin(*lease_b, Position::start());
  rows.projection().apply(RowsProjection::row(Position(5, 5), "new", "b"), *batch_b);

  EXPECT_THROW(batch_a->commit(Position(5, 5)), OwnershipLostError);
  batch_a.reset();
  batch_b->commit(Position(5, 5));
  EXPECT_EQ(admin.value("SELECT string_agg(id, ',' ORDER BY id) FROM " + rows.table()), "new");
}

TEST(PostgresProjectionStoreTest, SecondBatchFromTheSameCheckpointIsRefusedByTheCompareAndSet) {
  Admin admin;
  RowsProjection rows;
  auto store = make_store();
  store->prepare(rows.projection());
  const auto lease = store->try_acquire(rows.name(), "runner", kLongTtl);
  ASSERT_TRUE(lease.has_value());

  // Two batches of the same owner, open at once from the same checkpoint (a runner bug, or a
  // retry racing its original): the first commit wins, the second is refused whole.
  auto first = store->begin(*lease, Position::start());
  auto second = store->begin(*lease, Position::start());
  rows.projection().apply(RowsProjection::row(Position(3, 1), "first", "1"), *first);
  rows.projection().apply(RowsProjection::row(Position(3, 2), "second", "2"), *second);
  second->park(RowsProjection::row(Position(3, 3), "parked", "x"), "boom", 1);
  first->commit(Position(3, 1));
  try {
    second->commit(Position(3, 2));
    FAIL() << "the second commit went through";
  } catch (const OwnershipLostError& e) {
    EXPECT_THAT(e.what(), HasSubstr("checkpoint moved from 0 to 3:1"));
  }
  second.reset();
  EXPECT_EQ(store->checkpoint(rows.name()), Position(3, 1));
  EXPECT_EQ(admin.value("SELECT string_agg(id, ',' ORDER BY id) FROM " + rows.table()), "first");
  DeadLetterQuery query;
  query.projection = rows.name();
  EXPECT_TRUE(store->list_dead_letters(query).empty());
}

// --- Leases by the database clock --------------------------------------------------------------

TEST(PostgresProjectionStoreTest, LeaseExpiryIsJudgedByTheDatabaseClock) {
  Admin admin;
  RowsProjection rows;
  auto store = make_store();
  store->prepare(rows.projection());

  const auto db_now = [&] {
    return std::stoll(
        admin.value("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint"));
  };
  const auto before = db_now();
  const auto lease = store->try_acquire(rows.name(), "runner-a", std::chrono::milliseconds(90'000));
  const auto after = db_now();
  ASSERT_TRUE(lease.has_value());
  // expires_at = the database's now() + ttl, exactly as stored.
  EXPECT_GE(micros(lease->expires_at), before + 90'000'000);
  EXPECT_LE(micros(lease->expires_at), after + 90'000'000);
  EXPECT_EQ(std::to_string(micros(lease->expires_at)),
            admin.value("SELECT (extract(epoch FROM lease_expires_at) * 1000000)::bigint"
                        " FROM annals.projections WHERE name = '" +
                        rows.name() + "'"));

  // One microsecond before expiry by the database clock, the lease still holds...
  admin.query(
      "UPDATE annals.projections SET lease_expires_at = now() + interval '1 hour'"
      " WHERE name = '" +
      rows.name() + "'");
  EXPECT_FALSE(store->try_acquire(rows.name(), "runner-b", kLongTtl).has_value());
  // ...and once the database clock passed it, another owner takes over with a higher token,
  // whatever this process's clock says.
  expire_lease(admin, rows.name());
  const auto taken = store->try_acquire(rows.name(), "runner-b", kLongTtl);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->fencing_token, lease->fencing_token + 1);
  // A lapsed lease that nobody took may still be renewed by its holder: its token is current.
  expire_lease(admin, rows.name());
  const auto renewed = store->renew(*taken, kLongTtl);
  ASSERT_TRUE(renewed.has_value());
  EXPECT_EQ(renewed->fencing_token, taken->fencing_token);
}

TEST(PostgresProjectionStoreTest, BadLeaseArgumentsAreRejected) {
  RowsProjection rows;
  auto store = make_store();
  store->prepare(rows.projection());
  EXPECT_THROW(static_cast<void>(store->try_acquire(rows.name(), "", kLongTtl)),
               InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(store->try_acquire(rows.name(), "bad\nowner", kLongTtl)),
               InvalidArgumentError);
  try {
    static_cast<void>(store->try_acquire(rows.name(), "runner", std::chrono::milliseconds(0)));
    FAIL() << "a zero ttl was accepted";
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr("ttl"));
  }
}

TEST(PostgresProjectionStoreTest, OptionsAreValidated) {
  EXPECT_THROW(static_cast<void>(make_postgres_projection_store({.connection_string = ""})),
               InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(make_postgres_projection_store(
                   {.connection_string = annals::testing::test_database_url(), .pool_size = 0})),
               InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(make_postgres_projection_store(
                   {.connection_string = "postgresql://annals@127.0.0.1:1/nowhere"})),
               UnavailableError);
}

TEST(PostgresProjectionStoreTest, UnmigratedDatabaseIsNotFound) {
  // A fresh database without the annals schema.
  const annals::testing::ScratchDatabase unmigrated("annals_unmigrated", false);
  try {
    static_cast<void>(make_postgres_projection_store({.connection_string = unmigrated.url()}));
    ADD_FAILURE() << "opened a store on a database without the schema";
  } catch (const NotFoundError& e) {
    EXPECT_THAT(e.what(), HasSubstr("annals migrate"));
  }
}

// --- Read-model migrations ---------------------------------------------------------------------

TEST(PostgresProjectionStoreTest, MigrationsAreAppliedOnceInOrderAndRecorded) {
  Admin admin;
  RowsProjection rows;
  auto store = make_store();
  store->prepare(rows.projection());
  // Adding a migration later applies only the new one.
  rows.projection().migrations_.push_back(
      {"0002_add_note", "ALTER TABLE " + rows.table() + " ADD COLUMN note text"});
  store->prepare(rows.projection());
  store->prepare(rows.projection());
  EXPECT_EQ(admin.value("SELECT string_agg(name, ',' ORDER BY applied_at, name)"
                        " FROM annals.projection_migrations WHERE projection = '" +
                        rows.name() + "'"),
            "0001_create_rows,0002_add_note");
  EXPECT_EQ(admin.value("SELECT count(*) FROM information_schema.columns WHERE table_name = '" +
                        rows.table() + "' AND column_name = 'note'"),
            "1");
}

TEST(PostgresProjectionStoreTest, FailingMigrationRollsBackAndNamesItself) {
  Admin admin;
  RowsProjection rows;
  rows.projection().migrations_.push_back({"0002_broken", "ALTER TABLE nowhere_at_all ADD x int"});
  auto store = make_store();
  try {
    store->prepare(rows.projection());
    FAIL() << "a broken migration was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("0002_broken"));
    EXPECT_THAT(e.what(), HasSubstr(rows.name()));
  }
  // Nothing of the prepare committed: not the first migration, not the registration.
  EXPECT_EQ(admin.value("SELECT to_regclass('" + rows.table() + "') IS NULL"), "t");
  EXPECT_EQ(admin.count("annals.projections WHERE name = '" + rows.name() + "'"), 0);
  EXPECT_EQ(admin.count("annals.projection_migrations WHERE projection = '" + rows.name() + "'"),
            0);
}

TEST(PostgresProjectionStoreTest, TwoStoresPreparingAtOnceApplyEachMigrationOnce) {
  Admin admin;
  RowsProjection rows;
  auto first_store = make_store();
  auto second_store = make_store();
  // Registered first, so that both preparers reach the migration lock (a new registration
  // would already make the second wait on the first's uncommitted row).
  auto registered = rows.projection().migrations_;
  rows.projection().migrations_.clear();
  first_store->prepare(rows.projection());
  // The second migration is not idempotent: applied twice, it fails on the primary key.
  registered.push_back({"0002_seed", "INSERT INTO " + rows.table() + " VALUES ('seed', 'once')"});
  rows.projection().migrations_ = registered;

  // Hold the projection's migration lock, so both preparers queue behind it.
  pqxx::connection holder(annals::testing::test_database_url());
  auto hold = std::make_unique<pqxx::work>(holder);
  hold->exec("SELECT pg_advisory_xact_lock(1634627184, hashtext(" + hold->quote(rows.name()) +
             "))");

  std::vector<std::exception_ptr> errors(2);
  std::thread a([&] {
    try {
      first_store->prepare(rows.projection());
    } catch (...) {
      errors[0] = std::current_exception();
    }
  });
  std::thread b([&] {
    try {
      second_store->prepare(rows.projection());
    } catch (...) {
      errors[1] = std::current_exception();
    }
  });
  // Wait until both wait for the lock (a condition on pg_locks, not a duration).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (admin.count("pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = "
                     "1634627184") < 2) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the preparers never queued";
    std::this_thread::yield();
  }
  hold.reset();  // rolls back: releases the lock
  a.join();
  b.join();
  for (const auto& error : errors) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "a preparer failed: " << e.what();
      }
    }
  }
  EXPECT_EQ(admin.count(rows.table()), 1);
  EXPECT_EQ(admin.count("annals.projection_migrations WHERE projection = '" + rows.name() + "'"),
            2);
}

// --- Reset -------------------------------------------------------------------------------------

TEST(PostgresProjectionStoreTest, ResetTruncatesAndResetsTheCheckpointAtomically) {
  Admin admin;
  RowsProjection rows;
  auto store = make_store();
  rows.projection().migrations_.push_back(
      {"0002_log", "CREATE TABLE " + rows.table() + "_log (n bigserial PRIMARY KEY, id text)"});
  rows.projection().tables_.push_back(rows.table() + "_log");
  store->prepare(rows.projection());
  const auto lease = store->try_acquire(rows.name(), "runner", kLongTtl);
  ASSERT_TRUE(lease.has_value());
  {
    auto batch = store->begin(*lease, Position::start());
    for (int i = 1; i <= 3; ++i) {
      rows.projection().apply(RowsProjection::row(Position(9, i), "r" + std::to_string(i), "v"),
                              *batch);
    }
    batch->commit(Position(9, 3));
  }
  admin.query("INSERT INTO " + rows.table() + "_log (id) VALUES ('a'), ('b')");

  // A reset whose batch is not committed changes nothing.
  {
    auto batch = store->begin(*lease, Position(9, 3));
    rows.projection().reset(*batch);
  }
  EXPECT_EQ(admin.count(rows.table()), 3);
  EXPECT_EQ(store->checkpoint(rows.name()), Position(9, 3));

  // A reset refused by the fencing check changes nothing either.
  {
    auto batch = store->begin(*lease, Position(9, 3));
    rows.projection().reset(*batch);
    store->release(*lease);
    EXPECT_THROW(batch->commit(Position::start()), OwnershipLostError);
  }
  EXPECT_EQ(admin.count(rows.table()), 3);
  EXPECT_EQ(admin.count(rows.table() + "_log"), 2);
  EXPECT_EQ(store->checkpoint(rows.name()), Position(9, 3));

  // Committed: every table is empty, identities restart, and the checkpoint is the start.
  const auto again = store->try_acquire(rows.name(), "runner", kLongTtl);
  ASSERT_TRUE(again.has_value());
  {
    auto batch = store->begin(*again, Position(9, 3));
    rows.projection().reset(*batch);
    batch->commit(Position::start());
  }
  EXPECT_EQ(admin.count(rows.table()), 0);
  EXPECT_EQ(admin.count(rows.table() + "_log"), 0);
  EXPECT_EQ(store->checkpoint(rows.name()), Position::start());
  admin.query("INSERT INTO " + rows.table() + "_log (id) VALUES ('c')");
  EXPECT_EQ(admin.value("SELECT n FROM " + rows.table() + "_log"), "1");
}

// --- Broken connections ------------------------------------------------------------------------

// A projection whose handler records its connection's backend pid (through exec) and
// upserts a row.
class PidProjection {
 public:
  PidProjection()
      : rows_(), projection_(rows_.name(), [this](const RecordedEvent& e, ReadModel& db) {
          pid = db.exec("SELECT pg_backend_pid() AS pid").at(0).at("pid").get<int>();
          db.upsert(rows_.table(), {{"id", e.data.at("id")}}, {{"value", e.data.at("value")}});
        }) {
    projection_.migrations_ = rows_.projection().migrations_;
    projection_.tables_ = rows_.projection().tables_;
  }
  const std::string& name() const { return rows_.name(); }
  const std::string& table() const { return rows_.table(); }
  LambdaReadModel& projection() { return projection_; }
  int pid = 0;

 private:
  RowsProjection rows_;
  LambdaReadModel projection_;
};

TEST(PostgresProjectionStoreTest, TerminatedBackendBeforeCommitGivesOutcomeUnknownThenRecovers) {
  Admin admin;
  PidProjection p;
  auto store = make_store(1);
  store->prepare(p.projection());
  const auto lease = store->try_acquire(p.name(), "runner", kLongTtl);
  ASSERT_TRUE(lease.has_value());

  auto batch = store->begin(*lease, Position::start());
  p.projection().apply(RowsProjection::row(Position(4, 1), "lost", "x"), *batch);
  ASSERT_NE(p.pid, 0);
  admin.query("SELECT pg_terminate_backend(" + std::to_string(p.pid) + ", 10000)");
  try {
    batch->commit(Position(4, 1));
    FAIL() << "a commit on a terminated backend succeeded";
  } catch (const OutcomeUnknownError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutcomeUnknown);
    EXPECT_TRUE(e.retryable());
    EXPECT_THAT(e.what(), HasSubstr(p.name()));
  }
  batch.reset();

  // The outcome is learned by reading the checkpoint; the store (one connection) recovers.
  EXPECT_EQ(store->checkpoint(p.name()), Position::start());
  EXPECT_EQ(admin.count(p.table()), 0);
  {
    auto retry = store->begin(*lease, Position::start());
    p.projection().apply(RowsProjection::row(Position(4, 1), "kept", "y"), *retry);
    retry->commit(Position(4, 1));
  }
  EXPECT_EQ(store->checkpoint(p.name()), Position(4, 1));
  EXPECT_EQ(admin.value("SELECT string_agg(id, ',') FROM " + p.table()), "kept");
}

TEST(PostgresProjectionStoreTest, TerminatedBackendDuringApplyGivesUnavailableThenRecovers) {
  Admin admin;
  PidProjection p;
  auto store = make_store(1);
  store->prepare(p.projection());
  const auto lease = store->try_acquire(p.name(), "runner", kLongTtl);
  ASSERT_TRUE(lease.has_value());

  auto batch = store->begin(*lease, Position::start());
  p.projection().apply(RowsProjection::row(Position(4, 1), "first", "x"), *batch);
  admin.query("SELECT pg_terminate_backend(" + std::to_string(p.pid) + ", 10000)");
  try {
    p.projection().apply(RowsProjection::row(Position(4, 2), "second", "x"), *batch);
    FAIL() << "a statement on a terminated backend succeeded";
  } catch (const UnavailableError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_THAT(e.what(), HasSubstr(p.name()));
  }
  batch.reset();

  EXPECT_EQ(store->checkpoint(p.name()), Position::start());
  {
    auto retry = store->begin(*lease, Position::start());
    p.projection().apply(RowsProjection::row(Position(4, 1), "first", "x"), *retry);
    retry->commit(Position(4, 1));
  }
  EXPECT_EQ(store->checkpoint(p.name()), Position(4, 1));
}

TEST(PostgresProjectionStoreTest, IdleConnectionTerminatedIsReplacedTransparently) {
  Admin admin;
  PidProjection p;
  auto store = make_store(1);
  store->prepare(p.projection());
  const auto lease = store->try_acquire(p.name(), "runner", kLongTtl);
  ASSERT_TRUE(lease.has_value());
  {
    auto batch = store->begin(*lease, Position::start());
    p.projection().apply(RowsProjection::row(Position(1, 1), "a", "x"), *batch);
    batch->commit(Position(1, 1));
  }
  // The pool's only connection dies while idle: an autocommit call recovers on a new one...
  admin.query("SELECT pg_terminate_backend(" + std::to_string(p.pid) + ", 10000)");
  EXPECT_EQ(store->checkpoint(p.name()), Position(1, 1));
  {
    auto batch = store->begin(*lease, Position(1, 1));
    p.projection().apply(RowsProjection::row(Position(1, 2), "b", "x"), *batch);
    batch->commit(Position(1, 2));
  }
  // ...and so does a batch, whose BEGIN finds the connection dead.
  const auto second_pid = p.pid;
  admin.query("SELECT pg_terminate_backend(" + std::to_string(second_pid) + ", 10000)");
  {
    auto batch = store->begin(*lease, Position(1, 2));
    p.projection().apply(RowsProjection::row(Position(1, 3), "c", "x"), *batch);
    batch->commit(Position(1, 3));
  }
  EXPECT_NE(p.pid, second_pid);
  EXPECT_EQ(admin.count(p.table()), 3);
  EXPECT_EQ(store->checkpoint(p.name()), Position(1, 3));
}

// --- Read models on another store --------------------------------------------------------------

TEST(PostgresProjectionStoreTest, ReadModelOnANonPostgresStoreNamesTheProjection) {
  RowsProjection rows;
  auto memory = make_in_memory_projection_store();
  try {
    memory->prepare(rows.projection());
    FAIL() << "a read model was prepared on the in-memory store";
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr(rows.name()));
    EXPECT_THAT(e.what(), HasSubstr("PostgreSQL"));
  }
  struct OtherWork final : UnitOfWork {};
  OtherWork other;
  try {
    rows.projection().apply(RowsProjection::row(Position(1, 1), "x", "y"), other);
    FAIL() << "a read model applied an event outside PostgreSQL";
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), HasSubstr(rows.name()));
  }
}

}  // namespace
}  // namespace annals::projections
