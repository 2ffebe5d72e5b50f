// Blue/green rebuilds (rebuild_blue_green, sql/0016): the new generation is built beside the
// live one, a reader querying in a loop throughout always sees complete data, the projection's
// runner carries on in the new generation, and a second rebuild drops the first generation.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/partitions.hpp"
#include "annals/projections/postgres/blue_green.hpp"
#include "annals/projections/postgres/inline_projections.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/runner.hpp"
#include "read_model_support.hpp"
#include "test_database.hpp"

namespace annals::projections {
namespace {

using testing::Admin;
using testing::deposited;
using testing::random_hex;

// Balance and number of deposits per account.
class Totals final : public ReadModelProjection {
 public:
  explicit Totals(std::string category)
      : category_(std::move(category)), table_(category_ + "_totals") {}

  std::string name() const override { return "totals_" + category_; }
  EventFilter filter() const override { return {.category = category_, .event_types = {}}; }
  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create", "CREATE TABLE " + table_ +
                                " (account_id text PRIMARY KEY, balance bigint NOT NULL DEFAULT 0,"
                                "  deposits bigint NOT NULL DEFAULT 0)"}};
  }
  std::vector<std::string> tables() const override { return {table_}; }
  void handle(const RecordedEvent& e, ReadModel& db) override {
    const Columns key = {{"account_id", e.stream_id.value()}};
    db.increment(table_, key, "balance", e.data.at("amount").get<std::int64_t>());
    db.increment(table_, key, "deposits", 1);
  }
  const std::string& table() const { return table_; }

 private:
  std::string category_;
  std::string table_;
};

class BlueGreenRebuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = annals::testing::test_database_url();
    events_ = postgres::make_postgres_event_store({.connection_string = url_});
    store_ = make_postgres_projection_store({.connection_string = url_});
    category_ = "bg" + random_hex(10);
    totals_ = std::make_shared<Totals>(category_);
  }

  StreamId account(int n) const { return StreamId(category_ + "-" + std::to_string(n)); }

  // "<accounts>/<sum of balances>/<sum of deposits>", as a reader of the table sees it.
  std::string snapshot(Admin& admin) {
    return admin.value(
        "SELECT count(*) || '/' || coalesce(sum(balance), 0) || '/' ||"
        " coalesce(sum(deposits), 0) FROM " +
        totals_->table());
  }

  std::string relkind() {
    return admin_.value("SELECT relkind::text FROM pg_class WHERE oid = to_regclass('" +
                        totals_->table() + "')");
  }

  std::string url_;
  std::unique_ptr<EventStore> events_;
  std::unique_ptr<ProjectionStore> store_;
  std::string category_;
  std::shared_ptr<Totals> totals_;
  Admin admin_;
};

