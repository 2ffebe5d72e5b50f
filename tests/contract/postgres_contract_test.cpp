// The EventStore contract, run against the PostgreSQL store on a private test database.
#include <memory>

#include "annals/postgres/postgres_event_store.hpp"
#include "annals/testkit/event_store_contract.hpp"
#include "test_database.hpp"

namespace {

struct PostgresStoreFactory {
  static std::unique_ptr<annals::EventStore> make() {
    return annals::postgres::make_postgres_event_store(
        {.connection_string = annals::testing::test_database_url(), .pool_size = 8});
  }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, EventStoreContract, PostgresStoreFactory);
