// System test of partitioned projections (docs/scaling.md, "Partitioned projections"): three
// real runner processes (projection_test_runner) share a projection of 4 partitions over a real
// PostgreSQL, one is killed with SIGKILL mid catch-up at a chosen point (inside its 61st apply,
// after it committed at least 3 batches), and the read model must equal a fresh computation
// from the log; then the partition count is changed to 2 with repartition() and, after more
// appends, the read model is still exact.
//
// Waiting is bounded polling of a condition (checkpoints in the database, a line on a runner's
// stdout) with a deadline, never a sleep.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/partitions.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/projection_store.hpp"
#include "child_process.hpp"
#include "test_database.hpp"

namespace {

using annals::EventStore;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::RecordedEvent;
using annals::StreamId;
using annals::projections::ProjectionStore;
using annals::testing::ChildProcess;
using annals::testing::test_database_url;
using namespace std::chrono_literals;

constexpr const char* kProjection = "psums";

// Per stream: events, sum of amounts, highest version, and a hash that depends on the order
// of the stream's events (projection_test_runner.cpp).
struct StreamRow {
  std::int64_t events = 0;
  std::int64_t total = 0;
  std::int64_t last_version = 0;
  std::int64_t hash = 0;
  friend bool operator==(const StreamRow&, const StreamRow&) = default;
};
using Model = std::map<std::string, StreamRow>;

Model expected_model(const std::vector<RecordedEvent>& log) {
  Model model;
  for (const auto& e : log) {
    auto& row = model[e.stream_id.value()];
    row.events += 1;
    row.total += e.data.value("amount", std::int64_t{0});
    row.last_version = std::max(row.last_version, e.version);
    row.hash = (row.hash * 1000003 + e.version) % 2147483647;
  }
  return model;
}

Model read_model() {
  pqxx::connection c(test_database_url());
  pqxx::read_transaction tx(c);
  Model model;
  for (const auto& row : tx.exec(std::string("SELECT stream, events, total, last_version, hash"
                                             " FROM ") +
                                 kProjection + "_streams")) {
    model[row[0].as<std::string>()] = {row[1].as<std::int64_t>(), row[2].as<std::int64_t>(),
                                       row[3].as<std::int64_t>(), row[4].as<std::int64_t>()};
  }
  return model;
}

std::vector<RecordedEvent> whole_log(EventStore& store) {
  std::vector<RecordedEvent> log;
  annals::ReadAllOptions options;
  options.max_count = 5000;
  while (true) {
    auto page = store.read_all(options);
    if (page.empty()) return log;
    options.after = page.back().position;
    log.insert(log.end(), std::make_move_iterator(page.begin()),
               std::make_move_iterator(page.end()));
  }
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// Appends `count` events of 5 per append, round-robin over `streams` streams "acct-<i>".
Position write_log(EventStore& store, int count, int streams, std::mt19937_64& rng, int& next) {
  Position last;
  for (int written = 0; written < count; written += 5) {
    std::vector<NewEvent> events;
    for (int i = 0; i < 5; ++i) {
      events.push_back(NewEvent{.type = "Deposited",
                                .data = {{"amount", static_cast<std::int64_t>(rng() % 1000)}}});
    }
    last = store
               .append(StreamId("acct-" + std::to_string(next)), ExpectedVersion::any(),
                       std::move(events))
               .position;
    next = (next + 1) % streams;
  }
  return last;
}

std::vector<RecordedEvent> log_through(EventStore& store, Position last) {
  std::vector<RecordedEvent> log;
  EXPECT_TRUE(eventually(
      [&] {
        log = whole_log(store);
        return !log.empty() && log.back().position >= last;
      },
      60s));
  return log;
}

std::unique_ptr<ChildProcess> start_runner(const std::string& owner,
                                           const std::vector<std::string>& extra) {
  std::vector<std::string> args{PROJECTION_TEST_RUNNER_PATH,
                                "--db",
                                test_database_url(),
                                "--owner",
                                owner,
                                "--name",
                                kProjection,
                                "--batch-size",
                                "20",
                                "--lease-ttl-ms",
                                "3000",
                                "--acquire-interval-ms",
                                "100"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<ChildProcess>(args, owner);
}

// The partition rows of the projection: name -> record.
std::map<std::string, annals::projections::ProjectionRecord> partitions(ProjectionStore& store) {
  std::map<std::string, annals::projections::ProjectionRecord> out;
  for (auto& record : store.list()) {
    const auto part = annals::projections::parse_partition_name(record.name);
    if (part && part->projection == kProjection) out.emplace(record.name, std::move(record));
  }
  return out;
}

bool all_reached(ProjectionStore& store, int count, Position head) {
  const auto rows = partitions(store);
  if (static_cast<int>(rows.size()) != count) return false;
  return std::all_of(rows.begin(), rows.end(),
                     [&](const auto& row) { return row.second.checkpoint >= head; });
}

// How many partitions each owner holds now.
std::map<std::string, int> holders(ProjectionStore& store) {
  std::map<std::string, int> out;
  for (const auto& [name, record] : partitions(store)) {
    if (record.owned && record.owner) ++out[*record.owner];
  }
  return out;
}

void stop_gracefully(ChildProcess& runner) {
  ASSERT_TRUE(runner.wait_for_line("ready", 60s)) << runner.out();
  runner.kill(SIGTERM);
  const auto code = runner.wait_for_exit(30s);
  ASSERT_TRUE(code.has_value()) << "runner did not stop after SIGTERM";
  EXPECT_EQ(*code, 0) << runner.out();
}

TEST(PartitionSystemTest, ThreeRunnersShareFourPartitionsSurviveAKillAndARepartition) {
  std::mt19937_64 rng(20261207);
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = test_database_url(), .pool_size = 4});
  auto projections = annals::projections::make_postgres_projection_store(
      {.connection_string = test_database_url(), .pool_size = 2});
  int next_stream = 0;

  // a starts alone and takes all 4 partitions; b joins and a hands 2 over (ceil(4 / 2));
  // c joins and takes none (ceil(4 / 3) = 2: a and b are at their share).
  auto a = start_runner("runner-a", {"--partitions", "4", "--crash-after-events", "61"});
  ASSERT_TRUE(a->wait_for_line("partitions 4", 60s)) << a->out();
  auto b = start_runner("runner-b", {"--partitions", "4"});
  ASSERT_TRUE(eventually(
      [&] {
        const auto held = holders(*projections);
        return held.size() == 2 && held.at("runner-a") == 2 && held.at("runner-b") == 2;
      },
      60s))
      << a->out() << b->out();
  auto c = start_runner("runner-c", {"--partitions", "4"});
  ASSERT_TRUE(c->wait_for_line("partitions 0", 60s)) << c->out();

  // The log arrives; a dies inside its 61st apply (after committing at least one batch),
  // mid catch-up of its two partitions.
  auto head = write_log(*store, 1200, 48, rng, next_stream);
  auto log = log_through(*store, head);
  ASSERT_EQ(log.size(), 1200U);
  EXPECT_EQ(a->wait(), 128 + SIGKILL) << a->out();
  EXPECT_TRUE(a->wait_for_line("crashing", 0ms).has_value()) << a->out();

  // c takes a's partitions over (a's session ended) and b and c finish: 2 each, by the rule.
  ASSERT_TRUE(eventually([&] { return all_reached(*projections, 4, head); }, 60s))
      << b->out() << c->out();
  EXPECT_EQ(read_model(), expected_model(log));
  ASSERT_TRUE(eventually(
      [&] {
        const auto held = holders(*projections);
        return held.size() == 2 && held.at("runner-b") == 2 && held.at("runner-c") == 2;
      },
      30s))
      << b->out() << c->out();

  // Repartition 4 -> 2: stop the runners, change the count, start two runners (they follow
  // the stored count whatever --partitions says).
  stop_gracefully(*b);
  stop_gracefully(*c);
  ChildProcess change({PROJECTION_TEST_RUNNER_PATH, "--db", test_database_url(), "--owner",
                       "repartitioner", "--name", kProjection, "--repartition", "2"},
                      "repartitioner");
  ASSERT_EQ(change.wait(), 0) << change.out();
  const auto said = change.wait_for_line("repartitioned 4 2 ", 0ms);
  ASSERT_TRUE(said.has_value()) << change.out();
  const auto rows = partitions(*projections);
  ASSERT_EQ(rows.size(), 2U);
  for (const auto& [name, record] : rows) {
    EXPECT_EQ(record.checkpoint.sequence(), head.sequence()) << name;
    EXPECT_FALSE(record.owner.has_value()) << name;
  }
  EXPECT_EQ(annals::projections::stored_partition_count(*projections, kProjection), 2);

  head = write_log(*store, 300, 60, rng, next_stream);
  log = log_through(*store, head);
  ASSERT_EQ(log.size(), 1500U);
  auto d = start_runner("runner-d", {"--partitions", "4"});
  auto e = start_runner("runner-e", {"--partitions", "4"});
  ASSERT_TRUE(eventually([&] { return all_reached(*projections, 2, head); }, 60s))
      << d->out() << e->out();
  EXPECT_EQ(read_model(), expected_model(log));
  stop_gracefully(*d);
  stop_gracefully(*e);
  EXPECT_EQ(read_model(), expected_model(log));
}

}  // namespace
