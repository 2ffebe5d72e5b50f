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
#include "eventually.hpp"
#include "read_model_support.hpp"
#include "test_roles.hpp"

namespace annals::projections {
namespace {

using annals::testing::eventually;

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

const std::string kLockOf =
    " FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND ((l.classid::bigint << 32) | l.objid::bigint) = ";

ProjectionRecord record_of(ProjectionStore& store, const std::string& name) {
  for (auto& r : store.list()) {
    if (r.name == name) return r;
  }
  throw NotFoundError(name);
}

// One projection (`model_`) whose lease the stores of a test compete for, and the superuser
// connection (`admin_`) that looks at and ends their sessions.
class SessionLivenessTest : public ::testing::Test {
 protected:
  // Creates the projection's tables through `store`, then asks for its lease as `owner`.
  std::optional<Lease> prepare_and_acquire(ProjectionStore& store, const std::string& owner) {
    store.prepare(model_.projection);
    return acquire(store, owner);
  }

  std::optional<Lease> acquire(ProjectionStore& store, const std::string& owner) {
    return store.try_acquire(model_.name, owner, kLongTtl);
  }

  // The presence key recorded in the lease row of the projection, if any.
  std::optional<std::int64_t> recorded_session() {
    const auto text = admin_.value("SELECT owner_session FROM annals.projections WHERE name = '" +
                                   model_.name + "'");
    if (text.empty()) return std::nullopt;
    return std::stoll(text);
  }

  bool lock_held(std::int64_t key) {
    return admin_.value("SELECT count(*)" + kLockOf + std::to_string(key)) == "1";
  }

  // Ends the session holding presence lock `key`, as a crash or a cut network would, and waits
  // until its backend has exited (its locks released).
  void cut_session(std::int64_t key) {
    ASSERT_EQ(admin_.value("SELECT bool_and(pg_terminate_backend(l.pid, 10000))" + kLockOf +
                           std::to_string(key)),
              "t")
        << "no session held presence key " << key;
    ASSERT_FALSE(lock_held(key));
  }

  // Closes `store` as its process's exit would (its connections close), and waits until the
  // server has dropped its presence lock `key`.
  void close(std::unique_ptr<ProjectionStore>& store, std::int64_t key) {
    store.reset();
    ASSERT_TRUE(eventually([&] { return !lock_held(key); }))
        << "presence key " << key << " is still held after its store closed";
  }

  // Two processes' stores, A and B; A prepares the projection and takes its lease
  // (`lease_a_`), whose row records A's presence key (`key_a_`).
  void a_holds_the_lease() {
    store_a_ = writer_store();
    store_b_ = writer_store();
    const auto lease = prepare_and_acquire(*store_a_, "runner-a");
    ASSERT_TRUE(lease);
    lease_a_ = *lease;
    const auto key = recorded_session();
    ASSERT_TRUE(key) << "the lease records no owner session";
    key_a_ = *key;
  }

