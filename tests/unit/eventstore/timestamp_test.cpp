// annals::format_timestamp and parse_timestamp: the one text form of a time point (the CLI,
// the samples and the benchmark print times with it; the CLI's --since, --until and --as-of
// parse them).
#include "annals/eventstore/timestamp.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"

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

TEST(TimestampTest, ParsesWhatItFormatsToTheSameMicrosecond) {
  const auto t = time_point_cast<system_clock::duration>(sys_days{year{2026} / November / 23} +
                                                         hours{14} + microseconds{123456});
  EXPECT_EQ(annals::parse_timestamp(annals::format_timestamp(t)), t);
  const auto before_epoch = time_point_cast<system_clock::duration>(
      sys_days{year{1969} / December / 31} + hours{23} + microseconds{59'999'998});
  EXPECT_EQ(annals::parse_timestamp(annals::format_timestamp(before_epoch)), before_epoch);
}

TEST(TimestampTest, ParsesZonesFractionsAndDates) {
  const sys_days day = year{2026} / November / 23;
  const auto at = [&](auto d) { return time_point_cast<system_clock::duration>(day + d); };
  EXPECT_EQ(annals::parse_timestamp("2026-11-23T14:31:00Z"), at(hours{14} + minutes{31}));
  EXPECT_EQ(annals::parse_timestamp("2026-11-23t14:31:00z"), at(hours{14} + minutes{31}));
  EXPECT_EQ(annals::parse_timestamp("2026-11-23 14:31:00Z"), at(hours{14} + minutes{31}));
  EXPECT_EQ(annals::parse_timestamp("2026-11-23T15:31:00+01:00"), at(hours{14} + minutes{31}));
  EXPECT_EQ(annals::parse_timestamp("2026-11-23T09:01:00-05:30"), at(hours{14} + minutes{31}));
  EXPECT_EQ(annals::parse_timestamp("2026-11-23T00:00:00.5Z"), at(milliseconds{500}));
  // Nine digits are accepted and truncated to the microsecond (never rounded up).
  EXPECT_EQ(annals::parse_timestamp("2026-11-23T00:00:00.123456789Z"), at(microseconds{123456}));
  EXPECT_EQ(annals::parse_timestamp("2026-11-23"), at(hours{0}));
  EXPECT_EQ(annals::parse_timestamp("2024-02-29T00:00:00Z"),
            time_point_cast<system_clock::duration>(sys_days{year{2024} / February / 29}));
}

TEST(TimestampTest, RefusesMalformedTimesNamingTheText) {
  for (const std::string& bad : std::vector<std::string>{"",
                                                         "2026",
                                                         "2026-11",
                                                         "2026-11-23T",
                                                         "2026-11-23T14:31",
                                                         "2026-11-23T14:31:00",
                                                         "2026-11-23T14:31:00+01",
                                                         "2026-11-23T14:31:00+0100",
                                                         "2026-13-01",
                                                         "2026-02-30",
                                                         "2025-02-29",
                                                         "2026-11-23T24:00:00Z",
                                                         "2026-11-23T14:60:00Z",
                                                         "2026-11-23T14:31:60Z",
                                                         "2026-11-23T14:31:00.Z",
                                                         "2026-11-23T14:31:00.1234567890Z",
                                                         "2026-11-23T14:31:00Zx",
                                                         "2026-11-23T14:31:00+24:00",
                                                         "26-11-23",
                                                         "2026/11/23",
                                                         "now",
                                                         "-2026-11-23",
                                                         "2026-11-23T14:31:00\x01Z",
                                                         "2999-01-01",
                                                         "1000-01-01T00:00:00Z",
                                                         std::string("2026-11-23\0T", 12)}) {
    try {
      (void)annals::parse_timestamp(bad);
      ADD_FAILURE() << "accepted \"" << bad << '"';
    } catch (const annals::InvalidArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("not a time"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
