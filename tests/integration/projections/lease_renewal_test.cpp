// The lease is renewed while a batch runs: a projection whose every batch takes longer than the
// lease's time to live keeps its owner and fencing token, with a second runner standing by and
// ready to take over any lease that lapses: on PostgreSQL (two stores, two runners) and on the
// in-memory stores (one store shared by two runners). Before renewals ran on a thread of their own,
// the lease lapsed in the middle of each batch, the standby took it, the owner's commit was
// refused, and ownership ping-ponged without the checkpoint moving.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/runner.hpp"
#include "eventually.hpp"
#include "read_model_support.hpp"

namespace annals::projections {
namespace {

using annals::testing::eventually;

using namespace std::chrono_literals;
using testing::Admin;
using testing::LambdaReadModel;
using testing::unique_name;

constexpr std::chrono::milliseconds kTtl{300};
// Per event; a batch of kBatchSize events takes twice the lease's time to live.
constexpr std::chrono::milliseconds kWorkPerEvent{150};
constexpr std::size_t kBatchSize = 4;
constexpr int kEvents = 12;

// A read model "<name>_applied (id text primary key, runner text)" whose handler works
// kWorkPerEvent per event (the slow part of a real projection: a remote call, a heavy query).
std::shared_ptr<LambdaReadModel> slow_model(const std::string& name, const std::string& runner,
                                            const std::string& category,
                                            std::atomic<int>& applied) {
  const std::string table = name + "_applied";
  auto model = std::make_shared<LambdaReadModel>(
      name, [table, runner, &applied](const RecordedEvent& e, ReadModel& db) {
        std::this_thread::sleep_for(kWorkPerEvent);
        db.upsert(table, {{"id", e.id.to_string()}}, {{"runner", runner}});
        ++applied;
      });
  model->migrations_ = {
      {"0001_create", "CREATE TABLE " + table + " (id text PRIMARY KEY, runner text NOT NULL)"}};
  model->tables_ = {table};
  model->filter_.category = category;
  return model;
}

RunnerOptions runner_options(const std::string& owner) {
  RunnerOptions options;
  options.owner = owner;
  options.lease_ttl = kTtl;
  options.acquire_interval = 20ms;  // an eager standby: any lapse is taken at once
  options.poll_interval = 50ms;
  return options;
}

TEST(LeaseRenewalTest, BatchesLongerThanTheLeaseKeepTheOwnerAndTheToken) {
  const auto url = annals::testing::test_database_url();
  Admin admin;
  auto events = postgres::make_postgres_event_store({.connection_string = url});
  auto store_a = make_postgres_projection_store({.connection_string = url});
  auto store_b = make_postgres_projection_store({.connection_string = url});
  const auto name = unique_name("slow");
  const auto category = "slow" + testing::random_hex(8);
  Position last;
  for (int i = 0; i < kEvents; ++i) {
    last = events
               ->append(StreamId(category + "-1"), ExpectedVersion::any(),
                        {NewEvent{.type = "Worked", .data = {{"i", i}}}})
               .position;
  }

  std::atomic<int> applied_a{0};
  std::atomic<int> applied_b{0};
  ProjectionOptions projection_options;
  projection_options.batch_size = kBatchSize;
  ProjectionRunner runner_a(*events, *store_a, runner_options("runner-a"));
  runner_a.add(slow_model(name, "runner-a", category, applied_a), projection_options);
  runner_a.start();
  ASSERT_TRUE(eventually([&] { return runner_a.status(name).lease.has_value(); }, 30s));
  const auto token = runner_a.status(name).lease->fencing_token;

  ProjectionRunner runner_b(*events, *store_b, runner_options("runner-b"));
  runner_b.add(slow_model(name, "runner-b", category, applied_b), projection_options);
  runner_b.start();

  // Three batches of 600 ms under a 300 ms lease, the standby polling every 20 ms.
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return store_a->checkpoint(name) >= last; }, 60s))
      << "the checkpoint stopped moving; runner-a applied " << applied_a << ", runner-b "
      << applied_b;
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::cerr << kEvents << " events in batches of " << kBatchSize << " ("
            << (kWorkPerEvent * kBatchSize).count() << " ms each, lease ttl " << kTtl.count()
            << " ms) took " << took.count() << " ms; applied by a " << applied_a << ", by b "
            << applied_b << "\n";

  const auto record = [&] {
    for (const auto& r : store_a->list()) {
      if (r.name == name) return r;
    }
    throw NotFoundError(name);
  }();
  EXPECT_EQ(record.owner, "runner-a");
  EXPECT_EQ(record.fencing_token, token) << "ownership changed hands during the batches";
  EXPECT_EQ(runner_a.status(name).lease->fencing_token, token);
  EXPECT_FALSE(runner_b.status(name).lease.has_value());
  EXPECT_EQ(runner_b.status(name).state, ProjectionState::kStandby);
  EXPECT_EQ(applied_b, 0) << "the standby applied events: it owned the projection at some point";
  EXPECT_EQ(applied_a, kEvents) << "a batch was applied again after a refused commit";
  EXPECT_EQ(admin.value("SELECT count(*) FROM " + name + "_applied WHERE runner = 'runner-a'"),
            std::to_string(kEvents));
  runner_b.stop();
  runner_a.stop();
}

// An in-process projection that works kWorkPerEvent per event and counts what it applied.
class SlowCounter final : public InProcessProjection {
 public:
  explicit SlowCounter(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void handle(const RecordedEvent&) override {
    std::this_thread::sleep_for(kWorkPerEvent);
    ++applied;
  }
  std::atomic<int> applied{0};

 private:
  std::string name_;
};

TEST(LeaseRenewalTest, InMemoryBatchesLongerThanTheLeaseKeepTheOwnerAndTheToken) {
  auto events = make_in_memory_event_store();
  auto store = make_in_memory_projection_store();
  Position last;
  for (int i = 0; i < kEvents; ++i) {
    last = events
               ->append(StreamId("work-1"), ExpectedVersion::any(),
                        {NewEvent{.type = "Worked", .data = {{"i", i}}}})
               .position;
  }
  auto counter_a = std::make_shared<SlowCounter>("slow");
  auto counter_b = std::make_shared<SlowCounter>("slow");
  ProjectionOptions projection_options;
  projection_options.batch_size = kBatchSize;
  ProjectionRunner runner_a(*events, *store, runner_options("runner-a"));
  runner_a.add(counter_a, projection_options);
  runner_a.start();
  ASSERT_TRUE(eventually([&] { return runner_a.status("slow").lease.has_value(); }, 30s));
  const auto token = runner_a.status("slow").lease->fencing_token;
  ProjectionRunner runner_b(*events, *store, runner_options("runner-b"));
  runner_b.add(counter_b, projection_options);
  runner_b.start();

  ASSERT_TRUE(eventually([&] { return store->checkpoint("slow") >= last; }, 60s))
      << "the checkpoint stopped moving; runner-a applied " << counter_a->applied << ", runner-b "
      << counter_b->applied;
  const auto records = store->list();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_EQ(records[0].owner, "runner-a");
  EXPECT_EQ(records[0].fencing_token, token) << "ownership changed hands during the batches";
  EXPECT_EQ(counter_b->applied, 0);
  EXPECT_EQ(counter_a->applied, kEvents);
  runner_b.stop();
  runner_a.stop();
}

}  // namespace
}  // namespace annals::projections
