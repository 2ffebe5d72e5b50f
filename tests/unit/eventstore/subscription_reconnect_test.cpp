// Subscriptions ride out an unavailable store (annals/eventstore/event_store.hpp, Subscription):
// over the in-memory store behind a reader whose read_all fails with UnavailableError for a
// chosen number of calls or until released. No server needed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "annals/eventstore/detail/backoff.hpp"
#include "annals/eventstore/detail/catch_up_subscription.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/testkit/event_collector.hpp"
#include "annals/testkit/printers.hpp"
#include "annals/testkit/recording_metrics_sink.hpp"
#include "log_capture.hpp"

namespace annals {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using annals::testing::LogCapture;

constexpr std::chrono::milliseconds kTimeout = 30s;  // bound for asynchronous progress

/// Forwards to the in-memory store; read_all throws `error` while failing (for the next `n`
/// calls, or until release()) and records when each call was made and after which position.
class FlakyReader final : public EventReader {
 public:
  explicit FlakyReader(EventReader& inner) : inner_(&inner) {}

  /// From now on, forwards to `inner` (a failover to another server).
  void switch_to(EventReader& inner) {
    std::lock_guard lock(mutex_);
    inner_ = &inner;
  }

  void fail_next(int calls, std::exception_ptr error = unavailable()) {
    std::lock_guard lock(mutex_);
    failing_calls_ = calls;
    error_ = std::move(error);
  }
  void fail_until_released() { fail_next(std::numeric_limits<int>::max()); }
  void release() { fail_next(0); }

  struct Call {
    Clock::time_point at;
    Position after;
    bool failed;
  };
  std::vector<Call> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  int failed_calls() const {
    const auto all = calls();
    return static_cast<int>(
        std::count_if(all.begin(), all.end(), [](auto& c) { return c.failed; }));
  }

  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    {
      std::lock_guard lock(mutex_);
      const bool fail = failing_calls_ > 0;
      calls_.push_back(Call{.at = Clock::now(), .after = options.after, .failed = fail});
      if (fail) {
        --failing_calls_;
        std::rethrow_exception(error_);
      }
    }
    return current().read_all(options);
  }
  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    return current().read_stream(stream, options);
  }
  StreamState stream_state(const StreamId& stream) override {
    return current().stream_state(stream);
  }
  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    return current().stream_version(stream);
  }
  Position head_position() override { return current().head_position(); }

 private:
  static std::exception_ptr unavailable() {
    return std::make_exception_ptr(UnavailableError("injected: server went away"));
  }

  EventReader& current() {
    std::lock_guard lock(mutex_);
    return *inner_;
  }

  EventReader* inner_;
  mutable std::mutex mutex_;
  int failing_calls_ = 0;
  std::exception_ptr error_;
  std::vector<Call> calls_;
};

