// Reads from a hot standby (docs/scaling.md): a PostgresEventStore whose reads go to a
// streaming replica while appends go to the primary. Run by run_replica_test.sh, which starts
// a primary and a standby of its own: ANNALS_DATABASE_URL names the primary, and
// ANNALS_STANDBY_PORT the standby's port (the same databases, replicated).
//
// What it proves: the never-skip guarantee holds on the standby (a transaction held open on
// the primary holds back the standby's readers; eight concurrent writers and a held
// transaction, read by a projection runner on the standby, lose and repeat nothing); reads
// really come from the standby (with its replay paused, the standby store does not see a new
// append, and wait_for_position times out with PositionNotVisibleError); subscriptions on the
// standby are woken by the primary's notifications and see events once replayed. It prints the
// append-to-delivery latency of a subscription on the standby (and on the primary, to compare).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/runner.hpp"
#include "eventually.hpp"
#include "test_database.hpp"

namespace {

using annals::EventFilter;
using annals::EventStore;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::PositionNotVisibleError;
using annals::RecordedEvent;
using annals::StreamId;
using annals::testing::eventually;
using annals::testing::test_database_url;
using annals::testing::unique_stream;
using namespace std::chrono_literals;

// The test database's URL on the standby: the primary's URL with the standby's port.
const std::string& standby_url() {
  static const std::string url = [] {
    const char* port = std::getenv("ANNALS_STANDBY_PORT");
    if (port == nullptr) {
      std::cerr << "ANNALS_STANDBY_PORT is not set: run this test through ctest "
                   "(tests/integration/replica/run_replica_test.sh starts the standby)\n";
      std::abort();
    }
    pqxx::connection primary(test_database_url());
    const std::string primary_port = primary.port();
    std::string result = test_database_url();
    const auto at = result.find(":" + primary_port + "/");
    if (at == std::string::npos) std::abort();
    result.replace(at + 1, primary_port.size(), port);
    return result;
  }();
  return url;
}

// Waits until the standby has replayed everything the primary flushed so far (so what a test
// asserts about the standby's view covers every commit made before this call).
void await_replay() {
  std::string lsn;
  {
    pqxx::connection primary(test_database_url());
    pqxx::nontransaction tx(primary);
    lsn = tx.exec("SELECT pg_current_wal_flush_lsn()::text")[0][0].as<std::string>();
  }
  pqxx::connection standby(standby_url());
  ASSERT_TRUE(eventually([&] {
    pqxx::nontransaction tx(standby);
    return tx.exec_params("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn)[0][0].as<bool>();
  })) << "the standby never replayed "
      << lsn;
}

class StandbyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The test database was created and migrated on the primary; wait until the standby has
    // it (CREATE DATABASE and the migrations replay like any write).
    (void)test_database_url();
    await_replay();
  }

  static std::unique_ptr<EventStore> standby_store() {
    // docs:begin scaling-standby-store
    auto store = annals::postgres::make_postgres_event_store(
        {.connection_string = test_database_url(),      // the primary: appends
         .pool_size = 4,                                // per side
         .standby_connection_string = standby_url()});  // reads, subscriptions, runners
    // docs:end
    return store;
  }
  static std::unique_ptr<EventStore> primary_store() {
    return annals::postgres::make_postgres_event_store(
        {.connection_string = test_database_url(), .pool_size = 4});
  }
};

NewEvent event(const std::string& type, int n = 0) {
  return NewEvent{.type = type, .data = {{"n", n}}};
}

std::vector<std::string> streams_of(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> out;
  out.reserve(events.size());
  for (const auto& e : events) out.push_back(e.stream_id.value());
  return out;
}

// The standby is a real standby, and read-only: what the store's reads rely on there.
TEST_F(StandbyTest, TheStandbyIsInRecoveryAndAnswersTheHorizon) {
  pqxx::connection standby(standby_url());
  pqxx::nontransaction tx(standby);
  EXPECT_TRUE(tx.exec("SELECT pg_is_in_recovery()")[0][0].as<bool>());
  // What the global log's reads call: it works on a hot standby (pg_current_xact_id does not).
  EXPECT_FALSE(tx.exec("SELECT annals.visible_below()")[0][0].is_null());
}

