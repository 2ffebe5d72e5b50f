// Stream lifecycle on PostgreSQL beyond the contract suite (which runs the same rules on both
// stores): a delete and an append that wait behind the same lock, then go at once, on both
// append paths (the single-event statement and annals.append_events). Exactly one of them wins.
// docs/stream-lifecycle.md, "Racing writers".
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "test_database.hpp"

namespace {

using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::testing::test_database_url;
using annals::testing::unique_stream;

// How many backends of this database wait for a lock.
int waiting_backends() {
  pqxx::connection c(test_database_url());
  pqxx::nontransaction tx(c);
  return tx
      .exec1(
          "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
          " WHERE NOT l.granted AND a.datname = current_database()")[0]
      .as<int>();
}

enum class Winner { kNone, kDelete, kAppend, kBoth };

// A stream at version 1; a transaction locks annals.events so that every insert waits; a
// delete and an append of `append_events` events, both expecting version 1, start and wait;
// the lock goes; returns who won.
Winner race_behind_a_lock(annals::EventStore& store, std::size_t append_events) {
  const StreamId stream(unique_stream("race"));
  store.append(stream, ExpectedVersion::no_stream(), {NewEvent{.type = "Opened"}});
  const int waiting_before = waiting_backends();

  pqxx::connection locker(test_database_url());
  auto lock = std::make_unique<pqxx::work>(locker);
  lock->exec("LOCK TABLE annals.events IN EXCLUSIVE MODE");

  std::mutex mutex;
  bool deleted = false;
  bool appended = false;
  std::vector<std::string> unexpected;
  std::jthread deleter([&] {
    try {
      store.delete_stream(stream, ExpectedVersion::exact(1));
      std::lock_guard guard(mutex);
      deleted = true;
    } catch (const annals::ConcurrencyError& e) {
      // The append won: the stream is at 1 + its events.
      EXPECT_EQ(e.actual(), 1 + static_cast<std::int64_t>(append_events));
    } catch (const std::exception& e) {
      std::lock_guard guard(mutex);
      unexpected.emplace_back(std::string("delete: ") + e.what());
    }
  });
  std::jthread appender([&] {
    try {
      std::vector<NewEvent> events(append_events, NewEvent{.type = "Deposited"});
      store.append(stream, ExpectedVersion::exact(1), std::move(events));
      std::lock_guard guard(mutex);
      appended = true;
    } catch (const annals::StreamDeletedError& e) {
      EXPECT_EQ(e.deleted_version(), 2);
    } catch (const annals::ConcurrencyError& e) {
      EXPECT_EQ(e.actual(), 2);
    } catch (const std::exception& e) {
      std::lock_guard guard(mutex);
      unexpected.emplace_back(std::string("append: ") + e.what());
    }
  });
  // Both writers wait for the table lock before it goes (no sleep: the server says so).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (waiting_backends() < waiting_before + 2) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the writers never waited for the lock";
      break;
    }
    std::this_thread::yield();
  }
  lock->abort();
  deleter.join();
  appender.join();
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  EXPECT_EQ(store.stream_version(stream),
            deleted ? 2 : 1 + static_cast<std::int64_t>(append_events));
  EXPECT_EQ(store.stream_state(stream).deleted, deleted);
  if (deleted && appended) return Winner::kBoth;
  if (deleted) return Winner::kDelete;
  return appended ? Winner::kAppend : Winner::kNone;
}

TEST(StreamLifecyclePostgresTest, DeleteAndASingleEventAppendQueuedTogetherLetExactlyOneWin) {
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = test_database_url(), .pool_size = 4});
  for (int round = 0; round < 3; ++round) {
    const auto winner = race_behind_a_lock(*store, 1);
    EXPECT_TRUE(winner == Winner::kDelete || winner == Winner::kAppend) << "round " << round;
  }
}

TEST(StreamLifecyclePostgresTest, DeleteAndABatchAppendQueuedTogetherLetExactlyOneWin) {
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = test_database_url(), .pool_size = 4});
  for (int round = 0; round < 3; ++round) {
    const auto winner = race_behind_a_lock(*store, 3);
    EXPECT_TRUE(winner == Winner::kDelete || winner == Winner::kAppend) << "round " << round;
  }
}

}  // namespace
