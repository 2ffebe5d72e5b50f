// Timeouts everywhere, the PostgreSQL projection store: the statements of an open batch
// (COMMIT included) and prepare() behind a TCP proxy that stops forwarding without closing
// anything (tests/support/tcp_proxy.hpp, stall(), stall_on_request()). The watchdog cuts them
// within their timeouts, the runner reports reconnecting, and after the proxy forwards again it
// resumes with every event applied exactly once (the checkpoint commits with the read model).
//
// Timing: the asserted bounds are the configured timeout plus a generous margin (the machine is
// shared); measured times are printed. Waits for a condition use a deadline, never a sleep.
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "eventually.hpp"
#include "projections/read_model_support.hpp"
#include "tcp_proxy.hpp"
#include "test_database.hpp"

namespace {

using annals::testing::elapsed_since;
using annals::testing::eventually;

namespace p = annals::projections;
using annals::EventId;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::StreamId;
using annals::testing::TcpProxy;
using annals::testing::test_database_url;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kMargin{5'000};
constexpr milliseconds kStatementTimeout{1'500};
constexpr milliseconds kLong{30'000};

annals::EventStore& direct_store() {
  static const auto store =
      annals::postgres::make_postgres_event_store({.connection_string = test_database_url()});
  return *store;
}

p::PostgresProjectionStoreOptions options_via(const TcpProxy& proxy) {
  p::PostgresProjectionStoreOptions options{.connection_string = proxy.url(),
                                            .session_liveness = false};
  options.connection_timeouts.connect_timeout = std::chrono::seconds(2);
  options.call_timeout = milliseconds(1'000);
  options.batch_statement_timeout = kStatementTimeout;
  options.prepare_timeout = kStatementTimeout;
  return options;
}

// A read model counting the events of one category in one row: a batch applied twice would
// count its events twice.
std::shared_ptr<p::testing::LambdaReadModel> counting_projection(const std::string& name,
                                                                 const std::string& category) {
  auto projection = std::make_shared<p::testing::LambdaReadModel>(
      name, [name](const annals::RecordedEvent&, p::ReadModel& db) {
        db.increment(name, {{"id", "events"}}, "count", 1);
      });
  projection->migrations_ = {
      {"create", "CREATE TABLE " + name + " (id text PRIMARY KEY, count bigint NOT NULL)"}};
  projection->filter_.category = category;
  return projection;
}

annals::Position append_events(const StreamId& stream, int first, int count) {
  annals::Position last;
  for (int i = 0; i < count; ++i) {
    last = direct_store()
               .append(stream, ExpectedVersion::exact(first + i),
                       {NewEvent{.id = EventId::generate(), .type = "Counted", .data = {}}})
               .position;
  }
  return last;
}

TEST(ProjectionTimeoutsTest, StalledBatchCommitFailsRunnerReconnectsAndResumesExactlyOnce) {
  TcpProxy proxy(test_database_url());
  auto store = p::make_postgres_projection_store(options_via(proxy));
  const auto name = p::testing::unique_name("stalled_commit");
  const auto category = "cnt" + p::testing::random_hex(12);
  const StreamId stream(category + "-1");
  auto projection = counting_projection(name, category);
  p::RunnerOptions runner_options;
  runner_options.poll_interval = milliseconds(100);
  p::ProjectionOptions projection_options;
  projection_options.initial_backoff = milliseconds(10);
  projection_options.max_backoff = milliseconds(100);
  p::ProjectionRunner runner(direct_store(), *store, runner_options);
  runner.add(projection, projection_options);
  runner.start();
  const auto before = append_events(stream, 0, 3);
  ASSERT_TRUE(runner.wait_for(name, before, kLong));

  // The next batch's COMMIT falls into the black hole (its writes and checkpoint went out).
  proxy.stall_on_request("COMMIT");
  const auto during = append_events(stream, 3, 2);
  ASSERT_TRUE(eventually([&] { return proxy.stalled(); }));
  const auto start = Clock::now();
  ASSERT_TRUE(
      eventually([&] { return runner.status(name).state == p::ProjectionState::kReconnecting; }));
  const auto took = elapsed_since(start);
  std::printf("[ measured ] a runner whose COMMIT hangs reported reconnecting after %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, kStatementTimeout + kMargin);

  // The held COMMIT reaches the server after resume() (or not): either way each event is
  // counted once, since the checkpoint committed with the count or not at all.
  proxy.resume();
  ASSERT_TRUE(runner.wait_for(name, during, kLong));
  ASSERT_TRUE(eventually([&] { return runner.status(name).state == p::ProjectionState::kLive; }));
  p::testing::Admin admin;
  EXPECT_EQ(admin.value("SELECT count FROM " + name), "5");
  const auto after = append_events(stream, 5, 1);
  EXPECT_TRUE(runner.wait_for(name, after, kLong));
  EXPECT_EQ(admin.value("SELECT count FROM " + name), "6");
  runner.stop();
}

TEST(ProjectionTimeoutsTest, StalledPrepareFailsWithUnavailableWithinPrepareTimeout) {
  TcpProxy proxy(test_database_url());
  auto store = p::make_postgres_projection_store(options_via(proxy));
  const auto name = p::testing::unique_name("stalled_prepare");
  auto projection = counting_projection(name, "cnt" + p::testing::random_hex(12));

  proxy.stall();
  const auto start = Clock::now();
  EXPECT_THROW(store->prepare(*projection), annals::UnavailableError);
  const auto took = elapsed_since(start);
  std::printf("[ measured ] prepare() through a stalled proxy failed after %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, kStatementTimeout + kMargin);

  proxy.resume();
  store->prepare(*projection);
  p::testing::Admin admin;
  EXPECT_EQ(admin.count(name), 0);  // the table exists, once
}

TEST(ProjectionTimeoutsTest, InvalidBatchTimeoutsAreRefusedNamingTheOption) {
  const auto refused_naming = [](p::PostgresProjectionStoreOptions options,
                                 const std::string& option) {
    try {
      (void)p::make_postgres_projection_store(std::move(options));
    } catch (const annals::InvalidArgumentError& e) {
      return std::string(e.what()).find(option) != std::string::npos;
    }
    return false;
  };
  p::PostgresProjectionStoreOptions zero{.connection_string = test_database_url()};
  zero.batch_statement_timeout = milliseconds(0);
  EXPECT_TRUE(refused_naming(zero, "PostgresProjectionStoreOptions::batch_statement_timeout"));
  p::PostgresProjectionStoreOptions negative{.connection_string = test_database_url()};
  negative.prepare_timeout = milliseconds(-1);
  EXPECT_TRUE(refused_naming(negative, "PostgresProjectionStoreOptions::prepare_timeout"));
}

}  // namespace
