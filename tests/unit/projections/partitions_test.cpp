// Partitioned projections on the in-memory event and projection stores
// (annals/projections/partitions.hpp, docs/scaling.md "Partitioned projections"): the stream
// hash and row names, two runners sharing four partitions with rebalancing when one joins and
// when one leaves, each stream's events in order and exactly once, repartition() bringing
// partitions at different checkpoints to a common position, rebuild_partitions(), and the
// refusals.
#include "annals/projections/partitions.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "runner_support.hpp"

namespace annals::projections {
namespace {

using std::chrono::milliseconds;
using test::eventually;
using test::Recorder;
using test::Sink;

constexpr milliseconds kTimeout{20'000};

RunnerOptions fast(const std::string& owner) {
  RunnerOptions out;
  out.owner = owner;
  out.lease_ttl = milliseconds(10'000);
  out.acquire_interval = milliseconds(10);
  out.poll_interval = milliseconds(50);
  out.request_interval = milliseconds(50);
  return out;
}

ProjectionOptions partitioned(int count) {
  ProjectionOptions out;
  out.batch_size = 7;
  out.partitions = count;
  return out;
}

// Appends `count` events of one each, round-robin over `streams` streams; the last position.
Position append(EventStore& events, int count, int streams, int& next) {
  Position last;
  for (int i = 0; i < count; ++i) {
    last = events
               .append(StreamId("acct-" + std::to_string(next % streams)), ExpectedVersion::any(),
                       {NewEvent{.type = "Deposited", .data = {{"n", next}}}})
               .position;
    ++next;
  }
  return last;
}

// Every stream's versions as the sink got them: exactly 1..n, in order, is exactly once.
void expect_exact(const Sink& sink, EventStore& events) {
  std::map<std::string, std::vector<std::int64_t>> got;
  for (const auto& event : sink.events()) got[event.stream_id.value()].push_back(event.version);
  std::map<std::string, std::vector<std::int64_t>> want;
  for (const auto& event : events.read_all({.max_count = 100'000})) {
    want[event.stream_id.value()].push_back(event.version);
  }
  EXPECT_EQ(got, want);
}

bool all_at(ProjectionStore& store, const std::string& name, int count, Position head) {
  for (int k = 0; k < count; ++k) {
    try {
      if (store.checkpoint(partition_name(name, k, count)) < head) return false;
    } catch (const NotFoundError&) {
      return false;
    }
  }
  return true;
}

int held(const ProjectionRunner& runner) {
  int n = 0;
  for (const auto& status : runner.status()) n += status.lease ? 1 : 0;
  return n;
}

TEST(PartitionsTest, TheHashIsFnv1a64OfTheStreamIdModuloTheCount) {
  EXPECT_EQ(fnv1a_64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a_64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a_64("foobar"), 0x85944171f73967e8ULL);
  EXPECT_EQ(partition_of("foobar", 4), static_cast<int>(0x85944171f73967e8ULL % 4));
  EXPECT_EQ(partition_of("anything", 1), 0);
  for (const int bad : {0, -1, kMaxPartitions + 1}) {
    EXPECT_THROW(static_cast<void>(partition_of("a", bad)), InvalidArgumentError);
  }
}

TEST(PartitionsTest, RowNamesRoundTripAndOthersAreNotPartitions) {
  EXPECT_EQ(partition_name("balances", 2, 4), "balances.part-2-of-4");
  EXPECT_EQ(seat_name("balances", 0), "balances.runner-0");
  const auto parsed = parse_partition_name("my.view.part-11-of-12");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->projection, "my.view");
  EXPECT_EQ(parsed->index, 11);
  EXPECT_EQ(parsed->count, 12);
  EXPECT_EQ(parse_seat_name("balances.runner-3"), std::optional<std::string>("balances"));
  for (const char* other : {"balances", "balances.part-4-of-4", "balances.part-01-of-4",
                            ".part-0-of-1", "b.part-0-of-", "b.part-x-of-2", "b.runner-"}) {
    EXPECT_FALSE(parse_partition_name(other).has_value()) << other;
  }
  EXPECT_FALSE(parse_seat_name("balances").has_value());
  EXPECT_THROW(static_cast<void>(partition_name("balances", 4, 4)), InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(partition_name("bad name", 0, 4)), InvalidArgumentError);
  EXPECT_THROW(static_cast<void>(partition_name(std::string(95, 'x'), 0, 4)), InvalidArgumentError);
}

// Two runners share 4 partitions 2 and 2; when one stops, the other takes all 4; every stream's
// events arrive once, in order, across the hand-overs.
TEST(PartitionsTest, RunnersShareThePartitionsAndRebalanceWhenOneJoinsOrLeaves) {
  auto events = make_in_memory_event_store();
  auto store = make_in_memory_projection_store();
  const auto sink = std::make_shared<Sink>();
  int next = 0;
  auto head = append(*events, 60, 9, next);

  ProjectionRunner a(*events, *store, fast("runner-a"));
  // docs:begin scaling-partitioned-runner
  ProjectionOptions options;
  options.partitions = 4;  // by FNV-1a 64 of the stream id; the store's count wins later
  a.add(std::make_shared<Recorder>("totals", EventFilter{}, sink), options);
  a.start();  // this runner takes its share: at most ceil(4 / live runners) partitions
  // docs:end
  ASSERT_TRUE(eventually([&] { return held(a) == 4; }, kTimeout));
  ASSERT_TRUE(eventually([&] { return all_at(*store, "totals", 4, head); }, kTimeout));

  auto b = std::make_unique<ProjectionRunner>(*events, *store, fast("runner-b"));
  b->add(std::make_shared<Recorder>("totals", EventFilter{}, sink), partitioned(4));
  b->start();
  ASSERT_TRUE(eventually([&] { return held(a) == 2 && held(*b) == 2; }, kTimeout))
      << held(a) << " and " << held(*b);
  head = append(*events, 60, 9, next);
  ASSERT_TRUE(eventually([&] { return all_at(*store, "totals", 4, head); }, kTimeout));
  expect_exact(*sink, *events);

  b->stop();
  ASSERT_TRUE(eventually([&] { return held(a) == 4; }, kTimeout));
  head = append(*events, 30, 9, next);
  ASSERT_TRUE(eventually([&] { return all_at(*store, "totals", 4, head); }, kTimeout));
  a.stop();
  expect_exact(*sink, *events);
  // The status shows a row per partition.
  EXPECT_EQ(a.status().size(), 4U);
  EXPECT_EQ(a.status().front().name, "totals.part-0-of-4");
}

// Partitions at different checkpoints: repartition() applies each one's events up to the
// highest checkpoint, then places the new partitions there, and a runner finishes exactly.
TEST(PartitionsTest, RepartitionBringsPartitionsToACommonPositionWithoutARebuild) {
  auto events = make_in_memory_event_store();
  auto store = make_in_memory_projection_store();
  const auto sink = std::make_shared<Sink>();
  Recorder projection("totals", EventFilter{}, sink);
  int next = 0;
  const auto middle = append(*events, 40, 7, next);
  const auto head = append(*events, 40, 7, next);
  {
    ProjectionRunner runner(*events, *store, fast("runner-a"));
    runner.add(std::make_shared<Recorder>("totals", EventFilter{}, sink), partitioned(2));
  }
  // Partition 0 applied up to `middle`, partition 1 nothing: as a runner stopped early would
  // leave them.
  const auto part0 = partition_name("totals", 0, 2);
  auto lease = store->try_acquire(part0, "by-hand", milliseconds(10'000));
  ASSERT_TRUE(lease.has_value());
  {
    auto batch = store->begin(*lease, Position::start());
    for (const auto& event : events->read_all({.max_count = 1000})) {
      if (event.position <= middle && partition_of(event.stream_id.value(), 2) == 0) {
        projection.apply(event, *batch);
      }
    }
    batch->commit(middle);
  }
  store->release(*lease);

  // docs:begin scaling-repartition
  // The runners of "totals" are stopped. In one unit of work: 2 partitions out, 3 in, all at
  // the highest old checkpoint (lagging partitions are brought there first).
  const auto done = repartition(*events, *store, projection, 3);
  // docs:end
  EXPECT_EQ(done.from, 2);
  EXPECT_EQ(done.to, 3);
  EXPECT_EQ(done.at, middle);
  EXPECT_EQ(stored_partition_count(*store, "totals"), 3);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(store->checkpoint(partition_name("totals", k, 3)), middle);
  EXPECT_THROW(static_cast<void>(store->checkpoint(part0)), NotFoundError);

  // A runner configured for 2 runs the stored 3.
  ProjectionRunner runner(*events, *store, fast("runner-b"));
  runner.add(std::make_shared<Recorder>("totals", EventFilter{}, sink), partitioned(2));
  runner.start();
  ASSERT_TRUE(eventually([&] { return all_at(*store, "totals", 3, head); }, kTimeout));
  runner.stop();
  expect_exact(*sink, *events);

  // And back to one: the projection's own row runs it again.
  const auto back = repartition(*events, *store, projection, 1);
  EXPECT_EQ(back.from, 3);
  EXPECT_EQ(stored_partition_count(*store, "totals"), 1);
  EXPECT_EQ(store->checkpoint("totals"), back.at);
}

TEST(PartitionsTest, RebuildPartitionsResetsTheModelAndEveryCheckpointAtOnce) {
  auto events = make_in_memory_event_store();
  auto store = make_in_memory_projection_store();
  const auto sink = std::make_shared<Sink>();
  int next = 0;
  const auto head = append(*events, 30, 5, next);
  {
    ProjectionRunner runner(*events, *store, fast("runner-a"));
    runner.add(std::make_shared<Recorder>("totals", EventFilter{}, sink), partitioned(3));
    runner.start();
    ASSERT_TRUE(eventually([&] { return all_at(*store, "totals", 3, head); }, kTimeout));
  }
  Recorder projection("totals", EventFilter{}, sink);
  rebuild_partitions(*store, projection);
  EXPECT_TRUE(sink->events().empty());
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(store->checkpoint(partition_name("totals", k, 3)), Position::start());
  }
  ProjectionRunner runner(*events, *store, fast("runner-b"));
  runner.add(std::make_shared<Recorder>("totals", EventFilter{}, sink), partitioned(3));
  runner.start();
  ASSERT_TRUE(eventually([&] { return all_at(*store, "totals", 3, head); }, kTimeout));
  runner.stop();
  expect_exact(*sink, *events);
}

TEST(PartitionsTest, RefusesWhatWouldApplyEventsTwice) {
  auto events = make_in_memory_event_store();
  auto store = make_in_memory_projection_store();
  int next = 0;
  const auto head = append(*events, 5, 2, next);
  {
    ProjectionRunner runner(*events, *store, fast("runner-a"));
    runner.add(std::make_shared<Recorder>("plain"));
    runner.start();
    ASSERT_TRUE(wait_for_checkpoint(*store, "plain", head, kTimeout));
  }
  // It ran unpartitioned: partitions only through repartition().
  ProjectionRunner late(*events, *store, fast("runner-b"));
  EXPECT_THROW(late.add(std::make_shared<Recorder>("plain"), partitioned(2)), InvalidArgumentError);
  // Reserved row names.
  EXPECT_THROW(late.add(std::make_shared<Recorder>("x.part-0-of-2")), InvalidArgumentError);
  EXPECT_THROW(late.add(std::make_shared<Recorder>("x.runner-0")), InvalidArgumentError);
  EXPECT_THROW(late.add(std::make_shared<Recorder>("y"), partitioned(0)), InvalidArgumentError);

  // A runner still holds a partition: repartition() refuses, naming it, and takes nothing.
  ProjectionRunner running(*events, *store, fast("runner-c"));
  running.add(std::make_shared<Recorder>("split"), partitioned(2));
  running.start();
  ASSERT_TRUE(eventually([&] { return held(running) == 2; }, kTimeout));
  Recorder split("split");
  try {
    static_cast<void>(repartition(*events, *store, split, 4));
    ADD_FAILURE() << "repartition() ran while a runner held the partitions";
  } catch (const UnavailableError& e) {
    EXPECT_NE(std::string(e.what()).find("runner-c"), std::string::npos) << e.what();
  }
  EXPECT_EQ(stored_partition_count(*store, "split"), 2);
  running.stop();
  // A runner that added "plain" before it was partitioned, standing by meanwhile, does not run
  // its own row afterwards: it fails, asking for a restart, and applies nothing.
  const auto stale_sink = std::make_shared<Sink>();
  ProjectionRunner stale(*events, *store, fast("runner-d"));
  stale.add(std::make_shared<Recorder>("plain", EventFilter{}, stale_sink));
  Recorder plain("plain");
  static_cast<void>(repartition(*events, *store, plain, 2));
  stale.start();
  ASSERT_TRUE(eventually([&] { return stale.status("plain").state == ProjectionState::kFailed; },
                         kTimeout));
  EXPECT_NE(stale.status("plain").last_error.value_or("").find("restart"), std::string::npos);
  EXPECT_TRUE(stale_sink->events().empty());
  stale.stop();

  // rebuild_partitions() is for partitioned projections only.
  Recorder single("single");
  store->prepare(single);
  EXPECT_THROW(rebuild_partitions(*store, single), InvalidArgumentError);
}

}  // namespace
}  // namespace annals::projections