// Reads go to the standby, appends to the primary; read-your-writes waits for replay, with a
// typed error at its timeout. Replay is paused on the standby, so the standby store cannot see
// the append until it is resumed (deterministic, no timing).
TEST_F(StandbyTest, ReadsComeFromTheStandbyAndWaitForPositionWaitsForReplay) {
  auto store = standby_store();
  auto primary = primary_store();
  pqxx::connection control(standby_url());
  pqxx::nontransaction standby(control);
  standby.exec("SELECT pg_wal_replay_pause()");
  ASSERT_TRUE(eventually([&] {
    return standby.exec("SELECT pg_get_wal_replay_pause_state()")[0][0].as<std::string>() ==
           "paused";
  }));

  const StreamId stream(unique_stream("standby"));
  const auto written = store->append(stream, ExpectedVersion::no_stream(), {event("Written")});
  // The primary has it; the standby store's reads do not (they go to the paused standby),
  // while its writes' own checks (stream_version) are the primary's.
  EXPECT_EQ(primary->read_stream(stream).size(), 1U);
  EXPECT_TRUE(store->read_stream(stream).empty());
  EXPECT_LT(store->head_position(), written.position);
  EXPECT_EQ(store->stream_version(stream), 1);

  try {
    annals::postgres::wait_for_position(*store, written.position, 200ms);
    ADD_FAILURE() << "wait_for_position returned while replay was paused";
  } catch (const PositionNotVisibleError& e) {
    EXPECT_EQ(e.position(), written.position);
    EXPECT_GE(e.waited(), 200ms);
    EXPECT_TRUE(e.retryable());
    std::cerr << "while paused: " << e.what() << "\n";
  }

  standby.exec("SELECT pg_wal_replay_resume()");
  const auto started = std::chrono::steady_clock::now();
  // docs:begin scaling-read-your-writes
  // `written` came from store->append(...) on the primary; block until the standby has it.
  annals::postgres::wait_for_position(*store, written.position, 30s);
  // docs:end
  std::cerr << "visible on the standby "
            << std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count()
            << " us after replay resumed\n";
  const auto events = store->read_stream(stream);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events.front().position, written.position);
  EXPECT_GE(store->head_position(), written.position);

  EXPECT_THROW(annals::postgres::wait_for_position(*store, written.position, -1ms),
               annals::InvalidArgumentError);
}

TEST_F(StandbyTest, RejectsANonPositiveReplayTimeout) {
  EXPECT_THROW((void)annals::postgres::make_postgres_event_store(
                   {.connection_string = test_database_url(),
                    .standby_connection_string = standby_url(),
                    .standby_replay_timeout = std::chrono::milliseconds(0)}),
               annals::InvalidArgumentError);
}

// Decision 5 on the standby: a transaction that wrote first on the primary and commits last
// holds back every reader on the standby, even once the standby has replayed the later
// commits; afterwards everything is delivered exactly once, in log order.
TEST_F(StandbyTest, HeldWritingTransactionIsNeverSkippedOnTheStandby) {
  auto store = standby_store();
  const auto start = store->head_position();
  const std::string category = "held" + unique_stream("c").substr(2, 8);
  const StreamId held(category + "-held");
  const StreamId later1(category + "-later1");
  const StreamId later2(category + "-later2");
  const EventFilter filter{.category = category};

  std::mutex mutex;
  std::vector<RecordedEvent> delivered;
  auto subscription = store->subscribe({.after = start, .filter = filter, .poll_interval = 50ms},
                                       [&](const RecordedEvent& e) {
                                         std::lock_guard lock(mutex);
                                         delivered.push_back(e);
                                       });

  pqxx::connection holder(test_database_url());
  pqxx::work held_tx(holder);
  held_tx.exec_params(
      "SELECT * FROM annals.append_events(ARRAY[$1]::text[], ARRAY[-1]::bigint[], ARRAY[1],"
      " ARRAY[gen_random_uuid()], ARRAY['Held']::text[], ARRAY[1], ARRAY['{}'::jsonb],"
      " ARRAY['{}'::jsonb])",
      held.value());

  const auto r1 = store->append(later1, ExpectedVersion::no_stream(), {event("Later", 1)});
  const auto r2 = store->append(later2, ExpectedVersion::no_stream(), {event("Later", 2)});
  EXPECT_LT(r1.position, r2.position);
  // The standby has replayed both later commits (and the held transaction's insert)...
  ASSERT_NO_FATAL_FAILURE(await_replay());
  {
    pqxx::connection standby(standby_url());
    pqxx::nontransaction tx(standby);
    EXPECT_EQ(tx.exec_params("SELECT count(*) FROM annals.events WHERE stream_id IN ($1, $2)",
                             later1.value(), later2.value())[0][0]
                  .as<int>(),
              2)
        << "the later commits are not on the standby";
  }
  // ...and still its readers see nothing past the held transaction.
  EXPECT_TRUE(store->read_all({.after = start, .filter = filter}).empty());
  EXPECT_LT(store->head_position(), r1.position);
  EXPECT_THROW(annals::postgres::wait_for_position(*store, r1.position, 100ms),
               PositionNotVisibleError);
  ASSERT_FALSE(subscription->wait_for(r1.position, 300ms));
  {
    std::lock_guard lock(mutex);
    EXPECT_TRUE(delivered.empty());
  }

  held_tx.commit();

  ASSERT_TRUE(subscription->wait_for(r2.position, 10s));
  const auto all = store->read_all({.after = start, .filter = filter});
  EXPECT_EQ(streams_of(all),
            (std::vector<std::string>{held.value(), later1.value(), later2.value()}));
  subscription->stop();
  std::lock_guard lock(mutex);
  EXPECT_EQ(streams_of(delivered), streams_of(all));
  EXPECT_EQ(subscription->stop_reason(), nullptr);
}

