// annals::format_timestamp: the one text form of a time point (the CLI, the samples and the
// benchmark print times with it).
#include "annals/eventstore/timestamp.hpp"

#include <chrono>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono;

TEST(TimestampTest, FormatsRfc3339InUtcWithSixFractionalDigits) {
  const sys_days day = year{2026} / November / 23;
  EXPECT_EQ(annals::format_timestamp(day + hours{14} + minutes{31} + microseconds{123456}),
            "2026-11-23T14:31:00.123456Z");
  EXPECT_EQ(annals::format_timestamp(sys_days{year{1970} / January / 1}),
            "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(annals::format_timestamp(sys_days{year{2024} / February / 29} + hours{23} +
                                     minutes{59} + seconds{59}),
            "2024-02-29T23:59:59.000000Z");
}

TEST(TimestampTest, TruncatesBelowTheMicrosecondNeverRoundsUp) {
  const sys_days day = year{2026} / November / 23;
  EXPECT_EQ(annals::format_timestamp(
                time_point_cast<system_clock::duration>(day + nanoseconds{999'999'999})),
            "2026-11-23T00:00:00.999999Z");
  // Before 1970 the truncation is still toward the past (floor), not toward zero.
  EXPECT_EQ(annals::format_timestamp(time_point_cast<system_clock::duration>(
                sys_days{year{1970} / January / 1} - nanoseconds{1'500})),
            "1969-12-31T23:59:59.999998Z");
}

}  // namespace
