// The framework suite and the snapshot store contract on the in-memory stores.
#include <memory>

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

}  // namespace

namespace framework_suite {
INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, FrameworkSuite, InMemoryStores);
}  // namespace framework_suite

namespace annals::testkit {
INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, SnapshotStoreContract, InMemorySnapshots);
}  // namespace annals::testkit
