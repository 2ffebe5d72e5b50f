// Waiting in tests for something another thread, process or server brings about: poll a
// condition until it holds or a deadline passes, and measure how long a call took.
//
//   ASSERT_TRUE(annals::testing::eventually([&] { return runner.state() == kReconnecting; }));
//   const auto start = Clock::now();
//   ... EXPECT_LT(annals::testing::elapsed_since(start), kTimeout + kMargin);
//
// The deadline is a failure bound, not a synchronisation: a passing test returns as soon as the
// condition holds, so generous deadlines cost nothing on a healthy run.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace annals::testing {

/// True once `condition` holds (checked at once, then every `poll`); false when `timeout`
/// passed first. Default timeout 30 s (a loaded two-core CI machine), poll 5 ms.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30),
                       std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
  return true;
}

/// Milliseconds from `start` to now.
inline std::chrono::milliseconds elapsed_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

}  // namespace annals::testing
