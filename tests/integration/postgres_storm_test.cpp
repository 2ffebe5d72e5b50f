// A concurrency storm: 8 threads x 200 optimistic appends on 3 shared streams. Every
// acknowledged append must be stored exactly once, versions must be contiguous, and the
// global log must hold exactly the acknowledged events, each once.
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "test_database.hpp"

namespace {

using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;

TEST(PostgresStormTest, OptimisticAppendsStayContiguous) {
  constexpr int kThreads = 8;
  constexpr int kAppendsPerThread = 200;
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = annals::testing::test_database_url(), .pool_size = kThreads});
  const std::string category = "storm" + annals::testing::unique_stream("s").substr(2, 8);
  const std::vector<StreamId> streams{StreamId(category + "-a"), StreamId(category + "-b"),
                                      StreamId(category + "-c")};

  std::atomic<int> acknowledged{0};
  std::atomic<int> conflicts{0};
  std::vector<std::set<std::string>> acked_ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAppendsPerThread; ++i) {
        const StreamId& stream = streams[static_cast<std::size_t>((t + i) % 3)];
        for (;;) {
          const auto version = store->stream_version(stream).value_or(0);
          const auto id = annals::EventId::generate();
          try {
            const auto r = store->append(
                stream, ExpectedVersion::exact(version),
                {NewEvent{.id = id, .type = "Stormed", .data = {{"thread", t}, {"i", i}}}});
            EXPECT_EQ(r.first_version, version + 1);
            acked_ids[static_cast<std::size_t>(t)].insert(id.to_string());
            acknowledged.fetch_add(1);
            break;
          } catch (const annals::ConcurrencyError& e) {
            EXPECT_EQ(e.stream(), stream.value());
            EXPECT_EQ(e.expected(), std::to_string(version));
            ASSERT_TRUE(e.actual().has_value());
            EXPECT_GT(*e.actual(), version);
            conflicts.fetch_add(1);
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(acknowledged.load(), kThreads * kAppendsPerThread);

  std::set<std::string> all_acked;
  for (const auto& ids : acked_ids) all_acked.insert(ids.begin(), ids.end());

  std::int64_t total = 0;
  std::set<std::string> stored_ids;
  for (const auto& stream : streams) {
    const auto events = store->read_stream(stream);
    for (std::size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i].version, static_cast<std::int64_t>(i + 1)) << stream.value();
      stored_ids.insert(events[i].id.to_string());
    }
    EXPECT_EQ(store->stream_version(stream), static_cast<std::int64_t>(events.size()));
    total += static_cast<std::int64_t>(events.size());
  }
  EXPECT_EQ(total, kThreads * kAppendsPerThread);
  EXPECT_EQ(stored_ids, all_acked);

  // The global log holds each acknowledged event exactly once, in strictly increasing order.
  // Reads stop where other transactions on the server (other test processes) are still
  // settling (decision 5), so read on until every acknowledged event has shown up.
  std::multiset<std::string> in_log;
  annals::Position after;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (in_log.size() < all_acked.size() && std::chrono::steady_clock::now() < deadline) {
    const auto batch =
        store->read_all({.after = after, .max_count = 500, .filter = {.category = category}});
    if (batch.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // back-off, not a sync
      continue;
    }
    for (const auto& e : batch) {
      EXPECT_LT(after, e.position);
      after = e.position;
      in_log.insert(e.id.to_string());
    }
  }
  EXPECT_EQ(in_log.size(), all_acked.size());
  EXPECT_EQ(std::set<std::string>(in_log.begin(), in_log.end()), all_acked);
  RecordProperty("conflicts", conflicts.load());
}

}  // namespace
