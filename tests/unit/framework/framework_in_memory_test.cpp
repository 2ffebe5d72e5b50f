// The framework suite and the snapshot store contract on the in-memory stores.
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/testkit/snapshot_store_contract.hpp"
#include "framework_suite.hpp"

namespace {

struct InMemoryStores {
  static std::unique_ptr<annals::EventStore> make_store() {
    return annals::make_in_memory_event_store();
  }
  static std::unique_ptr<annals::SnapshotStore> make_snapshots() {
    return annals::make_in_memory_snapshot_store();
  }
};

struct InMemorySnapshots {
  static std::unique_ptr<annals::SnapshotStore> make() {
    return annals::make_in_memory_snapshot_store();
  }
};

// The in-memory store bound to an in-memory event store, like PostgreSQL's.
annals::EventStore& shared_events() {
  static const auto events = annals::make_in_memory_event_store();
  return *events;
}

struct InMemoryBoundSnapshots {
  static std::unique_ptr<annals::SnapshotStore> make() {
    return annals::make_in_memory_snapshot_store(shared_events());
  }
  static void prepare_stream(const annals::StreamId& stream, annals::StreamVersion last) {
    std::vector<annals::NewEvent> events;
    for (annals::StreamVersion v = 1; v <= last; ++v) events.push_back({.type = "filler"});
    (void)shared_events().append(stream, annals::ExpectedVersion::no_stream(), std::move(events));
  }
};

TEST(InMemorySnapshotStoreTest, BoundStoreIgnoresASnapshotWhoseEventIsMissingOrOther) {
  auto events = annals::make_in_memory_event_store();
  auto snapshots = annals::make_in_memory_snapshot_store(*events);
  const annals::StreamId stream("account-1");
  (void)events->append(stream, annals::ExpectedVersion::no_stream(), {{.type = "e"}});
  snapshots->save({.stream_id = stream, .version = 1, .schema_version = 1, .state = 1});
  EXPECT_TRUE(snapshots->lookup(stream).usable());
  // Ahead of the stream: stored, never used, counted.
  snapshots->save({.stream_id = stream, .version = 5, .schema_version = 1, .state = 5});
  const auto ahead = snapshots->lookup(stream);
  EXPECT_EQ(ahead.ignored, annals::SnapshotIgnored::kHistoryDiffers);
  EXPECT_EQ(ahead.snapshot->version, 5);
  EXPECT_EQ(snapshots->load(stream), std::nullopt);
  EXPECT_EQ(snapshots->stats().ignored_history_differs, 2u);
  EXPECT_EQ(snapshots->ignored_snapshots(), 2u);
  // An older snapshot replaces the one that cannot be used.
  snapshots->save({.stream_id = stream, .version = 1, .schema_version = 1, .state = 11});
  EXPECT_EQ(snapshots->load(stream)->state, 11);
  // The unbound store checks nothing and counts nothing.
  EXPECT_EQ(annals::make_in_memory_snapshot_store()->stats(), annals::SnapshotStoreStats{});
}

}  // namespace

namespace framework_suite {
INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, FrameworkSuite, InMemoryStores);
}  // namespace framework_suite

namespace annals::testkit {
INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, SnapshotStoreContract, InMemorySnapshots);
INSTANTIATE_TYPED_TEST_SUITE_P(InMemoryBound, SnapshotStoreContract, InMemoryBoundSnapshots);
}  // namespace annals::testkit