  Admin admin_;
  RowsModel model_;
  std::unique_ptr<ProjectionStore> store_a_;
  std::unique_ptr<ProjectionStore> store_b_;
  Lease lease_a_;
  std::int64_t key_a_ = 0;
};

TEST_F(SessionLivenessTest, AClosedOwnersLeaseIsTakenOverAtOnceWithAHigherToken) {
  ASSERT_NO_FATAL_FAILURE(a_holds_the_lease());
  EXPECT_TRUE(lock_held(key_a_));

  // Alive: the 60 s lease is not free.
  EXPECT_FALSE(acquire(*store_b_, "runner-b"));
  EXPECT_TRUE(record_of(*store_b_, model_.name).owned);

  // A's process ends (its connections close); the server drops its presence lock.
  ASSERT_NO_FATAL_FAILURE(close(store_a_, key_a_));
  EXPECT_FALSE(record_of(*store_b_, model_.name).owned);
  const auto lease_b = acquire(*store_b_, "runner-b");
  ASSERT_TRUE(lease_b) << "the lease of a dead session was not taken over before its expiry";
  EXPECT_EQ(lease_b->fencing_token, lease_a_.fencing_token + 1);
  EXPECT_EQ(lease_b->owner, "runner-b");
  const auto key_b = recorded_session();
  ASSERT_TRUE(key_b);
  EXPECT_NE(*key_b, key_a_);
  EXPECT_TRUE(lock_held(*key_b));
}

TEST_F(SessionLivenessTest, ALiveProcessWhosePresenceWasCutLosesOwnershipCleanly) {
  ASSERT_NO_FATAL_FAILURE(a_holds_the_lease());
  // A is in the middle of a batch when its presence connection is cut; its process lives on.
  auto batch_a = store_a_->begin(lease_a_, Position::start());
  model_.projection.apply(event_at(Position(5, 1), {{"id", "from-a"}}), *batch_a);
  ASSERT_NO_FATAL_FAILURE(cut_session(key_a_));

  const auto lease_b = acquire(*store_b_, "runner-b");
  ASSERT_TRUE(lease_b);
  EXPECT_EQ(lease_b->fencing_token, lease_a_.fencing_token + 1);

  // A's commit carries the old token: refused, nothing of its batch stored.
  try {
    batch_a->commit(Position(5, 1));
    FAIL() << "a commit with the token of a cut session went through";
  } catch (const OwnershipLostError& e) {
    EXPECT_THAT(e.what(), HasSubstr("taken over"));
  }
  batch_a.reset();
  EXPECT_EQ(admin_.count(model_.table), 0);
  EXPECT_EQ(store_a_->checkpoint(model_.name), Position::start());
  // A can neither renew the old lease nor take B's (B is alive).
  EXPECT_FALSE(store_a_->renew(lease_a_, kLongTtl));
  EXPECT_FALSE(acquire(*store_a_, "runner-a"));
  // B commits with its token.
  auto batch_b = store_b_->begin(*lease_b, Position::start());
  model_.projection.apply(event_at(Position(5, 1), {{"id", "from-b"}}), *batch_b);
  batch_b->commit(Position(5, 1));
  EXPECT_EQ(admin_.value("SELECT string_agg(id, ',') FROM " + model_.table), "from-b");
}

TEST_F(SessionLivenessTest, ACutPresenceIsReopenedAndTheNextRenewalRecordsTheNewKey) {
  ASSERT_NO_FATAL_FAILURE(a_holds_the_lease());
  ASSERT_NO_FATAL_FAILURE(cut_session(key_a_));

  // Nobody took it yet: A's renewal keeps the lease (same token) and records a new session.
  const auto renewed = store_a_->renew(lease_a_, kLongTtl);
  ASSERT_TRUE(renewed);
  EXPECT_EQ(renewed->fencing_token, lease_a_.fencing_token);
  const auto second_key = recorded_session();
  ASSERT_TRUE(second_key) << "the renewal did not record the reopened presence session";
  EXPECT_NE(*second_key, key_a_);
  EXPECT_TRUE(lock_held(*second_key));
  EXPECT_FALSE(acquire(*store_b_, "runner-b"));

  // The new session is watched like the first one.
  ASSERT_NO_FATAL_FAILURE(cut_session(*second_key));
  const auto lease_b = acquire(*store_b_, "runner-b");
  ASSERT_TRUE(lease_b);
  EXPECT_EQ(lease_b->fencing_token, lease_a_.fencing_token + 1);
}

TEST_F(SessionLivenessTest, TheSameOwnerNameAfterItsSessionEndedGetsANewToken) {
  // A restarted process with a fixed owner name must not inherit the dead one's token: the
  // dead process's last batch could still be in flight on the server.
  auto first = writer_store();
  const auto old_lease = prepare_and_acquire(*first, "bank-1");
  ASSERT_TRUE(old_lease);
  const auto key = recorded_session();
  ASSERT_TRUE(key);
  ASSERT_NO_FATAL_FAILURE(close(first, *key));

  auto restarted = writer_store();
  const auto lease = acquire(*restarted, "bank-1");
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->fencing_token, old_lease->fencing_token + 1);
  // Asking again while alive is a renewal: the token stays.
  const auto again = acquire(*restarted, "bank-1");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->fencing_token, lease->fencing_token);
}

TEST_F(SessionLivenessTest, WithoutSessionLivenessOnlyTheExpiryApplies) {
  auto store_a = writer_store(false);
  const auto lease_a = prepare_and_acquire(*store_a, "runner-a");
  ASSERT_TRUE(lease_a);
  EXPECT_FALSE(recorded_session()) << "a store without liveness recorded one";
  store_a.reset();
  auto store_b = writer_store();
  EXPECT_FALSE(acquire(*store_b, "runner-b"))
      << "a lease recording no session was taken before it expired";
  admin_.query(
      "UPDATE annals.projections SET lease_expires_at = now() - interval '1 ms'"
      " WHERE name = '" +
      model_.name + "'");
  const auto lease_b = acquire(*store_b, "runner-b");
  ASSERT_TRUE(lease_b);
  EXPECT_EQ(lease_b->fencing_token, lease_a->fencing_token + 1);
}

}  // namespace
}  // namespace annals::projections
