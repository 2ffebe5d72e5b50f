// The PostgreSQL store's pools (eventstore/postgres/src/connection_pool.hpp): two pools that
// share one budget never have more connections open together than the budget, close an idle
// connection of the other pool when they need one, and wait when every connection is lent out.
#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "connection_pool.hpp"

namespace {

using annals::postgres::detail::ConnectionPool;
using annals::postgres::detail::PoolBudget;

// Counts live instances and the most ever alive at once. Two types, as the store has.
template <int Kind>
struct Counted {
  explicit Counted(const std::string& connection_string) : url(connection_string) {
    const int now = ++live_total();
    int seen = most_total().load();
    while (now > seen && !most_total().compare_exchange_weak(seen, now)) {
    }
  }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
  ~Counted() { --live_total(); }

  static std::atomic<int>& live_total() {
    static std::atomic<int> live{0};
    return live;
  }
  static std::atomic<int>& most_total() {
    static std::atomic<int> most{0};
    return most;
  }
  std::string url;
};
using Writer = Counted<0>;
using Reader = Counted<1>;

int live() { return Writer::live_total() + Reader::live_total(); }

TEST(ConnectionPoolTest, PoolsSharingABudgetNeverExceedItTogether) {
  constexpr std::size_t kBudget = 3;
  auto budget = std::make_shared<PoolBudget>(kBudget);
  ConnectionPool<Writer> writers("w", budget, nullptr);
  ConnectionPool<Reader> readers("r", budget, nullptr);
  std::atomic<int> most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const auto check = [&] {
          const int now = live();
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
        };
        if ((i + t) % 3 == 0) {
          auto lease = writers.acquire();
          EXPECT_EQ(lease->url, "w");
          check();
        } else {
          auto lease = readers.acquire();
          EXPECT_EQ(lease->url, "r");
          check();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(most.load(), static_cast<int>(kBudget));
  EXPECT_GE(most.load(), 1);
  EXPECT_LE(live(), static_cast<int>(kBudget));
}

TEST(ConnectionPoolTest, ClosesAnIdleConnectionOfTheOtherPoolWhenTheBudgetIsSpent) {
  auto budget = std::make_shared<PoolBudget>(1);
  ConnectionPool<Writer> writers("w", budget, nullptr);
  ConnectionPool<Reader> readers("r", budget, nullptr);
  const int writers_before = Writer::live_total();
  const int readers_before = Reader::live_total();
  { auto lease = writers.acquire(); }  // returned: one idle writer
  EXPECT_EQ(Writer::live_total(), writers_before + 1);
  {
    auto lease = readers.acquire();  // the idle writer is closed to make room
    EXPECT_EQ(Writer::live_total(), writers_before);
    EXPECT_EQ(Reader::live_total(), readers_before + 1);
  }
  { auto lease = readers.acquire(); }  // the idle reader is reused, nothing opened
  EXPECT_EQ(Reader::live_total(), readers_before + 1);
}

TEST(ConnectionPoolTest, WaitsForALentConnectionWhenNoneIsIdle) {
  auto budget = std::make_shared<PoolBudget>(1);
  ConnectionPool<Writer> writers("w", budget, nullptr);
  ConnectionPool<Reader> readers("r", budget, nullptr);
  std::atomic<bool> returned{false};
  auto held = std::make_unique<ConnectionPool<Writer>::Lease>(writers.acquire());
  auto waiter = std::async(std::launch::async, [&] {
    auto lease = readers.acquire();
    // Only possible once the writer's lease was given back (and its connection closed).
    EXPECT_TRUE(returned.load());
  });
  returned = true;
  held.reset();
  waiter.get();
}

TEST(ConnectionPoolTest, AFailedConnectGivesItsSlotBack) {
  auto budget = std::make_shared<PoolBudget>(1);
  int attempts = 0;
  ConnectionPool<Writer> failing("w", budget, [&](Writer&) {
    if (++attempts == 1) throw std::runtime_error("cannot prepare");
  });
  EXPECT_THROW(failing.acquire(), std::runtime_error);
  auto lease = failing.acquire();  // the slot of the failed attempt is free again
  EXPECT_EQ(attempts, 2);
}

}  // namespace
