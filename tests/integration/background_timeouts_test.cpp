// Timeouts everywhere, the store's background connections: the after-commit notifier's and the
// LISTEN connections of watch() and subscriptions. Behind a TCP proxy that stops forwarding
// without closing anything (tests/support/tcp_proxy.hpp, stall(), stall_on_request()), their
// calls are cut by the store's call timeout, the threads back off and retry, destruction and
// stop() return within their bounds, and everything resumes when the proxy forwards again.
// Also: the reconnect backoff options of the store.
//
// Timing: the asserted bounds are the configured timeout plus a generous margin (the machine is
// shared); measured times are printed. Waits for a condition use a deadline, never a sleep.
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "eventually.hpp"
#include "log_capture.hpp"
#include "sql.hpp"
#include "tcp_proxy.hpp"
#include "test_database.hpp"

namespace {

using annals::testing::elapsed_since;
using annals::testing::eventually;

using annals::EventId;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::SubscriptionState;
using annals::testing::LogCapture;
using annals::testing::TcpProxy;
using annals::testing::test_database_url;
using annals::testing::unique_stream;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Slack on top of a configured timeout: scheduling on a loaded two-core machine, one connect
// attempt that may start just before the deadline.
constexpr milliseconds kMargin{5'000};
constexpr milliseconds kCallTimeout{1'500};
constexpr std::chrono::seconds kConnectTimeout{2};
constexpr milliseconds kLong{30'000};

NewEvent event_with_id(int n) {
  return NewEvent{.id = EventId::generate(), .type = "Recorded", .data = {{"n", n}}};
}

annals::postgres::PostgresEventStoreOptions options_via(const TcpProxy& proxy) {
  annals::postgres::PostgresEventStoreOptions options{.connection_string = proxy.url(),
                                                      .pool_size = 2};
  options.connection_timeouts.connect_timeout = kConnectTimeout;
  options.call_timeout = kCallTimeout;
  return options;
}

annals::EventStore& direct_store() {
  static const auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_database_url()});
  return *store;
}

// Appends through `store` and waits until its after-commit notifier's NOTIFY reached a LISTEN
// connection of its own: the notifier's connection is then open.
void append_and_see_notification(annals::EventStore& store, const StreamId& stream,
                                 const ExpectedVersion& expected) {
  const auto signal = direct_store().watch();
  const auto token = signal->observe();
  store.append(stream, expected, {event_with_id(0)});
  ASSERT_TRUE(signal->wait(token, kLong)) << "the notifier's first NOTIFY";
}

// --- The after-commit notifier ----------------------------------------------------------------

TEST(BackgroundTimeoutsTest, StoreWhoseNotifyIsStalledIsDestroyedPromptly) {
  TcpProxy proxy(test_database_url());
  // The default call timeout (40 s): destruction must not wait for it.
  auto options = options_via(proxy);
  options.call_timeout = annals::postgres::PostgresEventStoreOptions{}.call_timeout;
  auto store = annals::postgres::make_postgres_event_store(options);
  const StreamId stream(unique_stream("bg-timeouts"));
  append_and_see_notification(*store, stream, ExpectedVersion::no_stream());

  // The next append commits; the NOTIFY that follows it falls into the black hole.
  proxy.stall_on_request(annals::postgres::sql::kNotifyName);
  store->append(stream, ExpectedVersion::exact(1), {event_with_id(1)});
  ASSERT_TRUE(eventually([&] { return proxy.stalled(); }));

  const auto start = Clock::now();
  store.reset();
  const auto took = elapsed_since(start);
  std::printf("[ measured ] a store whose NOTIFY hangs was destroyed in %lld ms\n",
              static_cast<long long>(took.count()));
  // The notifier gives a NOTIFY in flight a grace of 1 s, then cuts it.
  EXPECT_LT(took, milliseconds(1'000) + kMargin);
  EXPECT_LT(took, options.call_timeout);

  proxy.resume();
  EXPECT_EQ(direct_store().read_stream(stream, {}).size(), 2U);  // the appends are stored
}

TEST(BackgroundTimeoutsTest, NotifierCutOffByStallRetriesAndNotifiesAfterResume) {
  LogCapture log;
  TcpProxy proxy(test_database_url());
  auto store = annals::postgres::make_postgres_event_store(options_via(proxy));
  const StreamId stream(unique_stream("bg-timeouts"));
  append_and_see_notification(*store, stream, ExpectedVersion::no_stream());

  const auto signal = direct_store().watch();
  auto token = signal->observe();
  proxy.stall_on_request(annals::postgres::sql::kNotifyName);
  store->append(stream, ExpectedVersion::exact(1), {event_with_id(1)});
  // The NOTIFY hangs until the call timeout cuts it; the retry on a fresh connection cannot
  // connect (connect timeout); then the outage is logged and the notification stays owed.
  const auto start = Clock::now();
  ASSERT_TRUE(eventually([&] { return log.count("warning", "cannot notify subscribers") == 1; }))
      << log.text();
  const auto took = elapsed_since(start);
  std::printf("[ measured ] the stalled notifier gave up its attempt after %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, kCallTimeout + milliseconds(kConnectTimeout) + kMargin);
  EXPECT_GE(took, kCallTimeout - milliseconds(100)) << "the NOTIFY waited for its deadline";

  // Whatever the direct signal saw so far, the owed notification arrives after resume().
  token = signal->observe();
  proxy.resume();
  EXPECT_TRUE(signal->wait(token, kLong)) << "the owed notification goes out";
  EXPECT_TRUE(eventually([&] { return log.count("info", "notifying subscribers again") == 1; }))
      << log.text();

  // And the store appends and notifies as before.
  token = signal->observe();
  store->append(stream, ExpectedVersion::exact(2), {event_with_id(2)});
  EXPECT_TRUE(signal->wait(token, kLong));
  EXPECT_EQ(direct_store().read_stream(stream, {}).size(), 3U);
}

// --- read_horizon(), the one-off diagnostic ----------------------------------------------------

TEST(BackgroundTimeoutsTest, ReadHorizonWhoseQueryIsStalledFailsWithinItsTimeout) {
  TcpProxy proxy(test_database_url());
  proxy.stall_on_request("pg_stat_activity");  // connect, then the query meets the black hole
  const auto start = Clock::now();
  EXPECT_THROW((void)annals::postgres::read_horizon(proxy.url(), milliseconds(1'000)),
               annals::UnavailableError);
  const auto took = elapsed_since(start);
  std::printf("[ measured ] read_horizon behind the stall failed after %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_GE(took, milliseconds(1'000)) << "cut by its own timeout, not by something else";
  EXPECT_LT(took, milliseconds(1'000) + kMargin);

  proxy.resume();
  EXPECT_NO_THROW((void)annals::postgres::read_horizon(proxy.url(), milliseconds(5'000)));
}

TEST(BackgroundTimeoutsTest, ReadHorizonRefusesANonPositiveTimeout) {
  for (const auto timeout : {milliseconds(0), milliseconds(-1)}) {
    try {
      (void)annals::postgres::read_horizon(test_database_url(), timeout);
      ADD_FAILURE() << "accepted a timeout of " << timeout.count() << " ms";
    } catch (const annals::InvalidArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("timeout must be positive"), std::string::npos)
          << e.what();
    }
  }
}

// --- LISTEN connections -----------------------------------------------------------------------

TEST(BackgroundTimeoutsTest, StalledHorizonQueryIsCutAndTheSignalReconnectsAfterResume) {
  TcpProxy proxy(test_database_url());
  auto options = options_via(proxy);
  options.horizon_warning_after = milliseconds(10'000);  // the signal queries the horizon
  auto store = annals::postgres::make_postgres_event_store(options);
  const auto signal = store->watch();

  // The first wait queries the read horizon on the LISTEN connection: behind the black hole
  // it is cut by the call timeout, which the signal takes as a lost connection.
  proxy.stall();
  auto token = signal->observe();
  auto start = Clock::now();
  EXPECT_TRUE(signal->wait(token, milliseconds(100))) << "a lost connection means: read again";
  auto took = elapsed_since(start);
  std::printf("[ measured ] a wait whose horizon query hangs returned after %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, milliseconds(100) + kCallTimeout + kMargin);

  // Reconnecting through the black hole is bounded by the connect timeout.
  start = Clock::now();
  EXPECT_FALSE(signal->wait(token, milliseconds(300)));
  took = elapsed_since(start);
  std::printf("[ measured ] a wait reconnecting through the stall returned after %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, milliseconds(kConnectTimeout) + kCallTimeout + kMargin);

  proxy.resume();
  EXPECT_TRUE(signal->wait(token, kLong)) << "LISTEN is back: notifications were missed";
  token = signal->observe();
  direct_store().append(StreamId(unique_stream("bg-timeouts")), ExpectedVersion::no_stream(),
                        {event_with_id(0)});
  EXPECT_TRUE(signal->wait(token, kLong)) << "NOTIFY arrives on the new connection";
}

TEST(BackgroundTimeoutsTest, SubscriptionBehindStallReconnectsStopsPromptlyAndResumes) {
  TcpProxy proxy(test_database_url());
  auto store = annals::postgres::make_postgres_event_store(options_via(proxy));
  // A category of its own, so that the subscription sees only this test's events.
  const std::string category = "bgt" + unique_stream("c").substr(2);
  const StreamId stream(category + "-1");
  const auto first =
      direct_store().append(stream, ExpectedVersion::no_stream(), {event_with_id(0)}).position;
  annals::EventFilter only_this;
  only_this.category = category;
  const auto subscribe = [&](annals::Position after) {
    return store->subscribe({.after = after,
                             .filter = only_this,
                             .poll_interval = milliseconds(200),
                             .initial_reconnect_backoff = milliseconds(50),
                             .max_reconnect_backoff = milliseconds(200)},
                            [](const annals::RecordedEvent&) {});
  };
  auto subscription = subscribe(annals::Position::start());
  ASSERT_TRUE(subscription->wait_for(first, kLong));

  proxy.stall();
  const auto second =
      direct_store().append(stream, ExpectedVersion::exact(1), {event_with_id(1)}).position;
  // Its reads (at the poll interval) are cut by the call timeout: it reports reconnecting.
  auto start = Clock::now();
  ASSERT_TRUE(
      eventually([&] { return subscription->state() == SubscriptionState::kReconnecting; }));
  std::printf("[ measured ] the subscription reported reconnecting after %lld ms\n",
              static_cast<long long>(elapsed_since(start).count()));
  EXPECT_EQ(subscription->position(), first);

  start = Clock::now();
  subscription->stop();
  const auto took = elapsed_since(start);
  std::printf("[ measured ] stop() behind the stall returned after %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, milliseconds(kConnectTimeout) + kCallTimeout + kMargin);
  EXPECT_EQ(subscription->stop_reason(), nullptr);

  // After resume(), a subscription catches up from where the first one stopped.
  proxy.resume();
  auto resumed = subscribe(subscription->position());
  EXPECT_TRUE(resumed->wait_for(second, kLong));
  EXPECT_EQ(resumed->position(), second);
  EXPECT_EQ(resumed->stop_reason(), nullptr);
}

// --- Reconnect backoff options ----------------------------------------------------------------

// How many connections a watch() signal of a store with `options` tries to open in `window`
// while the proxy refuses them, after its LISTEN connection was cut.
std::size_t reconnect_attempts(annals::postgres::PostgresEventStoreOptions options, TcpProxy& proxy,
                               milliseconds window) {
  options.horizon_warning_after = milliseconds(0);
  auto store = annals::postgres::make_postgres_event_store(options);
  const auto signal = store->watch();
  // Cut every link (the first bytes of a new client match), and refuse connections until heal().
  const auto cuts = proxy.cuts();
  proxy.cut_on_request("", TcpProxy::Cut::kBeforeServer);
  PQfinish(PQconnectdb(proxy.url().c_str()));
  EXPECT_EQ(proxy.cuts(), cuts + 1);
  auto token = signal->observe();
  EXPECT_TRUE(signal->wait(token, kLong)) << "the loss is signalled";
  const auto before = proxy.refused();
  EXPECT_FALSE(signal->wait(token, window));
  const auto attempts = proxy.refused() - before;
  proxy.heal();
  return attempts;
}

TEST(BackgroundTimeoutsTest, ReconnectBackoffOptionsPaceTheListenConnection) {
  TcpProxy proxy(test_database_url());
  auto fast = options_via(proxy);
  fast.initial_reconnect_backoff = milliseconds(10);
  fast.max_reconnect_backoff = milliseconds(20);
  const auto fast_attempts = reconnect_attempts(fast, proxy, milliseconds(400));
  auto slow = options_via(proxy);
  slow.initial_reconnect_backoff = milliseconds(1'000);
  slow.max_reconnect_backoff = milliseconds(2'000);
  const auto slow_attempts = reconnect_attempts(slow, proxy, milliseconds(400));
  std::printf("[ measured ] reconnect attempts in 400 ms: %zu with 10-20 ms, %zu with 1-2 s\n",
              fast_attempts, slow_attempts);
  EXPECT_GE(fast_attempts, 5U);
  EXPECT_LE(slow_attempts, 1U);  // the first attempt is made at once, the next after >= 500 ms
}

TEST(BackgroundTimeoutsTest, InvalidReconnectBackoffOptionsAreRefusedNamingTheOption) {
  const auto refused_naming = [](annals::postgres::PostgresEventStoreOptions options,
                                 const std::string& name) {
    try {
      (void)annals::postgres::make_postgres_event_store(std::move(options));
    } catch (const annals::InvalidArgumentError& e) {
      return std::string(e.what()).find(name) != std::string::npos;
    }
    return false;
  };
  annals::postgres::PostgresEventStoreOptions zero{.connection_string = test_database_url()};
  zero.initial_reconnect_backoff = milliseconds(0);
  EXPECT_TRUE(refused_naming(zero, "PostgresEventStoreOptions::initial_reconnect_backoff"));
  annals::postgres::PostgresEventStoreOptions negative{.connection_string = test_database_url()};
  negative.max_reconnect_backoff = milliseconds(-1);
  EXPECT_TRUE(refused_naming(negative, "PostgresEventStoreOptions::max_reconnect_backoff"));
  annals::postgres::PostgresEventStoreOptions inverted{.connection_string = test_database_url()};
  inverted.initial_reconnect_backoff = milliseconds(500);
  inverted.max_reconnect_backoff = milliseconds(100);
  EXPECT_TRUE(refused_naming(inverted, "PostgresEventStoreOptions::max_reconnect_backoff"));
}

}  // namespace