template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = kTimeout) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class SubscriptionReconnectTest : public ::testing::Test {
 protected:
  std::unique_ptr<Subscription> subscribe(EventHandler handler, std::size_t batch_size = 500,
                                          std::chrono::milliseconds initial = 1ms,
                                          std::chrono::milliseconds max = 4ms) {
    SubscriptionOptions options;
    options.batch_size = batch_size;
    options.poll_interval = std::chrono::hours(1);  // only wake-ups and retries read
    options.initial_reconnect_backoff = initial;
    options.max_reconnect_backoff = max;
    return detail::make_catch_up_subscription(reader_, store_->watch(), std::move(options),
                                              std::move(handler));
  }

  Position append(int count, int first = 0) {
    Position last;
    for (int i = first; i < first + count; ++i) {
      last = store_
                 ->append(StreamId("s-" + std::to_string(i % 3)), ExpectedVersion::any(),
                          {NewEvent{.type = "Happened", .data = {{"n", i}}}})
                 .position;
    }
    return last;
  }

  std::vector<RecordedEvent> log() { return store_->read_all({.max_count = 100'000}); }

  static std::vector<Position> positions(const std::vector<RecordedEvent>& events) {
    std::vector<Position> out;
    for (const auto& e : events) out.push_back(e.position);
    return out;
  }

  std::unique_ptr<EventStore> store_ = make_in_memory_event_store();
  FlakyReader reader_{*store_};
};

TEST_F(SubscriptionReconnectTest, ReportsReconnectingThenDeliversEveryEventOnceInOrder) {
  append(10);
  reader_.fail_until_released();
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler());
  ASSERT_TRUE(eventually([&] { return reader_.failed_calls() >= 3; }));
  EXPECT_EQ(subscription->state(), SubscriptionState::kReconnecting);
  EXPECT_TRUE(subscription->is_running()) << "an unavailable store does not stop it";
  EXPECT_EQ(subscription->stop_reason(), nullptr);
  const auto last = append(5, 10);  // appended during the outage
  reader_.release();
  ASSERT_TRUE(subscription->wait_for(last, kTimeout));
  ASSERT_TRUE(eventually([&] { return subscription->state() == SubscriptionState::kLive; }));
  EXPECT_EQ(positions(collector.events()), positions(log()));
  EXPECT_TRUE(subscription->is_live());
}

// The outage starts after a full batch was delivered: every retry, and the read that
// succeeds, continues strictly after the last delivered event.
// Metrics (annals/eventstore/metrics.hpp): one reconnect per outage that ended, under the
// subscription's name; the lag gauge is 0 once live.
TEST_F(SubscriptionReconnectTest, CountsEachEndedOutageAsOneReconnect) {
  auto metrics = std::make_shared<testkit::RecordingMetricsSink>();
  const MetricLabels labels{.subscription = "audit-feed"};
  append(10);
  reader_.fail_next(3);
  SubscriptionOptions options;
  options.batch_size = 4;
  options.poll_interval = std::chrono::hours(1);
  options.initial_reconnect_backoff = 1ms;
  options.max_reconnect_backoff = 4ms;
  options.metrics = metrics;
  options.name = "audit-feed";
  testkit::EventCollector collector;
  auto subscription = detail::make_catch_up_subscription(reader_, store_->watch(),
                                                         std::move(options), collector.handler());
  ASSERT_TRUE(eventually([&] { return subscription->state() == SubscriptionState::kLive; }));
  EXPECT_EQ(metrics->counter(CounterId::kSubscriptionReconnects, labels), 1u);
  EXPECT_EQ(metrics->gauge(GaugeId::kSubscriptionLagSeconds, labels), 0.0);
  reader_.fail_next(2);
  const auto last = append(1, 10);
  ASSERT_TRUE(subscription->wait_for(last, kTimeout));
  EXPECT_EQ(metrics->counter(CounterId::kSubscriptionReconnects, labels), 2u);
  EXPECT_EQ(collector.events().size(), 11u);
}

// A subscription of a store with a sink reports to it under the default name.
TEST_F(SubscriptionReconnectTest, UsesTheStoresSinkByDefault) {
  auto metrics = std::make_shared<testkit::RecordingMetricsSink>();
  auto store = make_in_memory_event_store({.metrics = metrics});
  store->append(StreamId("s-1"), ExpectedVersion::any(), {NewEvent{.type = "A"}});
  testkit::EventCollector collector;
  SubscriptionOptions options;
  options.batch_size = 1;
  auto subscription = store->subscribe(std::move(options), collector.handler());
  ASSERT_TRUE(eventually([&] { return subscription->state() == SubscriptionState::kLive; }));
  EXPECT_EQ(metrics->gauge(GaugeId::kSubscriptionLagSeconds, {.subscription = "subscription"}),
            0.0);
}

TEST_F(SubscriptionReconnectTest, RetriesStrictlyAfterTheLastDeliveredEvent) {
  const auto last = append(10);
  const auto events = log();
  testkit::EventCollector collector;
  std::atomic<bool> armed{false};
  auto subscription = subscribe(
      [&, deliver = collector.handler()](const RecordedEvent& e) {
        deliver(e);
        // The fourth delivery ends the first batch: the next read fails three times.
        if (e.position == events[3].position && !armed.exchange(true)) reader_.fail_next(3);
      },
      4);
  ASSERT_TRUE(subscription->wait_for(last, kTimeout));
  EXPECT_EQ(positions(collector.events()), positions(events));
  const auto calls = reader_.calls();
  std::vector<Position> failed_after;
  for (const auto& call : calls) {
    if (call.failed) failed_after.push_back(call.after);
  }
  ASSERT_EQ(failed_after.size(), 3u);
  for (const auto& after : failed_after) EXPECT_EQ(after, events[3].position);
  ASSERT_GE(calls.size(), 5u);
  EXPECT_FALSE(calls[4].failed);
  EXPECT_EQ(calls[4].after, events[3].position);
}

// A failover (docs/scaling.md, "Failover"): the dying primary showed the subscription a commit
// its standby never received, and the promoted standby orders a later transaction before that
// lost one. After the outage the subscription checks its newest deliveries against the store
// and continues after the newest one still there: nothing of the new log is skipped, and the
// lost event, re-sent by its writer with the same id, comes again at its new position.
TEST_F(SubscriptionReconnectTest, AfterAFailoverContinuesPastDeliveriesTheNewServerLacks) {
  auto promoted = make_in_memory_event_store();
  const auto lost_id = EventId::generate();
  const auto append_to = [](EventStore& store, const std::string& stream, EventId id) {
    return store
        .append(StreamId(stream), ExpectedVersion::any(), {NewEvent{.id = id, .type = "Happened"}})
        .position;
  };
  std::vector<EventId> replicated;
  for (int i = 0; i < 3; ++i) {
    replicated.push_back(EventId::generate());
    append_to(*store_, "s-" + std::to_string(i), replicated.back());
    append_to(*promoted, "s-" + std::to_string(i), replicated.back());
  }
  const auto lost = append_to(*store_, "s-lost", lost_id);  // never reached the standby
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler());
  ASSERT_TRUE(subscription->wait_for(lost, kTimeout));

  reader_.fail_until_released();                   // the primary dies
  append_to(*store_, "s-0", EventId::generate());  // wakes the subscription: its read fails
  ASSERT_TRUE(eventually([&] { return reader_.failed_calls() >= 1; }));
  const auto written_after = EventId::generate();
  append_to(*promoted, "s-new", written_after);  // on the promoted standby
  append_to(*promoted, "s-lost", lost_id);       // the lost append, re-sent
  ASSERT_FALSE(lost < promoted->read_stream(StreamId("s-new")).front().position)
      << "the test needs the promoted store to order the new event at or before the lost one";
  reader_.switch_to(*promoted);
  reader_.release();

  ASSERT_TRUE(eventually([&] { return collector.events().size() >= 6; }));
  const auto delivered = collector.events();
  std::vector<EventId> ids;
  for (const auto& e : delivered) ids.push_back(e.id);
  const std::vector<EventId> expected = {replicated[0], replicated[1], replicated[2],
                                         lost_id,       written_after, lost_id};
  EXPECT_EQ(ids, expected);
  // After the lost one: the promoted store's log after the newest delivery it has, exactly.
  const auto replicated_end = promoted->read_stream(StreamId("s-2")).front().position;
  EXPECT_EQ(positions(std::vector<RecordedEvent>(delivered.begin() + 4, delivered.end())),
            positions(promoted->read_all({.after = replicated_end})));
  EXPECT_EQ(subscription->stop_reason(), nullptr);
}

// A delivery that retention rules hid during the outage is not a lost one: nothing is
// delivered twice and the subscription goes on (the failover check must not misread it).
TEST_F(SubscriptionReconnectTest, AnOutageDuringWhichRetentionHidTheLastDeliveryRepeatsNothing) {
  const StreamId rolling("r-1");
  store_->set_stream_metadata(rolling, StreamMetadata{.max_count = 1});
  const auto first =
      store_->append(rolling, ExpectedVersion::any(), {NewEvent{.type = "Happened"}}).position;
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler());
  ASSERT_TRUE(subscription->wait_for(first, kTimeout));
  reader_.fail_until_released();
  const auto second =
      store_->append(rolling, ExpectedVersion::any(), {NewEvent{.type = "Happened"}}).position;
  ASSERT_TRUE(eventually([&] { return reader_.failed_calls() >= 1; }));
  ASSERT_TRUE(store_->read_stream(rolling, {.from = 1, .max_count = 1}).front().version == 2)
      << "the test needs the first event hidden by max_count";
  reader_.release();
  ASSERT_TRUE(subscription->wait_for(second, kTimeout));
  EXPECT_EQ(positions(collector.events()), (std::vector<Position>{first, second}));
  EXPECT_EQ(subscription->stop_reason(), nullptr);
}

