// The runner's metrics (RunnerOptions::metrics; annals/eventstore/metrics.hpp) through a
// recording sink, on the in-memory stores: events applied, batch latency with the trace id as
// exemplar, lag, errors, dead letters and ownership changes, with exact counts and labels; and
// the trace id of traced events in the runner's debug log lines. No server needed.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "annals/testkit/recording_metrics_sink.hpp"
#include "log_capture.hpp"
#include "runner_support.hpp"

namespace annals::projections {
namespace {

using std::chrono::milliseconds;
using test::Recorder;
using testkit::RecordingMetricsSink;

constexpr milliseconds kTimeout{20'000};
constexpr const char* kTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
constexpr const char* kTraceId = "0af7651916cd43dd8448eb211c80319c";

class RunnerMetricsTest : public ::testing::Test {
 protected:
  RunnerOptions options(const std::string& owner = "runner-a") {
    RunnerOptions out;
    out.owner = owner;
    out.acquire_interval = milliseconds(10);
    out.request_interval = milliseconds(20);
    out.metrics = metrics_;
    return out;
  }

  AppendResult append(int n, nlohmann::json metadata = nlohmann::json::object(),
                      bool poison = false) {
    NewEvent event{.type = "Deposited", .data = {{"n", n}}, .metadata = std::move(metadata)};
    if (poison) event.data["poison"] = true;
    return events_->append(StreamId("account-" + std::to_string(n % 3)), ExpectedVersion::any(),
                           {event});
  }

  static MetricLabels labels(std::string_view name) { return {.projection = name}; }

  std::shared_ptr<RecordingMetricsSink> metrics_ = std::make_shared<RecordingMetricsSink>();
  std::unique_ptr<EventStore> events_ = make_in_memory_event_store();
  std::unique_ptr<ProjectionStore> store_ = make_in_memory_projection_store();
};

// The code of docs/observability.md, "Attaching a sink".
TEST(MetricsDocsTest, OneSinkServesTheStoreAndTheRunner) {
  // docs:begin metrics-attach-sink
  auto metrics = std::make_shared<annals::testkit::RecordingMetricsSink>();
  auto events = annals::make_in_memory_event_store({.metrics = metrics});
  auto projections = annals::projections::make_in_memory_projection_store();
  annals::projections::ProjectionRunner runner(*events, *projections, {.metrics = metrics});
  // docs:end
  runner.add(std::make_shared<Recorder>("docs"));
  runner.start();
  const auto result =
      events->append(StreamId("docs-1"), ExpectedVersion::any(), {NewEvent{.type = "Happened"}});
  ASSERT_TRUE(runner.wait_for("docs", result.position, kTimeout));
  EXPECT_EQ(metrics->counter(CounterId::kAppends, {.store = "memory", .outcome = "ok"}), 1u);
  EXPECT_EQ(metrics->counter(CounterId::kProjectionEvents, {.projection = "docs"}), 1u);
}

TEST_F(RunnerMetricsTest, CountsAppliedEventsBatchesLagAndOwnership) {
  for (int i = 0; i < 9; ++i) append(i);
  const auto last = append(9, {{"traceparent", kTraceparent}});
  auto projection = std::make_shared<Recorder>("balances");
  {
    ProjectionRunner runner(*events_, *store_, options());
    ProjectionOptions batches;
    batches.batch_size = 4;  // 10 events: batches of 4, 4 and 2
    runner.add(projection, batches);
    runner.start();
    ASSERT_TRUE(runner.wait_for("balances", last.position, kTimeout));
    const auto m = labels("balances");
    EXPECT_EQ(metrics_->counter(CounterId::kProjectionEvents, m), 10u);
    const auto batch_times = metrics_->observations(HistogramId::kProjectionBatchDuration, m);
    ASSERT_EQ(batch_times.size(), 3u);
    EXPECT_EQ(batch_times[0].trace_id, "");
    EXPECT_EQ(batch_times[1].trace_id, "");
    EXPECT_EQ(batch_times[2].trace_id, kTraceId) << "the traced event's batch carries its id";
    EXPECT_EQ(metrics_->counter(CounterId::kProjectionOwnershipChanges,
                                {.projection = "balances", .change = "acquired"}),
              1u);
    EXPECT_EQ(metrics_->gauge(GaugeId::kProjectionLagEvents, m), 0.0);
    runner.stop();
    EXPECT_EQ(metrics_->counter(CounterId::kProjectionOwnershipChanges,
                                {.projection = "balances", .change = "released"}),
              1u);
  }
  // Caught up and live: the lag gauges were last set to 0.
  EXPECT_EQ(metrics_->gauge(GaugeId::kProjectionLagSeconds, labels("balances")), 0.0);
  EXPECT_EQ(metrics_->counter(CounterId::kProjectionErrors, labels("balances")), 0u);
  EXPECT_EQ(metrics_->counter(CounterId::kProjectionDeadLetters, labels("balances")), 0u);
}

TEST_F(RunnerMetricsTest, CountsFailedAttemptsAndDeadLetters) {
  append(0);
  append(1, {{"traceparent", kTraceparent}}, /*poison=*/true);
  const auto last = append(2);
  auto projection = std::make_shared<Recorder>("parker");
  ProjectionRunner runner(*events_, *store_, options());
  ProjectionOptions retrying;
  retrying.max_attempts = 3;
  retrying.initial_backoff = milliseconds(1);
  retrying.max_backoff = milliseconds(2);
  retrying.on_failure = OnFailure::kDeadLetter;
  runner.add(projection, retrying);
  runner.start();
  ASSERT_TRUE(runner.wait_for("parker", last.position, kTimeout));
  const auto m = labels("parker");
  EXPECT_EQ(metrics_->counter(CounterId::kProjectionErrors, m), 3u);
  EXPECT_EQ(metrics_->counter(CounterId::kProjectionDeadLetters, m), 1u);
  EXPECT_EQ(metrics_->counter(CounterId::kProjectionEvents, m), 2u)
      << "the parked event is not counted as applied";
  DeadLetterQuery query;
  query.projection = "parker";
  const auto letters = store_->list_dead_letters(query);
  ASSERT_EQ(letters.size(), 1u);
}

TEST_F(RunnerMetricsTest, CountsALostLease) {
  const auto first = append(0);
  auto projection = std::make_shared<Recorder>("fenced");
  test::DecoratedStore decorated(*store_, projection->applies);
  auto runner_options = options();
  runner_options.lease_ttl = milliseconds(300);  // renewed every 100 ms
  ProjectionRunner runner(*events_, decorated, runner_options);
  runner.add(projection);
  runner.start();
  ASSERT_TRUE(runner.wait_for("fenced", first.position, kTimeout));
  decorated.refused_renewals = 1;
  ASSERT_TRUE(test::eventually([&] {
    return metrics_->counter(CounterId::kProjectionOwnershipChanges,
                             {.projection = "fenced", .change = "lost"}) == 1;
  }));
  ASSERT_TRUE(test::eventually([&] {
    return metrics_->counter(CounterId::kProjectionOwnershipChanges,
                             {.projection = "fenced", .change = "acquired"}) == 2;
  })) << "re-acquired after the loss";
}

TEST_F(RunnerMetricsTest, ProjectionNamesAreTheOnlyFreeLabelValues) {
  for (int i = 0; i < 50; ++i) {
    events_->append(StreamId("user-" + std::to_string(i)), ExpectedVersion::any(),
                    {NewEvent{.type = "T" + std::to_string(i)}});
  }
  const auto last =
      events_->append(StreamId("user-x"), ExpectedVersion::any(), {NewEvent{.type = "Last"}});
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(std::make_shared<Recorder>("one"));
  runner.start();
  ASSERT_TRUE(runner.wait_for("one", last.position, kTimeout));
  runner.stop();
  for (const auto& series : metrics_->series()) {
    EXPECT_THAT(series, ::testing::HasSubstr("projection=\"one\"")) << series;
    EXPECT_THAT(series, ::testing::Not(::testing::HasSubstr("user-"))) << series;
  }
}

TEST_F(RunnerMetricsTest, DebugLogLinesNameTheTraceIdOfTracedEvents) {
  annals::testing::LogCapture log;
  append(0);
  const auto last = append(1, {{"traceparent", kTraceparent}});
  append(2, {{"traceparent", "00-not-a-trace"}});
  const auto after = append(3);
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(std::make_shared<Recorder>("traced"));
  runner.start();
  ASSERT_TRUE(runner.wait_for("traced", after.position, kTimeout));
  runner.stop();
  EXPECT_EQ(log.count("debug", std::string("projection traced: applied Deposited account-1@") +
                                   "1 at " + last.position.to_string() + " trace_id=" + kTraceId),
            1)
      << log.text();
  EXPECT_EQ(log.count("debug", "trace_id="), 1) << "only the valid traceparent is named";
}

}  // namespace
}  // namespace annals::projections
