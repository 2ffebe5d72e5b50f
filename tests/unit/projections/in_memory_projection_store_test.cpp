// The ProjectionStore contract on the in-memory store, plus what only the in-memory store or
// the free functions of projection_store.hpp / projection.hpp promise.
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/testkit/projection_store_contract.hpp"

namespace {

// docs:begin projections-store-contract-factory
struct InMemoryProjectionStoreFactory {
  static std::unique_ptr<annals::projections::ProjectionStore> make() {
    return annals::projections::make_in_memory_projection_store();
  }
};
// docs:end

}  // namespace

// docs:begin projections-store-contract-instantiate
INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, ProjectionStoreContract, InMemoryProjectionStoreFactory);
// docs:end