TEST_F(BlueGreenRebuildTest, ReadersSeeCompleteDataThroughoutAndTheRunnerCarriesOn) {
  std::int64_t sum = 0;
  for (int a = 0; a < 40; ++a) {
    std::vector<NewEvent> batch;
    for (int i = 1; i <= 10; ++i) {
      batch.push_back(deposited(a + i));
      sum += a + i;
    }
    events_->append(account(a), ExpectedVersion::no_stream(), std::move(batch));
  }
  const std::string complete = "40/" + std::to_string(sum) + "/400";
  ProjectionRunner runner(*events_, *store_, {.owner = "blue-green-test"});
  runner.add(totals_);
  runner.start();
  ASSERT_TRUE(runner.wait_for(totals_->name(), admin_.committed_head(), std::chrono::minutes(1)));
  ASSERT_EQ(snapshot(admin_), complete);
  ASSERT_EQ(relkind(), "r");

  // A reader querying in a loop, on its own connection, during the whole rebuild.
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> reads_after{0};
  std::vector<std::string> incomplete;
  std::thread reader([&] {
    Admin own;
    while (!done) {
      try {
        const auto seen = snapshot(own);
        if (seen != complete) incomplete.push_back(seen);
      } catch (const std::exception& e) {
        incomplete.push_back(std::string("error: ") + e.what());
      }
      ++reads;
    }
  });
  const auto result = rebuild_blue_green(*events_, *store_, std::make_shared<Totals>(category_),
                                         {.connection_string = url_, .batch_size = 50});
  // Some reads after the switch too (the reader runs freely; this only waits for it).
  const int at_switch = reads.load();
  while (reads.load() < at_switch + 5) std::this_thread::yield();
  done = true;
  reader.join();
  EXPECT_GT(at_switch, 0);
  std::cout << "[ figures  ] blue/green: " << at_switch << " reads during the rebuild, "
            << reads.load() - at_switch << " after the switch, " << incomplete.size()
            << " incomplete\n";
  EXPECT_TRUE(incomplete.empty()) << incomplete.size() << " incomplete reads, e.g. "
                                  << (incomplete.empty() ? "" : incomplete.front());

  // Readers now query a view on the new generation's table; the generation's row is gone.
  EXPECT_EQ(relkind(), "v");
  EXPECT_EQ(admin_.value("SELECT read_schema FROM annals.projections WHERE name = '" +
                         totals_->name() + "'"),
            result.schema);
  EXPECT_EQ(admin_.value("SELECT count(*) FROM annals.projections WHERE name = '" +
                         totals_->name() + ".g1'"),
            "0");
  EXPECT_EQ(store_->checkpoint(totals_->name()), result.checkpoint);

  // The live runner carries on in the new generation, inline appends too.
  events_->append(account(0), ExpectedVersion::exact(10), {deposited(1000)});
  auto inline_store = make_inline_projections_store(*events_, *store_, {totals_},
                                                    {.connection_string = url_, .pool_size = 2});
  inline_store->append(account(100), ExpectedVersion::no_stream(), {deposited(7)});
  const std::string later = "41/" + std::to_string(sum + 1007) + "/402";
  EXPECT_EQ(admin_.value("SELECT balance FROM " + result.schema + "." + totals_->table() +
                         " WHERE account_id = '" + account(100).value() + "'"),
            "7")
      << "the inline append did not reach the new generation";
  ASSERT_TRUE(runner.wait_for(totals_->name(), admin_.committed_head(), std::chrono::minutes(1)));
  EXPECT_EQ(snapshot(admin_), later);

  // A second rebuild: generation 2, and generation 1's schema is dropped.
  const auto second = rebuild_blue_green(*events_, *store_, std::make_shared<Totals>(category_),
                                         {.connection_string = url_});
  EXPECT_NE(second.schema, result.schema);
  EXPECT_EQ(
      admin_.value("SELECT count(*) FROM pg_namespace WHERE nspname = '" + result.schema + "'"),
      "0");
  ASSERT_TRUE(runner.wait_for(totals_->name(), admin_.committed_head(), std::chrono::minutes(1)));
  EXPECT_EQ(snapshot(admin_), later);
  runner.stop();
}

// A batch of the live projection that began before the switch cannot commit after it, even when
// the new generation's checkpoint equals the one the batch began at: it read the inline list
// before the switch emptied it, so it could skip events that inline appends applied only to the
// dropped tables (the race behind the next test, which failed about once in six runs before the
// switch raised the fencing token).
TEST_F(BlueGreenRebuildTest, ABatchBegunBeforeTheSwitchCannotCommitAfterIt) {
  events_->append(account(0), ExpectedVersion::no_stream(), {deposited(5), deposited(7)});
  {
    ProjectionRunner runner(*events_, *store_, {.owner = "blue-green-test"});
    runner.add(totals_);
    runner.start();
    ASSERT_TRUE(runner.wait_for(totals_->name(), admin_.committed_head(), std::chrono::minutes(1)));
    runner.stop();
  }
  const auto checkpoint = store_->checkpoint(totals_->name());
  const auto lease =
      store_->try_acquire(totals_->name(), "owner-before-the-switch", std::chrono::minutes(1));
  ASSERT_TRUE(lease.has_value());
  auto batch = store_->begin(*lease, checkpoint);

  const auto result = rebuild_blue_green(*events_, *store_, std::make_shared<Totals>(category_),
                                         {.connection_string = url_});
  ASSERT_EQ(result.checkpoint, checkpoint);  // the same checkpoint: only the token tells
  EXPECT_THROW(batch->commit(checkpoint), OwnershipLostError);
  EXPECT_EQ(store_->checkpoint(totals_->name()), checkpoint);
  EXPECT_EQ(snapshot(admin_), "1/12/2");
}

