// The event store, a projection runner and the CLI behind PgBouncer in transaction pooling
// mode (docs/operations.md, "Connection poolers"). Run by run_pgbouncer_test.sh, which starts
// the pooler in front of the server of ANNALS_DATABASE_URL and sets ANNALS_PGBOUNCER_PORT.
//
// Through the pooler: appends (single-event appends grouped by group commit, multi-stream
// appends, a conflict), reads of streams and of the global log, the reads of a subscription
// and of a projection runner, and CLI commands. Directly to the server: each subscription's
// LISTEN connection and the after-commit notifier (session_connection_string), and the
// projection store. The store sends unnamed statements (prepare_statements = false): PgBouncer
// 1.18 may run each transaction on another server connection, where a named prepared
// statement does not exist.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/runner.hpp"
#include "run_process.hpp"
#include "test_database.hpp"

namespace {

using annals::EventFilter;
using annals::EventStore;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::RecordedEvent;
using annals::StreamAppend;
using annals::StreamId;
using annals::testing::test_database_url;
using annals::testing::unique_stream;
using namespace std::chrono_literals;

const char* bouncer_port() {
  const char* port = std::getenv("ANNALS_PGBOUNCER_PORT");
  if (port == nullptr) {
    std::cerr << "ANNALS_PGBOUNCER_PORT is not set: run this test through ctest "
                 "(tests/integration/pgbouncer/run_pgbouncer_test.sh starts PgBouncer)\n";
    std::abort();
  }
  return port;
}

// `url` (the test database on the server) with the pooler's port, or its `database`.
std::string through_bouncer(const std::string& database = {}) {
  pqxx::connection direct(test_database_url());
  const std::string server_port = direct.port();
  std::string url = test_database_url();
  const auto at = url.find(":" + server_port + "/");
  if (at == std::string::npos) std::abort();
  url.replace(at + 1, server_port.size(), bouncer_port());
  if (!database.empty()) url = url.substr(0, url.rfind('/') + 1) + database;
  return url;
}

// Transactions PgBouncer ran for the test database so far (its admin console's SHOW STATS,
// through libpq: libpqxx refuses the console's reported server version).
long long pooled_transactions() {
  const std::string database = pqxx::connection(test_database_url()).dbname();
  PGconn* admin = PQconnectdb(through_bouncer("pgbouncer").c_str());
  long long count = -1;
  if (PQstatus(admin) == CONNECTION_OK) {
    PGresult* stats = PQexec(admin, "SHOW STATS");
    const int database_column = PQfnumber(stats, "database");
    const int count_column = PQfnumber(stats, "total_xact_count");
    for (int row = 0; row < PQntuples(stats); ++row) {
      if (database == PQgetvalue(stats, row, database_column)) {
        count = std::stoll(PQgetvalue(stats, row, count_column));
      }
    }
    PQclear(stats);
  }
  PQfinish(admin);
  return count;
}

std::unique_ptr<EventStore> pooled_store() {
  return annals::postgres::make_postgres_event_store(
      {.connection_string = through_bouncer(),
       .pool_size = 4,
       .session_connection_string = test_database_url(),
       .prepare_statements = false});
}

NewEvent event(const std::string& type, int n = 0) {
  return NewEvent{.type = type, .data = {{"n", n}}};
}

TEST(PgBouncerTest, AppendsReadsAndASubscriptionWorkThroughThePooler) {
  auto store = pooled_store();
  const auto before = pooled_transactions();
  ASSERT_GE(before, 0) << "no statistics from PgBouncer's admin console";
  const std::string category = "bnc" + unique_stream("c").substr(2, 8);
  std::atomic<int> delivered{0};
  auto subscription = store->subscribe(
      {.after = store->head_position(), .filter = {.category = category}, .poll_interval = 5s},
      [&](const RecordedEvent&) { delivered.fetch_add(1); });

  // Concurrent single-event appends: group commit pipelines them in one transaction.
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::vector<std::thread> writers;
  writers.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      const StreamId stream(category + "-t" + std::to_string(t));
      for (int i = 0; i < kEach; ++i) {
        (void)store->append(stream, ExpectedVersion::exact(i), {event("Counted", i)});
      }
    });
  }
  for (auto& w : writers) w.join();
  const auto multi =
      store->append_multi({StreamAppend{.stream_id = StreamId(category + "-m1"),
                                        .expected = ExpectedVersion::no_stream(),
                                        .events = {event("Multi", 1), event("Multi", 2)}},
                           StreamAppend{.stream_id = StreamId(category + "-m2"),
                                        .expected = ExpectedVersion::no_stream(),
                                        .events = {event("Multi", 3)}}});
  ASSERT_EQ(multi.size(), 2U);
  EXPECT_THROW(
      (void)store->append(StreamId(category + "-t0"), ExpectedVersion::exact(3), {event("Late")}),
      annals::ConcurrencyError);

  for (int t = 0; t < kThreads; ++t) {
    const auto events = store->read_stream(StreamId(category + "-t" + std::to_string(t)));
    ASSERT_EQ(events.size(), static_cast<std::size_t>(kEach));
    EXPECT_EQ(events.back().version, kEach);
  }
  const auto all = store->read_all({.filter = {.category = category}});
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach + 3));
  EXPECT_TRUE(subscription->wait_for(multi.back().position, 30s));
  EXPECT_EQ(delivered.load(), kThreads * kEach + 3);
  subscription->stop();
  EXPECT_EQ(subscription->stop_reason(), nullptr);

  // It went through the pooler.
  const auto after = pooled_transactions();
  std::cerr << "PgBouncer ran " << after - before << " transactions for the store\n";
  EXPECT_GT(after - before, 20);
}