TEST_F(SubscriptionReconnectTest, LogsOneWarningPerOutageAndOneRecoveryLine) {
  LogCapture log;
  const auto last = append(3);
  reader_.fail_next(6);
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler());
  ASSERT_TRUE(subscription->wait_for(last, kTimeout));
  EXPECT_EQ(log.count("warning", "store unavailable"), 1) << log.text();
  EXPECT_EQ(log.count("info", "store available again after"), 1) << log.text();
  EXPECT_EQ(log.count("info", "(6 failed reads)"), 1) << log.text();
  EXPECT_EQ(log.count("error", ""), 0) << log.text();

  // A second outage is a second pair of lines.
  reader_.fail_next(2);
  const auto more = append(1, 3);
  ASSERT_TRUE(eventually([&] { return reader_.failed_calls() == 8; }));
  ASSERT_TRUE(subscription->wait_for(more, kTimeout));
  EXPECT_EQ(log.count("warning", "store unavailable"), 2) << log.text();
  EXPECT_EQ(log.count("info", "(2 failed reads)"), 1) << log.text();
}

// Gaps between failed reads are at least half of the growing ceiling (the jitter's lower
// bound; sleeps can only be longer), and the test ends, so they are capped.
TEST_F(SubscriptionReconnectTest, RetriesBackOffExponentiallyUpToTheCap) {
  const auto last = append(1);
  reader_.fail_next(7);
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler(), 500, 8ms, 32ms);
  ASSERT_TRUE(subscription->wait_for(last, kTimeout));
  const auto calls = reader_.calls();
  ASSERT_GE(calls.size(), 8u);
  for (std::size_t i = 1; i < 8; ++i) {
    const auto ceiling = detail::Backoff::ceiling(8ms, 32ms, static_cast<int>(i) - 1);
    EXPECT_GE(calls[i].at - calls[i - 1].at, ceiling / 2) << "retry " << i;
  }
}

