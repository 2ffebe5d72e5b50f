// Metrics of the in-memory store (annals/eventstore/metrics.hpp) through a recording sink:
// exact counts and labels after known operations, bounded series whatever the data, a sink that
// throws never fails a call; the fixed metric descriptions; W3C traceparent validation
// (annals/eventstore/trace_context.hpp). No server needed.
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/metrics.hpp"
#include "annals/eventstore/trace_context.hpp"
#include "annals/testkit/recording_metrics_sink.hpp"

namespace annals {
namespace {

using testkit::RecordingMetricsSink;

constexpr MetricLabels kMemory{.store = "memory"};
constexpr MetricLabels kOk{.store = "memory", .outcome = "ok"};
constexpr MetricLabels kStreamReads{.store = "memory", .kind = "stream"};
constexpr MetricLabels kAllReads{.store = "memory", .kind = "all"};

std::vector<NewEvent> events(int count) {
  std::vector<NewEvent> out;
  for (int i = 0; i < count; ++i) out.push_back(NewEvent{.type = "Happened", .data = {{"n", i}}});
  return out;
}

class InMemoryStoreMetricsTest : public ::testing::Test {
 protected:
  std::shared_ptr<RecordingMetricsSink> metrics_ = std::make_shared<RecordingMetricsSink>();
  std::unique_ptr<EventStore> store_ = make_in_memory_event_store({.metrics = metrics_});
};

TEST_F(InMemoryStoreMetricsTest, CountsAppendsEventsConflictsAndLatency) {
  const StreamId stream("account-1");
  store_->append(stream, ExpectedVersion::no_stream(), events(2));
  store_->append(stream, ExpectedVersion::exact(2), events(1));
  store_->append(stream, ExpectedVersion::any(), events(3));
  EXPECT_THROW(store_->append(stream, ExpectedVersion::exact(1), events(1)), ConcurrencyError);
  EXPECT_THROW(store_->append(stream, ExpectedVersion::any(), {NewEvent{.type = ""}}),
               InvalidArgumentError);

  EXPECT_EQ(metrics_->counter(CounterId::kAppends, kOk), 3u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, {.store = "memory", .outcome = "conflict"}), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, {.store = "memory", .outcome = "rejected"}), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppendedEvents, kMemory), 6u);
  const auto durations = metrics_->observations(HistogramId::kAppendDuration, kMemory);
  ASSERT_EQ(durations.size(), 5u) << "every append is timed, the refused ones too";
  for (const auto& d : durations) EXPECT_GE(d.value, 0.0);
  EXPECT_EQ(metrics_->counter(CounterId::kAppendRetries, kMemory), 0u);
}

TEST_F(InMemoryStoreMetricsTest, CountsAnExactResendApartAndNotItsEvents) {
  const StreamId stream("account-2");
  auto batch = events(2);
  batch[0].id = EventId::generate();
  batch[1].id = EventId::generate();
  store_->append(stream, ExpectedVersion::no_stream(), batch);
  store_->append(stream, ExpectedVersion::no_stream(), batch);  // exact re-send
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, kOk), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, {.store = "memory", .outcome = "resend"}), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppendedEvents, kMemory), 2u);
}

TEST_F(InMemoryStoreMetricsTest, CountsAppendMultiAsOneAppendOfAllItsEvents) {
  std::vector<StreamAppend> appends;
  appends.push_back(
      {.stream_id = StreamId("a-1"), .expected = ExpectedVersion::any(), .events = events(2)});
  appends.push_back(
      {.stream_id = StreamId("b-1"), .expected = ExpectedVersion::any(), .events = events(3)});
  store_->append_multi(std::move(appends));
  EXPECT_EQ(metrics_->counter(CounterId::kAppends, kOk), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kAppendedEvents, kMemory), 5u);
}

TEST_F(InMemoryStoreMetricsTest, CountsReadsAndTheEventsTheyReturn) {
  const StreamId stream("account-3");
  store_->append(stream, ExpectedVersion::any(), events(4));
  (void)store_->read_stream(stream);
  (void)store_->read_stream(StreamId("account-none"));
  (void)store_->read_all({.max_count = 3});
  EXPECT_EQ(metrics_->counter(CounterId::kReads, kStreamReads), 2u);
  EXPECT_EQ(metrics_->counter(CounterId::kReadEvents, kStreamReads), 4u);
  EXPECT_EQ(metrics_->counter(CounterId::kReads, kAllReads), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kReadEvents, kAllReads), 3u);
  EXPECT_EQ(metrics_->observations(HistogramId::kReadDuration, kStreamReads).size(), 2u);
  EXPECT_EQ(metrics_->observations(HistogramId::kReadDuration, kAllReads).size(), 1u);
}

// Attack: stream ids, event types and payloads come from users. However many distinct ones a
// store sees, the series stay the same few: no label value is taken from data.
TEST_F(InMemoryStoreMetricsTest, SeriesDoNotGrowWithStreamIdsOrEventTypes) {
  const auto touch = [&](int i) {
    const StreamId stream("user-" + std::to_string(i) + "-\"}{evil=\"1");
    store_->append(stream, ExpectedVersion::no_stream(),
                   {NewEvent{.type = "Type" + std::to_string(i), .data = {{"v", i}}}});
    EXPECT_THROW(store_->append(stream, ExpectedVersion::no_stream(), events(1)), ConcurrencyError);
    (void)store_->read_stream(stream);
    (void)store_->read_all(
        {.filter = {.category = "user", .event_types = {"Type" + std::to_string(i)}}});
  };
  touch(0);
  const std::set<std::string> after_one = metrics_->series();
  for (int i = 1; i < 500; ++i) touch(i);
  EXPECT_EQ(metrics_->series(), after_one);
  EXPECT_EQ(after_one.size(), 10u) << ::testing::PrintToString(after_one);
  for (const auto& series : after_one) {
    EXPECT_EQ(series.find("user-"), std::string::npos) << series;
    EXPECT_EQ(series.find("Type"), std::string::npos) << series;
  }
}