// Records every event it is given, per stream, in the order applied.
class Recorder final : public annals::projections::InProcessProjection {
 public:
  explicit Recorder(std::string category) : category_(std::move(category)) {}
  [[nodiscard]] std::string name() const override { return "standby-recorder-" + category_; }
  [[nodiscard]] EventFilter filter() const override { return {.category = category_}; }
  void handle(const RecordedEvent& e) override {
    std::lock_guard lock(mutex_);
    versions_[e.stream_id.value()].push_back(e.version);
    ++applied_;
  }
  [[nodiscard]] std::map<std::string, std::vector<std::int64_t>> versions() const {
    std::lock_guard lock(mutex_);
    return versions_;
  }
  [[nodiscard]] std::size_t applied() const {
    std::lock_guard lock(mutex_);
    return applied_;
  }

 private:
  std::string category_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::int64_t>> versions_;
  std::size_t applied_ = 0;
};

// No skips under concurrency, on the standby: a projection runner reading from the standby
// (checkpoints on the primary), 8 writer threads appending to the primary and a writing
// transaction held open while they commit. Nothing is applied before the held transaction
// commits, even once the standby replayed every writer's commit; then every event exactly
// once, each stream in version order; and the runner's read-your-writes wait works.
TEST_F(StandbyTest, NoSkipsUnderConcurrentWritersAndAHeldTransaction) {
  auto store = standby_store();
  auto projections = annals::projections::make_postgres_projection_store(
      {.connection_string = test_database_url()});
  const std::string category = "gap" + unique_stream("c").substr(2, 8);
  auto recorder = std::make_shared<Recorder>(category);
  annals::projections::ProjectionRunner runner(*store, *projections, {.owner = "standby-runner"});
  runner.add(recorder);
  runner.start();
  ASSERT_TRUE(eventually([&] {
    return runner.status(recorder->name()).state == annals::projections::ProjectionState::kLive;
  }));

  pqxx::connection holder(test_database_url());
  pqxx::work held(holder);
  held.exec_params(
      "SELECT * FROM annals.append_events(ARRAY[$1]::text[], ARRAY[-1]::bigint[],"
      " ARRAY[1], ARRAY[gen_random_uuid()], ARRAY['Deposited']::text[], ARRAY[1],"
      " ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])",
      category + "-held");

  constexpr int kWriters = 8;
  constexpr int kAppendsEach = 40;
  std::vector<std::thread> writers;
  writers.reserve(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 local(static_cast<std::uint64_t>(w) * 7919U + 17U);
      for (int i = 0; i < kAppendsEach; ++i) {
        std::vector<NewEvent> events;
        const auto n = 1 + local() % 3;
        for (std::uint64_t k = 0; k < n; ++k) events.push_back(event("Deposited", i));
        // Streams shared between writers: appends with "any" interleave their versions.
        (void)store->append(StreamId(category + "-w" + std::to_string(local() % 6)),
                            ExpectedVersion::any(), std::move(events));
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_NO_FATAL_FAILURE(await_replay());
  // A notification of every writer's commit reached the runner, and the standby has replayed
  // them all; still nothing past the held transaction may be applied.
  EXPECT_TRUE(store->read_all({.filter = {.category = category}}).empty());
  EXPECT_EQ(recorder->applied(), 0U);

  held.commit();
  Position last;
  for (int i = 0; i < 10; ++i) {
    last = store->append(StreamId(category + "-after"), ExpectedVersion::any(), {event("After", i)})
               .position;
  }
  // Read-your-writes through a runner on the standby.
  ASSERT_TRUE(runner.wait_for(recorder->name(), last, 60s));
  runner.stop();

  auto primary = primary_store();
  std::size_t expected_total = 0;
  for (const auto& [stream, versions] : recorder->versions()) {
    const auto stored = primary->read_stream(StreamId(stream));
    expected_total += stored.size();
    std::vector<std::int64_t> in_order;
    for (std::int64_t v = 1; v <= static_cast<std::int64_t>(stored.size()); ++v) {
      in_order.push_back(v);
    }
    EXPECT_EQ(versions, in_order) << stream << ": an event skipped, repeated or out of order";
  }
  EXPECT_EQ(recorder->versions().size(), 8U);  // 6 writer streams, held, after
  EXPECT_EQ(recorder->applied(), expected_total);
  EXPECT_EQ(recorder->versions().count(category + "-held"), 1U);
}

// How soon a subscription on the standby sees an append: from append() returning on the
// primary to the handler receiving the event (notification on the primary, replay wait on the
// standby, read from the standby). Printed for docs/scaling.md, with the same figure for a
// subscription reading the primary.
std::vector<double> delivery_latencies_us(EventStore& store, int count) {
  const std::string category = "lat" + unique_stream("c").substr(2, 8);
  std::mutex mutex;
  std::condition_variable delivered_cv;
  std::int64_t delivered = 0;
  std::chrono::steady_clock::time_point delivered_at;
  auto subscription = store.subscribe(
      {.after = store.head_position(), .filter = {.category = category}, .poll_interval = 5s},
      [&](const RecordedEvent&) {
        std::lock_guard lock(mutex);
        ++delivered;
        delivered_at = std::chrono::steady_clock::now();
        delivered_cv.notify_all();
      });
  std::vector<double> latencies;
  for (int i = 0; i < count; ++i) {
    (void)store.append(StreamId(category + "-1"), ExpectedVersion::any(), {event("Ping", i)});
    const auto appended = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex);
    if (!delivered_cv.wait_for(lock, 10s, [&] { return delivered == i + 1; })) {
      ADD_FAILURE() << "event " << i << " not delivered within 10 s";
      break;
    }
    latencies.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                std::max(delivered_at, appended) - appended)
                                                .count()));
  }
  subscription->stop();
  std::sort(latencies.begin(), latencies.end());
  return latencies;
}

