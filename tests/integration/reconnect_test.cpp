// Riding out a database outage on a real PostgreSQL: a subscription, its LISTEN connection and
// the after-commit notifier survive every connection being cut and new ones refused for a
// while (tests/support/tcp_proxy.hpp), deliver every event once, report reconnecting and then
// live, and the LISTEN connection hears NOTIFY again after the outage.
// The shared server is never stopped: the proxy stands in for a restart (the pg_ctl restart is
// the fault-injection suite's).
#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/runner.hpp"
#include "annals/testkit/event_collector.hpp"
#include "change_signal.hpp"
#include "eventually.hpp"
#include "log_capture.hpp"
#include "tcp_proxy.hpp"
#include "test_database.hpp"

namespace {

using annals::testing::eventually;

using annals::EventFilter;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::RecordedEvent;
using annals::StreamId;
using annals::SubscriptionState;
using annals::testing::LogCapture;
using annals::testing::random_hex;
using annals::testing::TcpProxy;
using annals::testing::test_database_url;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Longer than any test: a signal wait that returns true within kTimeout saw a NOTIFY.
constexpr std::chrono::milliseconds kNoPoll = 1h;
// Readers re-read at this interval at the latest. Not longer: a transaction of another test
// on the shared server may hold committed events back from a read (ARCHITECTURE decision 5),
// and only a re-read, not a NOTIFY, shows them once it ends.
constexpr std::chrono::milliseconds kPoll = 1s;
constexpr std::chrono::milliseconds kTimeout = 30s;

// Closes every connection through the proxy now and refuses new ones until heal(): the rule
// fires on the first bytes any client sends, and a throwaway connection sends them.
void cut_everything(TcpProxy& proxy) {
  const auto cuts = proxy.cuts();
  proxy.cut_on_request("", TcpProxy::Cut::kBeforeServer);
  try {
    pqxx::connection trigger(proxy.url());
  } catch (const std::exception&) {
    // expected: the proxy closed it
  }
  ASSERT_EQ(proxy.cuts(), cuts + 1);
}

class ReconnectTest : public ::testing::Test {
 protected:
  // Events of this test only: its own category.
  Position append(annals::EventStore& store, int count) {
    Position last;
    for (int i = 0; i < count; ++i) {
      last = store
                 .append(StreamId(category_ + "-" + std::to_string(i % 3)), ExpectedVersion::any(),
                         {NewEvent{.type = "Happened", .data = {{"n", i}}}})
                 .position;
    }
    return last;
  }
  std::vector<Position> stored() {
    std::vector<Position> out;
    for (const auto& e : direct_->read_all({.max_count = 100'000, .filter = filter()})) {
      out.push_back(e.position);
    }
    return out;
  }
  EventFilter filter() const { return EventFilter{.category = category_, .event_types = {}}; }

  std::unique_ptr<annals::EventStore> store_via(const TcpProxy& proxy) {
    return annals::postgres::make_postgres_event_store(
        {.connection_string = proxy.url(), .pool_size = 2});
  }

  const std::string category_ = "reconnect" + random_hex(8);
  std::unique_ptr<annals::EventStore> direct_ =
      annals::postgres::make_postgres_event_store({.connection_string = test_database_url()});
};

TEST_F(ReconnectTest, SubscriptionSurvivesAnOutageAndDeliversEveryEventOnce) {
  LogCapture log;
  TcpProxy proxy(test_database_url());
  auto proxied = store_via(proxy);
  annals::testkit::EventCollector collector;
  annals::SubscriptionOptions options;
  options.filter = filter();
  options.poll_interval = kPoll;
  options.initial_reconnect_backoff = 10ms;
  options.max_reconnect_backoff = 100ms;
  auto subscription = proxied->subscribe(options, collector.handler());
  const auto before = append(*direct_, 5);
  ASSERT_TRUE(subscription->wait_for(before, kTimeout));
  ASSERT_TRUE(eventually([&] { return subscription->state() == SubscriptionState::kLive; }));

  cut_everything(proxy);
  // The LISTEN connection's loss wakes the subscription; its read is refused.
  ASSERT_TRUE(
      eventually([&] { return subscription->state() == SubscriptionState::kReconnecting; }));
  const auto during = append(*direct_, 10);
  ASSERT_TRUE(eventually([&] { return proxy.refused() >= 3; })) << "it keeps retrying";
  EXPECT_TRUE(subscription->is_running());
  EXPECT_EQ(subscription->state(), SubscriptionState::kReconnecting);

  proxy.heal();
  ASSERT_TRUE(subscription->wait_for(during, kTimeout));
  ASSERT_TRUE(eventually([&] { return subscription->state() == SubscriptionState::kLive; }));
  EXPECT_EQ(collector.positions(), stored()) << "every event once, in order";

  // Live again (that NOTIFY reaches the new LISTEN connection is
  // ListenConnectionReconnectsWithBackoffAndSignalsAReadAfterwards).
  const auto after = append(*direct_, 1);
  EXPECT_TRUE(subscription->wait_for(after, kTimeout));
  EXPECT_EQ(collector.positions(), stored());
  EXPECT_EQ(subscription->stop_reason(), nullptr);
  subscription->stop();

  EXPECT_EQ(log.count("warning", "subscription: store unavailable"), 1) << log.text();
  EXPECT_EQ(log.count("info", "subscription: store available again"), 1) << log.text();
  EXPECT_EQ(log.count("warning", "LISTEN connection lost"), 1) << log.text();
  EXPECT_EQ(log.count("info", "LISTEN connection re-established"), 1) << log.text();
}

TEST_F(ReconnectTest, ListenConnectionReconnectsWithBackoffAndSignalsAReadAfterwards) {
  LogCapture log;
  TcpProxy proxy(test_database_url());
  auto signal = annals::postgres::detail::make_change_signal(proxy.url(), 0ms, {10ms, 50ms});
  auto token = signal->observe();
  append(*direct_, 1);
  ASSERT_TRUE(signal->wait(token, kTimeout)) << "NOTIFY arrives before the outage";

  cut_everything(proxy);
  token = signal->observe();
  EXPECT_TRUE(signal->wait(token, kTimeout)) << "a lost connection means: read again";
  // Down: each wait sleeps out its timeout between reconnect attempts, never spinning.
  const auto refused_before = proxy.refused();
  const auto started = Clock::now();
  EXPECT_FALSE(signal->wait(token, 300ms));
  EXPECT_GE(Clock::now() - started, 300ms);
  const auto attempts = proxy.refused() - refused_before;
  EXPECT_GE(attempts, 2U) << "it keeps trying";
  EXPECT_LE(attempts, 12U) << "attempts are spaced by the backoff (10 ms doubling to 50 ms)";
  signal->interrupt();
  EXPECT_FALSE(signal->wait(token, kNoPoll)) << "interrupt() ends a wait while disconnected";
  // Only a running signal retries: opening one while the server is unreachable fails at once.
  EXPECT_THROW((void)annals::postgres::detail::make_change_signal(proxy.url(), 0ms),
               annals::UnavailableError);

  proxy.heal();
  token = signal->observe();
  EXPECT_TRUE(signal->wait(token, kTimeout)) << "LISTEN is back: notifications were missed";
  token = signal->observe();
  append(*direct_, 1);
  EXPECT_TRUE(signal->wait(token, kTimeout)) << "NOTIFY arrives on the new connection";

  EXPECT_EQ(log.count("warning", "LISTEN connection lost"), 1) << log.text();
  EXPECT_EQ(log.count("info", "LISTEN connection re-established"), 1) << log.text();
}

// The notifier's connection is cut and refused right after an append committed: it keeps
// retrying, and the owed notification goes out once the server can be reached again.
TEST_F(ReconnectTest, NotificationOwedDuringAnOutageIsSentAfterIt) {
  LogCapture log;
  TcpProxy proxy(test_database_url());
  auto writer = store_via(proxy);
  annals::testkit::EventCollector collector;
  annals::SubscriptionOptions options;
  options.filter = filter();
  options.poll_interval = kPoll;
  auto subscription = direct_->subscribe(options, collector.handler());
  ASSERT_TRUE(eventually([&] { return subscription->state() == SubscriptionState::kLive; }));

  // The notifier prepares and runs its statement by this name; the append does not use it.
  proxy.cut_on_request("annals_notify", TcpProxy::Cut::kBeforeServer);
  const auto appended = append(*writer, 1);
  ASSERT_TRUE(eventually([&] { return proxy.cuts() == 1; }));
  ASSERT_TRUE(eventually([&] { return proxy.refused() >= 3; })) << "the notifier retries";

  proxy.heal();
  EXPECT_TRUE(subscription->wait_for(appended, kTimeout));
  EXPECT_EQ(collector.positions(), stored());
  subscription->stop();

  EXPECT_EQ(log.count("warning", "cannot notify subscribers"), 1) << log.text();
  EXPECT_EQ(log.count("info", "notifying subscribers again after"), 1) << log.text();
}

// Records what it is given, in order.
class RecordingProjection final : public annals::projections::InProcessProjection {
 public:
  RecordingProjection(std::string name, EventFilter filter)
      : name_(std::move(name)), filter_(std::move(filter)) {}
  std::string name() const override { return name_; }
  EventFilter filter() const override { return filter_; }
  void handle(const RecordedEvent& event) override { collector.handler()(event); }

  annals::testkit::EventCollector collector;

 private:
  std::string name_;
  EventFilter filter_;
};

// A projection runner whose event store (and its LISTEN connection) is cut off: it reports
// reconnecting, then resumes from its checkpoint and applies every event once.
TEST_F(ReconnectTest, ProjectionRunnerReportsReconnectingAndResumesAfterAnOutage) {
  namespace p = annals::projections;
  LogCapture log;
  TcpProxy proxy(test_database_url());
  auto proxied = store_via(proxy);
  auto checkpoints = p::make_in_memory_projection_store();
  auto projection = std::make_shared<RecordingProjection>("reconnecting", filter());
  p::RunnerOptions runner_options;
  runner_options.poll_interval = kPoll;
  p::ProjectionOptions projection_options;
  projection_options.initial_backoff = 10ms;
  projection_options.max_backoff = 100ms;
  p::ProjectionRunner runner(*proxied, *checkpoints, runner_options);
  runner.add(projection, projection_options);
  runner.start();
  const auto before = append(*direct_, 5);
  ASSERT_TRUE(runner.wait_for("reconnecting", before, kTimeout));

  cut_everything(proxy);
  ASSERT_TRUE(eventually(
      [&] { return runner.status("reconnecting").state == p::ProjectionState::kReconnecting; }));
  const auto during = append(*direct_, 10);
  ASSERT_TRUE(eventually([&] { return proxy.refused() >= 3; })) << "it keeps retrying";
  EXPECT_EQ(runner.status("reconnecting").state, p::ProjectionState::kReconnecting);

  proxy.heal();
  ASSERT_TRUE(runner.wait_for("reconnecting", during, kTimeout));
  ASSERT_TRUE(
      eventually([&] { return runner.status("reconnecting").state == p::ProjectionState::kLive; }));
  EXPECT_EQ(projection->collector.positions(), stored()) << "every event once, in order";
  const auto after = append(*direct_, 1);
  EXPECT_TRUE(runner.wait_for("reconnecting", after, kTimeout));
  EXPECT_EQ(projection->collector.positions(), stored());
  runner.stop();

  EXPECT_EQ(log.count("warning", "projection reconnecting: store unavailable"), 1) << log.text();
  EXPECT_EQ(log.count("info", "projection reconnecting: stores available again"), 1) << log.text();
}

}  // namespace
