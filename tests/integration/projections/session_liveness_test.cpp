// Session liveness of the PostgreSQL ProjectionStore (sql/0011_lease_owner_session.sql): a
// lease whose owner's presence session ended is free at once, with a higher fencing token,
// while a live owner's lease is not; a live process whose presence connection was cut loses
// ownership cleanly and cannot commit with its old token; a cut presence is reopened and the
// next renewal records it; without session liveness only the expiry applies.
//
// Every store runs as the writer role of the least-privilege layout (sql/0005), the role an
// application runs projections with: it must see other sessions' advisory locks in pg_locks.
// Sessions are ended as a crash would end them (pg_terminate_backend, waiting for the backend
// to exit), and only this test's own sessions on its own database.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "read_model_support.hpp"
#include "test_roles.hpp"

namespace annals::projections {
namespace {

using testing::Admin;
using testing::event_at;
using ::testing::HasSubstr;
using testing::LambdaReadModel;
using testing::unique_name;

constexpr std::chrono::milliseconds kLongTtl{60'000};

std::unique_ptr<ProjectionStore> writer_store(bool session_liveness = true) {
  return make_postgres_projection_store(
      {.connection_string = annals::testing::test_roles().writer_url,
       .pool_size = 2,
       .session_liveness = session_liveness});
}

// A read model with one table "<name>_rows (id text primary key)"; each event inserts data.id.
struct RowsModel {
  RowsModel()
      : name(unique_name("live")),
        table(name + "_rows"),
        projection(name, [t = table](const RecordedEvent& e, ReadModel& db) {
          db.upsert(t, {{"id", e.data.at("id")}}, {});
        }) {
    projection.migrations_ = {{"0001_create", "CREATE TABLE " + table + " (id text PRIMARY KEY)"}};
    projection.tables_ = {table};
  }
  std::string name;
  std::string table;
  LambdaReadModel projection;
};

// The presence key recorded in the lease row of `projection`, if any.
std::optional<std::int64_t> recorded_session(Admin& admin, const std::string& projection) {
  const auto text =
      admin.value("SELECT owner_session FROM annals.projections WHERE name = '" + projection + "'");
  if (text.empty()) return std::nullopt;
  return std::stoll(text);
}

const std::string kLockOf =
    " FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND ((l.classid::bigint << 32) | l.objid::bigint) = ";

bool lock_held(Admin& admin, std::int64_t key) {
  return admin.value("SELECT count(*)" + kLockOf + std::to_string(key)) == "1";
}

// Ends the session holding presence lock `key`, as a crash or a cut network would, and waits
// until its backend has exited (its locks released).
void cut_session(Admin& admin, std::int64_t key) {
  ASSERT_EQ(admin.value("SELECT bool_and(pg_terminate_backend(l.pid, 10000))" + kLockOf +
                        std::to_string(key)),
            "t")
      << "no session held presence key " << key;
  ASSERT_FALSE(lock_held(admin, key));
}

// Bounded polling of a condition, for what the server does asynchronously (a backend of a
// closed connection exits after the client is gone).
bool eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

ProjectionRecord record_of(ProjectionStore& store, const std::string& name) {
  for (auto& r : store.list()) {
    if (r.name == name) return r;
  }
  throw NotFoundError(name);
}

TEST(SessionLivenessTest, AClosedOwnersLeaseIsTakenOverAtOnceWithAHigherToken) {
  Admin admin;
  RowsModel model;
  auto store_a = writer_store();
  auto store_b = writer_store();
  store_a->prepare(model.projection);
  const auto lease_a = store_a->try_acquire(model.name, "runner-a", kLongTtl);
  ASSERT_TRUE(lease_a);
  const auto key_a = recorded_session(admin, model.name);
  ASSERT_TRUE(key_a) << "the lease records no owner session";
  EXPECT_TRUE(lock_held(admin, *key_a));

  // Alive: the 60 s lease is not free.
  EXPECT_FALSE(store_b->try_acquire(model.name, "runner-b", kLongTtl));
  EXPECT_TRUE(record_of(*store_b, model.name).owned);

  // A's process ends (its connections close); the server drops its presence lock.
  store_a.reset();
  ASSERT_TRUE(eventually([&] { return !lock_held(admin, *key_a); }));
  EXPECT_FALSE(record_of(*store_b, model.name).owned);
  const auto lease_b = store_b->try_acquire(model.name, "runner-b", kLongTtl);
  ASSERT_TRUE(lease_b) << "the lease of a dead session was not taken over before its expiry";
  EXPECT_EQ(lease_b->fencing_token, lease_a->fencing_token + 1);
  EXPECT_EQ(lease_b->owner, "runner-b");
  const auto key_b = recorded_session(admin, model.name);
  ASSERT_TRUE(key_b);
  EXPECT_NE(*key_b, *key_a);
  EXPECT_TRUE(lock_held(admin, *key_b));
}

TEST(SessionLivenessTest, ALiveProcessWhosePresenceWasCutLosesOwnershipCleanly) {
  Admin admin;
  RowsModel model;
  auto store_a = writer_store();
  auto store_b = writer_store();
  store_a->prepare(model.projection);
  const auto lease_a = store_a->try_acquire(model.name, "runner-a", kLongTtl);
  ASSERT_TRUE(lease_a);
  // A is in the middle of a batch when its presence connection is cut; its process lives on.
  auto batch_a = store_a->begin(*lease_a, Position::start());
  model.projection.apply(event_at(Position(5, 1), {{"id", "from-a"}}), *batch_a);
  const auto key_a = recorded_session(admin, model.name);
  ASSERT_TRUE(key_a);
  cut_session(admin, *key_a);

  const auto lease_b = store_b->try_acquire(model.name, "runner-b", kLongTtl);
  ASSERT_TRUE(lease_b);
  EXPECT_EQ(lease_b->fencing_token, lease_a->fencing_token + 1);

  // A's commit carries the old token: refused, nothing of its batch stored.
  try {
    batch_a->commit(Position(5, 1));
    FAIL() << "a commit with the token of a cut session went through";
  } catch (const OwnershipLostError& e) {
    EXPECT_THAT(e.what(), HasSubstr("taken over"));
  }
  batch_a.reset();
  EXPECT_EQ(admin.count(model.table), 0);
  EXPECT_EQ(store_a->checkpoint(model.name), Position::start());
  // A can neither renew the old lease nor take B's (B is alive).
  EXPECT_FALSE(store_a->renew(*lease_a, kLongTtl));
  EXPECT_FALSE(store_a->try_acquire(model.name, "runner-a", kLongTtl));
  // B commits with its token.
  auto batch_b = store_b->begin(*lease_b, Position::start());
  model.projection.apply(event_at(Position(5, 1), {{"id", "from-b"}}), *batch_b);
  batch_b->commit(Position(5, 1));
  EXPECT_EQ(admin.value("SELECT string_agg(id, ',') FROM " + model.table), "from-b");
}

TEST(SessionLivenessTest, ACutPresenceIsReopenedAndTheNextRenewalRecordsTheNewKey) {
  Admin admin;
  RowsModel model;
  auto store_a = writer_store();
  auto store_b = writer_store();
  store_a->prepare(model.projection);
  const auto lease_a = store_a->try_acquire(model.name, "runner-a", kLongTtl);
  ASSERT_TRUE(lease_a);
  const auto first_key = recorded_session(admin, model.name);
  ASSERT_TRUE(first_key);
  cut_session(admin, *first_key);

  // Nobody took it yet: A's renewal keeps the lease (same token) and records a new session.
  const auto renewed = store_a->renew(*lease_a, kLongTtl);
  ASSERT_TRUE(renewed);
  EXPECT_EQ(renewed->fencing_token, lease_a->fencing_token);
  const auto second_key = recorded_session(admin, model.name);
  ASSERT_TRUE(second_key) << "the renewal did not record the reopened presence session";
  EXPECT_NE(*second_key, *first_key);
  EXPECT_TRUE(lock_held(admin, *second_key));
  EXPECT_FALSE(store_b->try_acquire(model.name, "runner-b", kLongTtl));

  // The new session is watched like the first one.
  cut_session(admin, *second_key);
  const auto lease_b = store_b->try_acquire(model.name, "runner-b", kLongTtl);
  ASSERT_TRUE(lease_b);
  EXPECT_EQ(lease_b->fencing_token, lease_a->fencing_token + 1);
}

TEST(SessionLivenessTest, TheSameOwnerNameAfterItsSessionEndedGetsANewToken) {
  // A restarted process with a fixed owner name must not inherit the dead one's token: the
  // dead process's last batch could still be in flight on the server.
  Admin admin;
  RowsModel model;
  auto first = writer_store();
  first->prepare(model.projection);
  const auto old_lease = first->try_acquire(model.name, "bank-1", kLongTtl);
  ASSERT_TRUE(old_lease);
  const auto key = recorded_session(admin, model.name);
  ASSERT_TRUE(key);
  first.reset();
  ASSERT_TRUE(eventually([&] { return !lock_held(admin, *key); }));

  auto restarted = writer_store();
  const auto lease = restarted->try_acquire(model.name, "bank-1", kLongTtl);
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->fencing_token, old_lease->fencing_token + 1);
  // Asking again while alive is a renewal: the token stays.
  const auto again = restarted->try_acquire(model.name, "bank-1", kLongTtl);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->fencing_token, lease->fencing_token);
}

TEST(SessionLivenessTest, WithoutSessionLivenessOnlyTheExpiryApplies) {
  Admin admin;
  RowsModel model;
  auto store_a = writer_store(false);
  store_a->prepare(model.projection);
  const auto lease_a = store_a->try_acquire(model.name, "runner-a", kLongTtl);
  ASSERT_TRUE(lease_a);
  EXPECT_FALSE(recorded_session(admin, model.name)) << "a store without liveness recorded one";
  store_a.reset();
  auto store_b = writer_store();
  EXPECT_FALSE(store_b->try_acquire(model.name, "runner-b", kLongTtl))
      << "a lease recording no session was taken before it expired";
  admin.query(
      "UPDATE annals.projections SET lease_expires_at = now() - interval '1 ms'"
      " WHERE name = '" +
      model.name + "'");
  const auto lease_b = store_b->try_acquire(model.name, "runner-b", kLongTtl);
  ASSERT_TRUE(lease_b);
  EXPECT_EQ(lease_b->fencing_token, lease_a->fencing_token + 1);
}

}  // namespace
}  // namespace annals::projections
