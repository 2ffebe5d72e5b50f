// Group commit of single-event appends (PostgresEventStoreOptions::group_commit_*), on a real
// server. Every test makes the grouping happen deterministically: one append is held at the
// server by a row lock that a test transaction owns, more appends queue behind it (the store
// reports how many wait), and the test then lets the held one go.
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "eventually.hpp"
#include "postgres_event_store_internal.hpp"
#include "test_database.hpp"

namespace {

using annals::testing::eventually;

using annals::AppendResult;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::testing::test_database_url;
using annals::testing::unique_stream;

NewEvent event(const std::string& type, int n = 0) {
  return NewEvent{.type = type, .data = {{"n", n}}};
}

// Backends of the test database waiting for another transaction's row (an append blocked on
// the version a held transaction wrote).
int appends_waiting_on_a_lock() {
  pqxx::connection admin(test_database_url());
  pqxx::nontransaction tx(admin);
  return tx
      .exec1(
          "SELECT count(*)::int FROM pg_stat_activity"
          " WHERE datname = current_database() AND wait_event_type = 'Lock'"
          "   AND query LIKE 'INSERT INTO annals.events AS ev (stream_id,%'")[0]
      .as<int>();
}

// An open transaction that wrote version 1 of `stream` and has not committed: a single-event
// append to that stream blocks on it until it ends.
class HeldVersion {
 public:
  explicit HeldVersion(const StreamId& stream)
      : connection_(test_database_url()), tx_(connection_) {
    tx_.exec_params(
        "SELECT * FROM annals.append_events(ARRAY[$1]::text[], ARRAY[-1]::bigint[], ARRAY[1],"
        " ARRAY[gen_random_uuid()], ARRAY['Held']::text[], ARRAY[1], ARRAY['{}'::jsonb],"
        " ARRAY['{}'::jsonb])",
        stream.value());
  }
  void commit() { tx_.commit(); }
  void abort() { tx_.abort(); }

 private:
  pqxx::connection connection_;
  pqxx::work tx_;
};

std::unique_ptr<annals::EventStore> make_store(std::size_t in_flight) {
  return annals::postgres::make_postgres_event_store({.connection_string = test_database_url(),
                                                      .pool_size = 4,
                                                      .group_commit_in_flight = in_flight});
}

std::future<AppendResult> append_async(annals::EventStore& store, const StreamId& stream,
                                       ExpectedVersion expected, int n) {
  return std::async(std::launch::async, [&store, stream, expected, n] {
    return store.append(stream, expected, {event("Grouped", n)});
  });
}

// Keeps a store's only group-commit slot busy: an append to a stream whose version 1 a held
// transaction wrote waits at the server until release() aborts that transaction.
class BusySlot {
 public:
  explicit BusySlot(annals::EventStore& store) : held_(blocked_) {
    first_ = append_async(store, blocked_, ExpectedVersion::any(), 0);
  }
  // Waits until the append is blocked at the server. Returns false on timeout.
  [[nodiscard]] bool busy() const {
    return eventually([] { return appends_waiting_on_a_lock() == 1; });
  }
  AppendResult release() {
    held_.abort();
    return first_.get();
  }

