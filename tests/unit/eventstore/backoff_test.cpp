// The libraries' capped exponential backoff with jitter and the outage record that keeps a
// retrying loop to two log lines per outage (annals/eventstore/detail/{backoff,outage}.hpp).
#include "annals/eventstore/detail/backoff.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <set>

#include <gtest/gtest.h>

#include "annals/eventstore/detail/outage.hpp"

namespace annals::detail {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, CeilingDoublesFromTheInitialWaitUpToTheCap) {
  EXPECT_EQ(Backoff::ceiling(milliseconds(100), milliseconds(5'000), 0), milliseconds(100));
  EXPECT_EQ(Backoff::ceiling(milliseconds(100), milliseconds(5'000), 1), milliseconds(200));
  EXPECT_EQ(Backoff::ceiling(milliseconds(100), milliseconds(5'000), 5), milliseconds(3'200));
  EXPECT_EQ(Backoff::ceiling(milliseconds(100), milliseconds(5'000), 6), milliseconds(5'000));
  EXPECT_EQ(Backoff::ceiling(milliseconds(100), milliseconds(5'000), 60), milliseconds(5'000));
}

TEST(BackoffTest, CeilingDoesNotOverflowForAnyFailureCount) {
  EXPECT_EQ(
      Backoff::ceiling(milliseconds(100), milliseconds(5'000), std::numeric_limits<int>::max()),
      milliseconds(5'000));
}

TEST(BackoffTest, JitterStaysBetweenHalfAndAllOfTheCeilingForEverySeed) {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    Backoff backoff(milliseconds(100), milliseconds(5'000), seed);
    for (int failures = 0; failures < 10; ++failures) {
      const auto ceiling = Backoff::ceiling(milliseconds(100), milliseconds(5'000), failures);
      const auto wait = backoff.after(failures);
      EXPECT_GE(wait, ceiling / 2) << "seed " << seed << ", failures " << failures;
      EXPECT_LE(wait, ceiling) << "seed " << seed << ", failures " << failures;
    }
  }
}

TEST(BackoffTest, WaitsGrowWithFailuresAndStopAtTheCap) {
  Backoff backoff(milliseconds(100), milliseconds(800), 7);
  // The lowest possible wait after 3 failures (400) is above the highest after 1 (200).
  EXPECT_GT(backoff.after(3), backoff.after(1));
  for (int i = 0; i < 100; ++i) EXPECT_LE(backoff.after(30), milliseconds(800));
}

TEST(BackoffTest, TheSameSeedGivesTheSameWaits) {
  Backoff first(milliseconds(100), milliseconds(5'000), 42);
  Backoff second(milliseconds(100), milliseconds(5'000), 42);
  for (int failures = 0; failures < 20; ++failures) {
    EXPECT_EQ(first.after(failures), second.after(failures));
  }
}

TEST(BackoffTest, JitterActuallySpreadsTheWaits) {
  Backoff backoff(milliseconds(1'000), milliseconds(1'000), 1);
  std::set<milliseconds::rep> seen;
  for (int i = 0; i < 100; ++i) seen.insert(backoff.after(0).count());
  EXPECT_GT(seen.size(), 50u) << "clients that lost the same server must not retry in step";
}

TEST(OutageTest, OnlyTheFirstFailureStartsAnOutage) {
  Outage outage;
  EXPECT_FALSE(outage.active());
  EXPECT_TRUE(outage.fail());
  EXPECT_FALSE(outage.fail());
  EXPECT_FALSE(outage.fail());
  EXPECT_TRUE(outage.active());
  EXPECT_EQ(outage.failures(), 3);
}

TEST(OutageTest, EndReportsTheFailedAttemptsOnceAndStartsAfresh) {
  Outage outage;
  EXPECT_FALSE(outage.end().has_value()) << "no outage, nothing to report";
  outage.fail();
  outage.fail();
  const auto ended = outage.end();
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->failed_attempts, 2);
  EXPECT_GE(ended->duration, milliseconds(0));
  EXPECT_FALSE(outage.end().has_value());
  EXPECT_FALSE(outage.active());
  EXPECT_TRUE(outage.fail()) << "the next failure starts a new outage";
}

}  // namespace
}  // namespace annals::detail