class ThrowingSink final : public MetricsSink {
 public:
  void add(CounterId, const MetricLabels&, std::uint64_t) override {
    throw std::runtime_error("sink down");
  }
  void set(GaugeId, const MetricLabels&, double) override { throw std::runtime_error("sink down"); }
  void observe(HistogramId, const MetricLabels&, double, std::string_view) override {
    throw std::runtime_error("sink down");
  }
};

TEST(MetricsSinkTest, ASinkThatThrowsNeverFailsTheCall) {
  auto store = make_in_memory_event_store({.metrics = std::make_shared<ThrowingSink>()});
  const auto result = store->append(StreamId("s-1"), ExpectedVersion::no_stream(), events(2));
  EXPECT_EQ(result.last_version, 2);
  EXPECT_EQ(store->read_stream(StreamId("s-1")).size(), 2u);
  EXPECT_THROW(store->append(StreamId("s-1"), ExpectedVersion::no_stream(), events(1)),
               ConcurrencyError)
      << "the store's own error, not the sink's";
}

TEST(MetricsSinkTest, EveryMetricIsDescribedWithAUniqueConventionalName) {
  std::set<std::string_view> names;
  const auto check = [&](const MetricInfo& info, MetricType type) {
    EXPECT_EQ(info.type, type) << info.name;
    EXPECT_TRUE(info.name.starts_with("annals_")) << info.name;
    EXPECT_FALSE(info.help.empty()) << info.name;
    EXPECT_FALSE(info.unit.empty()) << info.name;
    EXPECT_FALSE(info.labels.empty()) << info.name;
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate " << info.name;
    if (type == MetricType::kCounter) {
      EXPECT_TRUE(info.name.ends_with("_total")) << info.name;
    }
    if (type == MetricType::kHistogram) {
      ASSERT_FALSE(info.buckets.empty()) << info.name;
      for (std::size_t i = 1; i < info.buckets.size(); ++i) {
        EXPECT_LT(info.buckets[i - 1], info.buckets[i]) << info.name;
      }
    } else {
      EXPECT_TRUE(info.buckets.empty()) << info.name;
    }
    for (const MetricLabel label : info.labels) {
      EXPECT_NE(to_string(label), "label") << info.name;
    }
  };
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    check(describe(static_cast<CounterId>(i)), MetricType::kCounter);
  }
  for (std::size_t i = 0; i < kGaugeCount; ++i) {
    check(describe(static_cast<GaugeId>(i)), MetricType::kGauge);
  }
  for (std::size_t i = 0; i < kHistogramCount; ++i) {
    check(describe(static_cast<HistogramId>(i)), MetricType::kHistogram);
  }
  EXPECT_EQ(names.size(), kCounterCount + kGaugeCount + kHistogramCount);
}

// --- Trace context ----------------------------------------------------------------------

constexpr std::string_view kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceparentTest, AcceptsAValidHeaderAndTrimsSpaces) {
  EXPECT_EQ(parse_traceparent(kValid), std::string(kValid));
  EXPECT_EQ(parse_traceparent(" \t" + std::string(kValid) + " "), std::string(kValid));
  EXPECT_EQ(trace_id_of_traceparent(kValid), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceparentTest, KeepsOnlyTheKnownFieldsOfALaterVersion) {
  EXPECT_EQ(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

TEST(TraceparentTest, RejectsMalformedHeaders) {
  for (const std::string& bad : {
           std::string(),
           std::string("garbage"),
           std::string(kValid) + "-00",                                              // 00 is exact
           std::string(kValid.substr(0, 54)),                                        // short
           std::string("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),   // upper
           std::string("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),   // version ff
           std::string("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),   // zero trace
           std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),   // zero parent
           std::string("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),   // separator
           std::string("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"),   // not hex
           std::string("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"),  // no '-'
           std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\n"),
       }) {
    EXPECT_EQ(parse_traceparent(bad), std::nullopt) << bad;
    EXPECT_EQ(trace_id_of_traceparent(bad), "") << bad;
  }
}

TEST(TraceparentTest, ReadsTheTraceIdOfAnEventOnlyWhenItsTraceparentIsValid) {
  auto store = make_in_memory_event_store();
  const StreamId stream("t-1");
  store->append(stream, ExpectedVersion::any(),
                {NewEvent{.type = "A", .metadata = {{"traceparent", std::string(kValid)}}},
                 NewEvent{.type = "B", .metadata = {{"traceparent", "00-bad"}}},
                 NewEvent{.type = "C", .metadata = {{"traceparent", 42}}}, NewEvent{.type = "D"}});
  const auto read = store->read_stream(stream);
  ASSERT_EQ(read.size(), 4u);
  EXPECT_EQ(trace_id_of(read[0]), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(trace_id_of(read[1]), "");
  EXPECT_EQ(trace_id_of(read[2]), "");
  EXPECT_EQ(trace_id_of(read[3]), "");
}

}  // namespace
}  // namespace annals