 private:
  StreamId blocked_{unique_stream("gcblocked")};
  HeldVersion held_;
  std::future<AppendResult> first_;
};

// Waits until `count` appends of `store` wait for a group.
bool waiting_for_group(annals::EventStore& store, std::size_t count) {
  return eventually([&] {
    return annals::postgres::detail::appends_waiting_for_group_for_testing(store) == count;
  });
}

// Appends that arrive while the one slot is busy go to the server together: one transaction
// (the same transaction id in their positions), each with its own version and position.
TEST(PostgresGroupCommitTest, AppendsQueuedBehindABusySlotShareOneTransaction) {
  auto store = make_store(1);
  BusySlot slot(*store);
  ASSERT_TRUE(slot.busy());

  std::vector<StreamId> streams;
  std::vector<std::future<AppendResult>> queued;
  for (int i = 0; i < 5; ++i) {
    streams.emplace_back(unique_stream("gcqueued"));
    queued.push_back(append_async(*store, streams.back(), ExpectedVersion::no_stream(), i));
  }
  ASSERT_TRUE(waiting_for_group(*store, 5));
  const auto first_result = slot.release();  // it writes version 1 of its stream
  EXPECT_EQ(first_result.last_version, 1);
  std::set<std::uint64_t> transactions;
  std::set<std::int64_t> positions;
  for (std::size_t i = 0; i < queued.size(); ++i) {
    const auto result = queued[i].get();
    EXPECT_EQ(result.stream_id, streams[i]);
    EXPECT_EQ(result.first_version, 1);
    EXPECT_EQ(result.last_version, 1);
    transactions.insert(result.position.commit());
    positions.insert(result.position.sequence());
    const auto stored = store->read_stream(streams[i]);
    ASSERT_EQ(stored.size(), 1U);
    EXPECT_EQ(stored[0].position, result.position);
  }
  EXPECT_EQ(transactions.size(), 1U) << "the five queued appends shared one transaction";
  EXPECT_EQ(positions.size(), 5U);
  EXPECT_NE(*transactions.begin(), first_result.position.commit());
}

// In one group, an append whose expected version does not hold writes nothing and gets its
// ConcurrencyError, while the other members commit. Two appends that both expect "no stream"
// of one stream: whichever the group runs first wins.
TEST(PostgresGroupCommitTest, ConflictInAGroupFailsOnlyThatAppend) {
  auto store = make_store(1);
  BusySlot slot(*store);
  ASSERT_TRUE(slot.busy());

  const StreamId contested(unique_stream("gccontested"));
  const StreamId other(unique_stream("gcother"));
  auto a = append_async(*store, contested, ExpectedVersion::no_stream(), 1);
  auto b = append_async(*store, contested, ExpectedVersion::no_stream(), 2);
  auto c = append_async(*store, other, ExpectedVersion::no_stream(), 3);
  ASSERT_TRUE(waiting_for_group(*store, 3));
  slot.release();

  int won = 0;
  int conflicts = 0;
  std::optional<AppendResult> winner;
  for (auto* future : {&a, &b}) {
    try {
      winner = future->get();
      ++won;
    } catch (const annals::ConcurrencyError& e) {
      ++conflicts;
      EXPECT_EQ(e.actual(), std::optional<std::int64_t>(1));
    }
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(conflicts, 1);
  const auto other_result = c.get();
  ASSERT_TRUE(winner.has_value());
  EXPECT_EQ(winner->position.commit(), other_result.position.commit())
      << "the conflict did not stop the rest of its group";
  EXPECT_EQ(store->read_stream(contested).size(), 1U);
  EXPECT_EQ(store->read_stream(other).size(), 1U);
}

// When the server refuses one statement of a group (here a writer outside the store commits
// the version a member is writing: unique violation), the group's transaction is rolled back
// as a whole and every member is retried alone: the innocent ones commit in transactions of
// their own, the loser gets its ConcurrencyError.
TEST(PostgresGroupCommitTest, GroupThatTheServerRefusesIsRetriedAppendByAppend) {
  auto store = make_store(1);
  BusySlot slot(*store);
  ASSERT_TRUE(slot.busy());

  // Queue: two innocent appends and one to a stream whose version 1 another transaction is
  // writing right now. Stream ids sort the group: "gca..." < "gcb..." < "gcz...".
  const StreamId innocent1(unique_stream("gca"));
  const StreamId raced(unique_stream("gcb"));
  const StreamId innocent2(unique_stream("gcz"));
  std::optional<HeldVersion> racer;
  racer.emplace(raced);
  auto i1 = append_async(*store, innocent1, ExpectedVersion::no_stream(), 1);
  auto r = append_async(*store, raced, ExpectedVersion::no_stream(), 2);
  auto i2 = append_async(*store, innocent2, ExpectedVersion::no_stream(), 3);
  ASSERT_TRUE(waiting_for_group(*store, 3));
  slot.release();
  // The group has written innocent1 and now waits for the racer's row of `raced`.
  ASSERT_TRUE(eventually([] { return appends_waiting_on_a_lock() == 1; }));
  racer->commit();  // the group's insert of version 1 now fails: the whole group rolls back

  const auto result1 = i1.get();
  const auto result2 = i2.get();
  EXPECT_THROW(r.get(), annals::ConcurrencyError);
  EXPECT_EQ(result1.last_version, 1);
  EXPECT_EQ(result2.last_version, 1);
  EXPECT_NE(result1.position.commit(), result2.position.commit())
      << "after the rollback each member was appended alone";
  EXPECT_EQ(store->read_stream(innocent1).size(), 1U);
  EXPECT_EQ(store->read_stream(innocent2).size(), 1U);
  const auto raced_events = store->read_stream(raced);
  ASSERT_EQ(raced_events.size(), 1U);
  EXPECT_EQ(raced_events[0].type, "Held");
}

// An exact re-send that travels in a group returns its original result, and a group never
// writes an event id twice.
TEST(PostgresGroupCommitTest, ReSendInAGroupReturnsTheOriginalResult) {
  auto store = make_store(1);
  const StreamId stream(unique_stream("gcresend"));
  NewEvent original = event("Original", 1);
  original.id = annals::EventId::generate();
  const auto stored = store->append(stream, ExpectedVersion::no_stream(), {original});

  BusySlot slot(*store);
  ASSERT_TRUE(slot.busy());
  auto resend = std::async(std::launch::async, [&] {
    return store->append(stream, ExpectedVersion::no_stream(), {original});
  });
  const StreamId fresh(unique_stream("gcfresh"));
  auto other = append_async(*store, fresh, ExpectedVersion::no_stream(), 2);
  ASSERT_TRUE(waiting_for_group(*store, 2));
  slot.release();

  const auto again = resend.get();
  EXPECT_EQ(again.position, stored.position);
  EXPECT_EQ(again.last_version, 1);
  EXPECT_EQ(other.get().last_version, 1);
  EXPECT_EQ(store->read_stream(stream).size(), 1U);
}

// A re-send of a stored id with other data that travels in a group is refused like any other:
// the group's statement writes nothing for it, and annals.append_events, which it
// falls back to, answers IdempotencyError; the rest of the group commits.
TEST(PostgresGroupCommitTest, ChangedReSendInAGroupIsRefused) {
  auto store = make_store(1);
  const StreamId stream(unique_stream("gcchanged"));
  NewEvent original = event("Original", 1);
  original.id = annals::EventId::generate();
  store->append(stream, ExpectedVersion::no_stream(), {original});

  BusySlot slot(*store);
  ASSERT_TRUE(slot.busy());
  NewEvent changed = original;
  changed.data = {{"n", 2}};
  auto resend = std::async(std::launch::async, [&] {
    return store->append(stream, ExpectedVersion::no_stream(), {changed});
  });
  const StreamId fresh(unique_stream("gcfresh"));
  auto other = append_async(*store, fresh, ExpectedVersion::no_stream(), 2);
  ASSERT_TRUE(waiting_for_group(*store, 2));
  slot.release();

  try {
    resend.get();
    ADD_FAILURE() << "expected IdempotencyError";
  } catch (const annals::IdempotencyError& e) {
    EXPECT_NE(std::string(e.what()).find(original.id->to_string()), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("data"), std::string::npos);
  }
  EXPECT_EQ(other.get().last_version, 1);
  const auto stored = store->read_stream(stream);
  ASSERT_EQ(stored.size(), 1U);
  EXPECT_EQ(stored[0].data, original.data);
}

// With group commit off (group_commit_max_appends = 1) every append is its own transaction,
// however many wait.
TEST(PostgresGroupCommitTest, MaxAppendsOfOneTurnsGroupCommitOff) {
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = test_database_url(), .pool_size = 8, .group_commit_max_appends = 1});
  std::vector<std::future<AppendResult>> appends;
  for (int i = 0; i < 8; ++i) {
    appends.push_back(
        append_async(*store, StreamId(unique_stream("gcoff")), ExpectedVersion::no_stream(), i));
  }
  std::set<std::uint64_t> transactions;
  for (auto& a : appends) transactions.insert(a.get().position.commit());
  EXPECT_EQ(transactions.size(), 8U);
}

}  // namespace