// Plain and inline appends keep coming during the rebuild and the switch: afterwards every
// event is counted exactly once in the new generation. Not deterministic (the appends race the
// switch); it failed about once in six runs before the switch raised the fencing token, and
// passed 40 runs in a row after.
TEST_F(BlueGreenRebuildTest, AppendsDuringTheRebuildAreAppliedExactlyOnce) {
  for (int a = 0; a < 20; ++a) {
    std::vector<NewEvent> batch;
    for (int i = 1; i <= 50; ++i) batch.push_back(deposited(i));
    events_->append(account(a), ExpectedVersion::no_stream(), std::move(batch));
  }
  ProjectionRunner runner(*events_, *store_, {.owner = "blue-green-test"});
  runner.add(totals_);
  runner.start();
  ASSERT_TRUE(runner.wait_for(totals_->name(), admin_.committed_head(), std::chrono::minutes(1)));
  auto inline_store = make_inline_projections_store(*events_, *store_, {totals_},
                                                    {.connection_string = url_, .pool_size = 2});
  std::atomic<bool> done{false};
  std::atomic<int> appended{0};
  std::thread writer([&] {
    for (int i = 0; !done || i < 25; ++i) {
      auto& store = i % 2 == 0 ? *events_ : *inline_store;
      store.append(account(i % 25), ExpectedVersion::any(), {deposited(i)});
      ++appended;
    }
  });
  const auto result = rebuild_blue_green(*events_, *store_, std::make_shared<Totals>(category_),
                                         {.connection_string = url_, .batch_size = 20});
  done = true;
  writer.join();
  ASSERT_TRUE(runner.wait_for(totals_->name(), admin_.committed_head(), std::chrono::minutes(1)));
  runner.stop();
  std::int64_t balance = 0;
  std::int64_t count = 0;
  ReadAllOptions options;
  options.filter.category = category_;
  options.max_count = 100000;
  // Every appended event, once the log has settled up to the last one (bounded).
  const auto last = admin_.committed_head();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  auto events = events_->read_all(options);
  while ((events.empty() || events.back().position < last) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    events = events_->read_all(options);
  }
  for (const auto& e : events) {
    balance += e.data.at("amount").get<std::int64_t>();
    ++count;
  }
  std::cout << "[ figures  ] blue/green: " << appended.load()
            << " appends during the rebuild (half of them inline)\n";
  EXPECT_EQ(count, 1000 + appended.load());
  EXPECT_EQ(snapshot(admin_), "25/" + std::to_string(balance) + "/" + std::to_string(count));
  EXPECT_EQ(admin_.value("SELECT count(*) FROM " + result.schema + "." + totals_->table()), "25");
}

TEST_F(BlueGreenRebuildTest, RefusesQualifiedTablesAndUnknownProjections) {
  EXPECT_THROW(static_cast<void>(
                   rebuild_blue_green(*events_, *store_, totals_, {.connection_string = url_})),
               NotFoundError);
  auto qualified = std::make_shared<testing::LambdaReadModel>(
      "q_" + category_, [](const RecordedEvent&, ReadModel&) {});
  qualified->tables_ = {"public.t_" + category_};
  store_->prepare(*qualified);
  EXPECT_THROW(static_cast<void>(
                   rebuild_blue_green(*events_, *store_, qualified, {.connection_string = url_})),
               InvalidArgumentError);
}

// A partitioned projection's progress is in its partitions, which the switch would not carry:
// refused, nothing built (docs/scaling.md, "Partitioned projections").
TEST_F(BlueGreenRebuildTest, RefusesAPartitionedProjection) {
  {
    ProjectionRunner runner(*events_, *store_, {.owner = "bg-partitions"});
    runner.add(totals_, {.partitions = 2});  // registers the projection and its partitions
  }
  EXPECT_EQ(stored_partition_count(*store_, totals_->name()), 2);
  EXPECT_THROW(static_cast<void>(
                   rebuild_blue_green(*events_, *store_, totals_, {.connection_string = url_})),
               InvalidArgumentError);
  for (const auto& record : store_->list()) {
    EXPECT_NE(record.name, totals_->name() + ".g1");
  }
}

}  // namespace
}  // namespace annals::projections
