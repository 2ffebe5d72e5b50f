// The ProjectionStore contract on the PostgreSQL store. Every test gets a new store on this
// process's test database (tests/support/test_database.hpp); tests use projection names of
// their own, so they share the database safely.
#include <memory>

#include <gtest/gtest.h>

#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/testkit/projection_store_contract.hpp"
#include "test_database.hpp"

namespace {

struct PostgresProjectionStoreFactory {
  static std::unique_ptr<annals::projections::ProjectionStore> make() {
    return annals::projections::make_postgres_projection_store(
        {.connection_string = annals::testing::test_database_url(), .pool_size = 4});
  }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, ProjectionStoreContract, PostgresProjectionStoreFactory);
