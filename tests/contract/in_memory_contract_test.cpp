// The EventStore contract, run against the in-memory store.
#include <memory>

#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/testkit/event_store_contract.hpp"

namespace {

struct InMemoryStoreFactory {
  static std::unique_ptr<annals::EventStore> make() { return annals::make_in_memory_event_store(); }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, EventStoreContract, InMemoryStoreFactory);