// Counts the events of a category.
class Counter final : public annals::projections::InProcessProjection {
 public:
  explicit Counter(std::string category) : category_(std::move(category)) {}
  [[nodiscard]] std::string name() const override { return "pooled-counter-" + category_; }
  [[nodiscard]] EventFilter filter() const override { return {.category = category_}; }
  void handle(const RecordedEvent&) override { applied.fetch_add(1); }
  std::atomic<int> applied{0};

 private:
  std::string category_;
};

TEST(PgBouncerTest, AProjectionRunnerReadsThroughThePooler) {
  auto store = pooled_store();
  // The projection store keeps its named prepared statements and its presence session: it
  // connects to the server directly (docs/operations.md, "Connection poolers").
  auto projections = annals::projections::make_postgres_projection_store(
      {.connection_string = test_database_url()});
  const std::string category = "bncp" + unique_stream("c").substr(2, 8);
  auto counter = std::make_shared<Counter>(category);
  annals::projections::ProjectionRunner runner(*store, *projections, {.owner = "pooled-runner"});
  runner.add(counter);
  runner.start();
  Position last;
  for (int i = 0; i < 30; ++i) {
    last = store->append(StreamId(category + "-1"), ExpectedVersion::any(), {event("Tick", i)})
               .position;
  }
  ASSERT_TRUE(runner.wait_for(counter->name(), last, 60s));
  runner.stop();
  EXPECT_EQ(counter->applied.load(), 30);
  EXPECT_EQ(projections->checkpoint(counter->name()), last);
}

#ifdef ANNALS_CLI_PATH
annals::testing::ProcessResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), ANNALS_CLI_PATH);
  args.emplace_back("--db");
  args.push_back(through_bouncer());
  return annals::testing::run_process(args, "",
                                      annals::testing::environment_without("ANNALS_DATABASE_URL"));
}

TEST(PgBouncerTest, TheCliWorksThroughThePooler) {
  const std::string stream = unique_stream("bnccli");
  const auto appended = cli({"append", stream, "Noted", R"({"n":1})"});
  ASSERT_EQ(appended.exit_code, 0) << appended;
  const auto again = cli({"append", stream, "Noted", R"({"n":2})", "--expected-version", "1"});
  ASSERT_EQ(again.exit_code, 0) << again;
  const auto read = cli({"read", stream, "--json"});
  ASSERT_EQ(read.exit_code, 0) << read;
  EXPECT_NE(read.out.find(R"("n":1)"), std::string::npos) << read;
  EXPECT_NE(read.out.find(R"("n":2)"), std::string::npos) << read;
  const auto conflict = cli({"append", stream, "Noted", "{}", "--expected-version", "0"});
  EXPECT_EQ(conflict.exit_code, 3) << conflict;
  const auto streams = cli({"streams"});
  EXPECT_EQ(streams.exit_code, 0) << streams;
}
#endif  // ANNALS_CLI_PATH

}  // namespace
