// The event store, the projection store, a projection runner, the relay and the CLI behind
// PgBouncer in transaction pooling mode (docs/operations.md, "Behind PgBouncer"). Run by
// run_pgbouncer_test.sh, which starts the pooler in front of the server of ANNALS_DATABASE_URL
// and sets ANNALS_PGBOUNCER_PORT.
//
// Through the pooler: appends (single-event appends grouped by group commit, multi-stream
// appends, a conflict), reads of streams and of the global log, the reads of a subscription
// and of a projection runner, the projection store's leases, checkpoints, read-model batches and
// dead letters, `annals relay`, and CLI commands. Directly to the server: each subscription's
// LISTEN connection and the after-commit notifier (the event store's
// session_connection_string), and the projection store's presence connection (its
// session_connection_string). Both stores send unnamed statements (prepare_statements = false):
// PgBouncer 1.18 may run each transaction on another server connection, where a named prepared
// statement does not exist.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <libpq-fe.h>
#ifdef ANNALS_RELAY_TEST
#include <httplib.h>
#endif
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/runner.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
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
  // The subscription first: another test's open transaction may hold the settled horizon back
  // for a moment, and once the last append is settled for the subscription it is for read_all.
  EXPECT_TRUE(subscription->wait_for(multi.back().position, 30s));
  const auto all = store->read_all({.filter = {.category = category}});
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach + 3));
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

#ifdef ANNALS_CLI_PATH
annals::testing::ProcessResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), ANNALS_CLI_PATH);
  args.emplace_back("--db");
  args.push_back(through_bouncer());
  return annals::testing::run_process(args, "",
                                      annals::testing::environment_without("ANNALS_DATABASE_URL"));
}

#endif  // ANNALS_CLI_PATH

// The projection store through the pooler: unnamed statements, and its presence connection
// (a session advisory lock) directly to the server.
std::unique_ptr<annals::projections::ProjectionStore> pooled_projection_store() {
  return annals::projections::make_postgres_projection_store(
      {.connection_string = through_bouncer(),
       .pool_size = 4,
       .session_connection_string = test_database_url(),
       .prepare_statements = false});
}

// A read model of balances: each event adds its `n` to its stream's row (a pipelined
// read-model write); an event with a `poison` field throws and is parked as a dead letter.
class Balances final : public annals::projections::ReadModelProjection {
 public:
  explicit Balances(std::string category) : category_(std::move(category)) {}
  [[nodiscard]] std::string name() const override { return "pooled-balances-" + category_; }
  [[nodiscard]] EventFilter filter() const override { return {.category = category_}; }
  [[nodiscard]] std::vector<annals::projections::ReadModelMigration> migrations() const override {
    return {{.name = "0001_create",
             .sql = "CREATE TABLE " + table() +
                    " (stream text PRIMARY KEY, balance bigint NOT NULL DEFAULT 0,"
                    " events int NOT NULL DEFAULT 0)"}};
  }
  [[nodiscard]] std::vector<std::string> tables() const override { return {table()}; }
  void handle(const RecordedEvent& e, annals::projections::ReadModel& db) override {
    if (e.data.contains("poison")) throw std::runtime_error("poisoned event");
    const annals::projections::Columns key = {{"stream", e.stream_id.value()}};
    db.increment(table(), key, "balance", e.data.at("n").get<std::int64_t>());
    db.increment(table(), key, "events", 1);
  }
  [[nodiscard]] std::string table() const { return "pooled_balances_" + category_; }

 private:
  std::string category_;
};

// stream -> (balance, events) as the read model holds them.
std::map<std::string, std::pair<long long, int>> balances(const std::string& table) {
  pqxx::connection direct(test_database_url());
  pqxx::nontransaction tx(direct);
  std::map<std::string, std::pair<long long, int>> rows;
  for (const auto& row : tx.exec("SELECT stream, balance, events FROM " + table)) {
    rows[row[0].c_str()] = {row[1].as<long long>(), row[2].as<int>()};
  }
  return rows;
}

// The lease's recorded presence key (sql/0011): set only while the store's presence
// connection holds its session lock, which it takes on the direct connection.
bool lease_records_a_session(const std::string& projection) {
  pqxx::connection direct(test_database_url());
  pqxx::nontransaction tx(direct);
  return !tx.exec_params("SELECT owner_session FROM annals.projections WHERE name = $1",
                         projection)[0][0]
              .is_null();
}

// Appends `count` events with n = 1..count round-robin to 3 streams of `category`; returns the
// last position and adds each stream's expected balance and event count to `expected`.
Position append_deposits(EventStore& store, const std::string& category, int count,
                         std::map<std::string, std::pair<long long, int>>& expected) {
  Position last;
  for (int i = 1; i <= count; ++i) {
    const std::string stream = category + "-" + std::to_string(i % 3);
    last = store.append(StreamId(stream), ExpectedVersion::any(), {event("Deposited", i)}).position;
    expected[stream].first += i;
    expected[stream].second += 1;
  }
  return last;
}

