// The PostgreSQL stores' connection pool (eventstore/postgres/driver/connection_pool.hpp), with a
// counting stand-in for connections: never more open than the maximum however many threads
// borrow at once, idle connections reused, a borrower waits for a lent one when the pool is
// full, and a failed connect gives its slot back.
#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "connection_pool.hpp"

namespace {

using annals::postgres::detail::ConnectionPool;

std::atomic<int> g_live{0};
std::atomic<int> g_opened{0};

struct Counted {
  explicit Counted(const std::string& connection_string) : url(connection_string) {
    ++g_live;
    ++g_opened;
  }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
  ~Counted() { --g_live; }
  std::string url;
};

void raise_to(std::atomic<int>& most, int value) {
  int seen = most.load();
  while (value > seen && !most.compare_exchange_weak(seen, value)) {
  }
}

TEST(ConnectionPoolTest, NeverOpensMoreThanItsMaximum) {
  constexpr int kMax = 3;
  std::atomic<int> most{0};
  std::atomic<int> lent{0};
  {
    ConnectionPool<Counted> pool("url", kMax, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 500; ++i) {
          auto lease = pool.acquire();
          EXPECT_EQ(lease->url, "url");
          raise_to(most, ++lent);
          raise_to(most, g_live.load());
          --lent;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_LE(g_live.load(), kMax);
  }
  EXPECT_EQ(g_live.load(), 0);
  EXPECT_GE(most.load(), 1);
  EXPECT_LE(most.load(), kMax);
}

TEST(ConnectionPoolTest, ReusesIdleConnectionsAndReplacesDiscardedOnes) {
  ConnectionPool<Counted> pool("url", 2, nullptr);
  const int opened = g_opened.load();
  { auto lease = pool.acquire(); }
  { auto lease = pool.acquire(); }
  EXPECT_EQ(g_opened.load(), opened + 1);
  {
    auto lease = pool.acquire();
    lease.discard();  // it broke
  }
  EXPECT_EQ(g_live.load(), 0);
  { auto lease = pool.acquire(); }
  EXPECT_EQ(g_opened.load(), opened + 2);
}

TEST(ConnectionPoolTest, WaitsForALentConnectionWhenFull) {
  ConnectionPool<Counted> pool("url", 1, nullptr);
  std::atomic<bool> given_back{false};
  auto held = std::make_unique<ConnectionPool<Counted>::Lease>(pool.acquire());
  auto waiter = std::async(std::launch::async, [&] {
    auto lease = pool.acquire();
    EXPECT_TRUE(given_back.load());  // only possible once the first lease was returned
  });
  given_back = true;
  held.reset();
  waiter.get();
  EXPECT_EQ(g_live.load(), 1);  // one connection, lent twice
}

TEST(ConnectionPoolTest, AFailedConnectGivesItsSlotBack) {
  int attempts = 0;
  ConnectionPool<Counted> pool("url", 1, [&](Counted&) {
    if (++attempts == 1) throw std::runtime_error("cannot prepare");
  });
  EXPECT_THROW(pool.acquire(), std::runtime_error);
  auto lease = pool.acquire();  // the slot of the failed attempt is free again
  EXPECT_EQ(attempts, 2);
}

}  // namespace