TEST_F(SubscriptionReconnectTest, StopDuringABackoffReturnsPromptly) {
  reader_.fail_until_released();
  auto subscription = subscribe([](const RecordedEvent&) {}, 500, 1h, 1h);
  ASSERT_TRUE(eventually([&] { return reader_.failed_calls() >= 1; }));
  ASSERT_TRUE(
      eventually([&] { return subscription->state() == SubscriptionState::kReconnecting; }));
  subscription->stop();  // would wait out the hour-long backoff without the stop token
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(subscription->state(), SubscriptionState::kStopped);
  EXPECT_EQ(subscription->stop_reason(), nullptr);
}

// A read cannot leave an outcome unknown; such an error is a bug and stops the subscription.
TEST_F(SubscriptionReconnectTest, OutcomeUnknownFromAReadStops) {
  reader_.fail_next(1, std::make_exception_ptr(OutcomeUnknownError("commit unknown")));
  auto subscription = subscribe([](const RecordedEvent&) {});
  EXPECT_FALSE(subscription->wait_for(Position(1, 1), kTimeout));
  EXPECT_EQ(subscription->state(), SubscriptionState::kStopped);
  EXPECT_THROW(std::rethrow_exception(subscription->stop_reason()), OutcomeUnknownError);
  EXPECT_EQ(reader_.calls().size(), 1u) << "not retried";
}

// Only the store's reads are retried: a handler that throws UnavailableError stops it.
TEST_F(SubscriptionReconnectTest, HandlerUnavailableErrorStillStops) {
  const auto last = append(3);
  int calls = 0;
  auto subscription = subscribe([&](const RecordedEvent&) {
    if (++calls == 2) throw UnavailableError("the handler's own database is down");
  });
  EXPECT_FALSE(subscription->wait_for(last, kTimeout));
  EXPECT_EQ(subscription->state(), SubscriptionState::kStopped);
  EXPECT_THROW(std::rethrow_exception(subscription->stop_reason()), UnavailableError);
  EXPECT_EQ(calls, 2);
}

TEST_F(SubscriptionReconnectTest, StatesHaveStableNames) {
  EXPECT_STREQ(to_string(SubscriptionState::kCatchingUp), "catching-up");
  EXPECT_STREQ(to_string(SubscriptionState::kLive), "live");
  EXPECT_STREQ(to_string(SubscriptionState::kReconnecting), "reconnecting");
  EXPECT_STREQ(to_string(SubscriptionState::kStopped), "stopped");
}

TEST_F(SubscriptionReconnectTest, InMemoryStoreSubscriptionsReportTheirState) {
  auto subscription = store_->subscribe({}, [](const RecordedEvent&) {});
  ASSERT_TRUE(eventually([&] { return subscription->state() == SubscriptionState::kLive; }));
  subscription->stop();
  EXPECT_EQ(subscription->state(), SubscriptionState::kStopped);
}

TEST_F(SubscriptionReconnectTest, RejectsInvalidReconnectBackoff) {
  const auto make = [&](std::chrono::milliseconds initial, std::chrono::milliseconds max) {
    SubscriptionOptions options;
    options.initial_reconnect_backoff = initial;
    options.max_reconnect_backoff = max;
    return detail::make_catch_up_subscription(reader_, store_->watch(), options,
                                              [](const RecordedEvent&) {});
  };
  EXPECT_THROW((void)make(0ms, 10ms), InvalidArgumentError);
  EXPECT_THROW((void)make(-1ms, 10ms), InvalidArgumentError);
  EXPECT_THROW((void)make(100ms, 10ms), InvalidArgumentError);
  EXPECT_NO_THROW((void)make(10ms, 10ms));
}

}  // namespace
}  // namespace annals
