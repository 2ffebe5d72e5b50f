// The waits between a projection worker's attempts (projections/src/backoff.hpp): exponential
// with "equal jitter", capped.
#include "backoff.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace annals::projections::detail {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, WaitsBetweenHalfAndAllOfTheDoubledInitialWait) {
  Backoff backoff(milliseconds(100), milliseconds(5'000));
  for (int i = 0; i < 50; ++i) {
    const auto first = backoff.after(0);
    EXPECT_GE(first, milliseconds(50));
    EXPECT_LE(first, milliseconds(100));
    const auto third = backoff.after(2);
    EXPECT_GE(third, milliseconds(200));
    EXPECT_LE(third, milliseconds(400));
  }
}

TEST(BackoffTest, NeverExceedsTheMaximum) {
  Backoff backoff(milliseconds(100), milliseconds(300));
  for (int i = 0; i < 50; ++i) {
    const auto wait = backoff.after(40);
    EXPECT_GE(wait, milliseconds(150));
    EXPECT_LE(wait, milliseconds(300));
  }
}

TEST(BackoffTest, WaitsOfAMillisecondOrLessHaveNoJitter) {
  Backoff none(milliseconds(0), milliseconds(0));
  EXPECT_EQ(none.after(3), milliseconds(0));
  Backoff one(milliseconds(1), milliseconds(1));
  EXPECT_EQ(one.after(0), milliseconds(1));
  EXPECT_EQ(one.after(5), milliseconds(1));
}

}  // namespace
}  // namespace annals::projections::detail