TEST(PgBouncerTest, AProjectionRunnerAndItsProjectionStoreWorkThroughThePooler) {
  auto store = pooled_store();
  auto projections = pooled_projection_store();
  const std::string category = "bncp" + unique_stream("c").substr(2, 8);
  auto balances_model = std::make_shared<Balances>(category);
  auto counter = std::make_shared<Counter>(category);
  std::map<std::string, std::pair<long long, int>> expected;
  Position last;
  {
    annals::projections::ProjectionRunner runner(*store, *projections, {.owner = "pooled-runner"});
    runner.add(balances_model,
               {.max_attempts = 1, .on_failure = annals::projections::OnFailure::kDeadLetter});
    runner.add(counter);
    runner.start();
    last = append_deposits(*store, category, 30, expected);
    const auto poisoned = store->append(StreamId(category + "-x"), ExpectedVersion::any(),
                                        {NewEvent{.type = "Deposited", .data = {{"poison", 1}}}});
    last = append_deposits(*store, category, 30, expected);
    ASSERT_TRUE(runner.wait_for(balances_model->name(), last, 60s));
    ASSERT_TRUE(runner.wait_for(counter->name(), last, 60s));
    EXPECT_TRUE(lease_records_a_session(balances_model->name()));
    runner.stop();
    const auto letters = projections->list_dead_letters({.projection = balances_model->name()});
    ASSERT_EQ(letters.size(), 1U);
    EXPECT_EQ(letters[0].event.position, poisoned.position);
#ifdef ANNALS_CLI_PATH
    // `annals projections` and `annals dead-letters` through the pooler.
    const auto status = cli({"projections", "status", balances_model->name(), "--json"});
    ASSERT_EQ(status.exit_code, 0) << status;
    EXPECT_NE(status.out.find(last.to_string()), std::string::npos) << status;
    const auto listed = cli({"projections", "list"});
    ASSERT_EQ(listed.exit_code, 0) << listed;
    EXPECT_NE(listed.out.find(counter->name()), std::string::npos) << listed;
    const auto parked =
        cli({"dead-letters", "list", "--projection", balances_model->name(), "--json"});
    ASSERT_EQ(parked.exit_code, 0) << parked;
    EXPECT_NE(parked.out.find(letters[0].event.id.to_string()), std::string::npos) << parked;
    const auto skipped = cli({"dead-letters", "skip", std::to_string(letters[0].id)});
    EXPECT_EQ(skipped.exit_code, 0) << skipped;
    EXPECT_EQ(projections->list_dead_letters({.projection = balances_model->name()})[0].state,
              annals::projections::DeadLetterState::kSkipped);
#endif  // ANNALS_CLI_PATH
  }
  EXPECT_EQ(balances(balances_model->table()), expected);  // every event applied exactly once
  EXPECT_EQ(counter->applied.load(), 61);
  EXPECT_EQ(projections->checkpoint(balances_model->name()), last);

  // A second runner continues from the stored checkpoints, through the pooler again.
  annals::projections::ProjectionRunner second(*store, *projections, {.owner = "pooled-runner-2"});
  second.add(balances_model, {.on_failure = annals::projections::OnFailure::kDeadLetter});
  second.start();
  last = append_deposits(*store, category, 9, expected);
  ASSERT_TRUE(second.wait_for(balances_model->name(), last, 60s));
  second.stop();
  EXPECT_EQ(balances(balances_model->table()), expected);
  EXPECT_EQ(projections->checkpoint(balances_model->name()), last);
}

#ifdef ANNALS_CLI_PATH
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

#ifdef ANNALS_RELAY_TEST
// A webhook receiver for `annals relay --webhook`: the Idempotency-Key (the event id) of every
// POST, in arrival order.
class Receiver {
 public:
  Receiver() {
    server_.Post("/in", [this](const httplib::Request& request, httplib::Response& response) {
      const std::lock_guard lock(mutex_);
      keys_.push_back(request.get_header_value("Idempotency-Key"));
      response.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/in";
  }
  [[nodiscard]] std::vector<std::string> keys() {
    const std::lock_guard lock(mutex_);
    return keys_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> keys_;
};

// `annals relay` with --db at the pooler and --session-db at the server: its event store and
// projection store send unnamed statements through the pooler; its LISTEN and presence
// connections go to the server. It delivers a backlog and then live events, each once, in log
// order, and its checkpoint ends at the last one.
TEST(PgBouncerTest, TheRelayWorksThroughThePooler) {
  auto store = pooled_store();
  const std::string category = "bncr" + unique_stream("c").substr(2, 8);
  const auto append = [&](int count) {
    for (int i = 0; i < count; ++i) {
      (void)store->append(StreamId(category + "-" + std::to_string(i % 2)), ExpectedVersion::any(),
                          {event("Shipped", i)});
    }
  };
  append(20);  // a backlog
  Receiver receiver;
  const std::string name = "pooled-relay-" + category;
  annals::testing::ChildProcess relay(
      {ANNALS_CLI_PATH, "--db", through_bouncer(), "relay", "--webhook", receiver.url(), "--name",
       name, "--category", category, "--session-db", test_database_url(), "--status-interval", "1"},
      "relay");
  ASSERT_TRUE(annals::testing::eventually([&] { return receiver.keys().size() >= 20; }, 60s));
  append(10);  // live: woken by its LISTEN on the server
  ASSERT_TRUE(annals::testing::eventually([&] { return receiver.keys().size() >= 30; }, 60s));
  EXPECT_EQ(relay.stop(SIGTERM, 30s), std::optional<int>(0));

  const auto events = store->read_all({.filter = {.category = category}});
  ASSERT_EQ(events.size(), 30U);
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id.to_string());
  EXPECT_EQ(receiver.keys(), ids);  // each once, in log order
  EXPECT_EQ(pooled_projection_store()->checkpoint(name), events.back().position);
}
#endif  // ANNALS_RELAY_TEST

}  // namespace
