// The checks of the fault-injection suite must catch what they look for: each test breaks a
// consistent log (two appends to one stream) in one way and expects the matching count.
// No PostgreSQL: the log is built in memory.
#include <gtest/gtest.h>

#include "fault_checks.hpp"

namespace {

using annals::AppendResult;
using annals::EventId;
using annals::Position;
using annals::RecordedEvent;
using annals::StreamId;
using annals::faults::AcknowledgedAppend;
using annals::faults::Delivered;

struct Scenario {
  std::vector<RecordedEvent> log;
  std::vector<AcknowledgedAppend> acknowledged;
};

RecordedEvent stored(const StreamId& stream, std::int64_t version, std::int64_t sequence,
                     EventId id) {
  return RecordedEvent{.stream_id = stream,
                       .version = version,
                       .position = Position(100 + static_cast<std::uint64_t>(sequence), sequence),
                       .id = id,
                       .type = "Deposited",
                       .data = {{"amount", sequence}}};
}

// acct-1: an append of two events (v1-2), then one of one event (v3), the second after an
// OutcomeUnknownError.
Scenario consistent() {
  const StreamId stream("acct-1");
  const auto a = EventId::generate();
  const auto b = EventId::generate();
  const auto c = EventId::generate();
  Scenario s;
  s.log = {stored(stream, 1, 1, a), stored(stream, 2, 2, b), stored(stream, 3, 3, c)};
  s.acknowledged = {
      {.stream = stream, .ids = {a, b}, .result = AppendResult{stream, 1, 2, s.log[1].position}},
      {.stream = stream,
       .ids = {c},
       .result = AppendResult{stream, 3, 3, s.log[2].position},
       .failed_attempts = 1,
       .outcome_was_unknown = true}};
  return s;
}

std::vector<Delivered> deliveries(const std::vector<RecordedEvent>& log) {
  std::vector<Delivered> out;
  for (const auto& e : log) out.push_back({e.position, e.id});
  return out;
}

TEST(FaultChecksTest, AConsistentLogPasses) {
  const auto s = consistent();
  const auto check = annals::faults::check_log(s.log, s.acknowledged);
  EXPECT_EQ(check.acknowledged_events, 3U);
  EXPECT_EQ(check.stored_events, 3U);
  EXPECT_EQ(check.lost + check.duplicated + check.gapped_streams + check.wrong_results, 0U);
  EXPECT_EQ(check.outcome_unknown, 1U);
  EXPECT_EQ(check.outcome_unknown_resolved, 1U);
  EXPECT_TRUE(check.problems.empty());
  const auto delivery = annals::faults::check_deliveries(s.log, deliveries(s.log));
  EXPECT_TRUE(delivery.in_log_order);
  EXPECT_EQ(delivery.missing + delivery.repeated, 0U);
}

TEST(FaultChecksTest, ALostEventIsCounted) {
  auto s = consistent();
  s.log.pop_back();
  const auto check = annals::faults::check_log(s.log, s.acknowledged);
  EXPECT_EQ(check.lost, 1U);
  EXPECT_EQ(check.wrong_results, 1U);
  EXPECT_EQ(check.outcome_unknown_resolved, 0U);
}

TEST(FaultChecksTest, AnEventStoredTwiceOrUnacknowledgedIsADuplicate) {
  auto s = consistent();
  auto again = s.log[2];
  again.version = 4;
  again.position = Position(200, 4);
  s.log.push_back(again);
  EXPECT_EQ(annals::faults::check_log(s.log, s.acknowledged).duplicated, 1U);

  s = consistent();
  s.log.push_back(stored(StreamId("acct-1"), 4, 4, EventId::generate()));
  EXPECT_EQ(annals::faults::check_log(s.log, s.acknowledged).duplicated, 1U);
}

TEST(FaultChecksTest, AVersionGapIsCounted) {
  auto s = consistent();
  s.log[2].version = 4;
  const auto check = annals::faults::check_log(s.log, s.acknowledged);
  EXPECT_EQ(check.gapped_streams, 1U);
  EXPECT_EQ(check.wrong_results, 1U);  // the result said v3
}

TEST(FaultChecksTest, AResultThatNamesOtherEventsIsWrong) {
  auto s = consistent();
  s.acknowledged[1].result.position = Position(999, 999);
  const auto check = annals::faults::check_log(s.log, s.acknowledged);
  EXPECT_EQ(check.wrong_results, 1U);
  EXPECT_EQ(check.outcome_unknown_resolved, 0U);
}

TEST(FaultChecksTest, MissingRepeatedAndReorderedDeliveriesAreCaught) {
  const auto s = consistent();
  auto missing = deliveries(s.log);
  missing.erase(missing.begin() + 1);
  auto check = annals::faults::check_deliveries(s.log, missing);
  EXPECT_EQ(check.missing, 1U);
  EXPECT_FALSE(check.in_log_order);

  auto repeated = deliveries(s.log);
  repeated.push_back(repeated[0]);
  check = annals::faults::check_deliveries(s.log, repeated);
  EXPECT_EQ(check.repeated, 1U);
  EXPECT_FALSE(check.in_log_order);

  auto reordered = deliveries(s.log);
  std::swap(reordered[0], reordered[2]);
  check = annals::faults::check_deliveries(s.log, reordered);
  EXPECT_EQ(check.missing + check.repeated, 0U);
  EXPECT_FALSE(check.in_log_order);
}

TEST(FaultChecksTest, TheFoldDependsOnOrder) {
  const auto s = consistent();
  auto reordered = s.log;
  std::swap(reordered[0], reordered[2]);
  const auto model = annals::faults::fold(s.log);
  EXPECT_EQ(model.events, 3);
  EXPECT_EQ(model.streams.at("acct-1").total, 1 + 2 + 3);
  EXPECT_EQ(model.streams.at("acct-1").last_version, 3);
  EXPECT_NE(annals::faults::fold(reordered), model);
}

TEST(FaultChecksTest, NumbersGetThousandsSeparators) {
  EXPECT_EQ(annals::faults::with_commas(0), "0");
  EXPECT_EQ(annals::faults::with_commas(999), "999");
  EXPECT_EQ(annals::faults::with_commas(1000), "1,000");
  EXPECT_EQ(annals::faults::with_commas(12345678), "12,345,678");
  EXPECT_EQ(annals::faults::with_commas(-1234), "-1,234");
}

}  // namespace