// Replication alone: from append() returning on the primary to the event being readable on
// the standby, polling the standby as fast as it answers.
std::vector<double> replication_latencies_us(EventStore& primary, int count) {
  const std::string stream = unique_stream("repl");
  pqxx::connection standby(standby_url());
  std::vector<double> latencies;
  for (int i = 0; i < count; ++i) {
    const auto written = primary.append(StreamId(stream), ExpectedVersion::any(), {event("R", i)});
    const auto appended = std::chrono::steady_clock::now();
    const bool visible = eventually(
        [&] {
          pqxx::nontransaction tx(standby);
          return !tx.exec_params(
                        "SELECT 1 FROM annals.events WHERE stream_id = $1"
                        " AND stream_version = $2",
                        stream, written.last_version)
                      .empty();
        },
        10s, 0ms);
    if (!visible) {
      ADD_FAILURE() << "event " << i << " not on the standby within 10 s";
      break;
    }
    latencies.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                std::chrono::steady_clock::now() - appended)
                                                .count()));
  }
  std::sort(latencies.begin(), latencies.end());
  return latencies;
}

TEST_F(StandbyTest, PrintsTheSubscriptionLatencyOnTheStandby) {
  constexpr int kAppends = 100;
  auto on_standby = standby_store();
  auto on_primary = primary_store();
  const auto standby = delivery_latencies_us(*on_standby, kAppends);
  const auto primary = delivery_latencies_us(*on_primary, kAppends);
  const auto replication = replication_latencies_us(*on_primary, kAppends);
  ASSERT_EQ(standby.size(), static_cast<std::size_t>(kAppends));
  ASSERT_EQ(primary.size(), static_cast<std::size_t>(kAppends));
  ASSERT_EQ(replication.size(), static_cast<std::size_t>(kAppends));
  const auto at = [](const std::vector<double>& sorted, double q) {
    return sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))];
  };
  std::cerr << "append-to-readable-on-the-standby (replication) over " << kAppends
            << " appends: p50 " << at(replication, 0.5) / 1000.0 << " ms, p99 "
            << at(replication, 0.99) / 1000.0 << " ms\n";
  std::cerr << "append-to-delivery latency over " << kAppends << " appends: standby p50 "
            << at(standby, 0.5) / 1000.0 << " ms, p99 " << at(standby, 0.99) / 1000.0
            << " ms; primary p50 " << at(primary, 0.5) / 1000.0 << " ms, p99 "
            << at(primary, 0.99) / 1000.0 << " ms\n";
  RecordProperty("standby_p50_us", static_cast<int>(at(standby, 0.5)));
  RecordProperty("standby_p99_us", static_cast<int>(at(standby, 0.99)));
}

}  // namespace
