// The read model given/when/then (annals::testkit::ReadModelSpec): given events, when the
// projection runs on the real PostgreSQL stores (its tables in a scratch schema of their own),
// then its rows. Skipped without ANNALS_DATABASE_URL (the database it names is migrated).
// docs:begin quickstart-projection-spec
#include <cstdlib>

#include <gtest/gtest.h>

#include <annals/framework/event_registry.hpp>
#include <annals/postgres/postgres_event_store.hpp>
#include <annals/testkit/read_model_spec.hpp>

#include "wallet.hpp"
#include "wallet_balances.hpp"

namespace {

TEST(WalletBalancesSpec, SumsEachWalletsDeposits) {
  const char* url = std::getenv("ANNALS_DATABASE_URL");
  if (url == nullptr || *url == '\0') GTEST_SKIP() << "set ANNALS_DATABASE_URL to run this test";
  (void)annals::postgres::migrate(url);  // the spec needs the annals schema
  annals::EventRegistry registry;
  registry.register_events<wallet::Wallet>();
  wallet::WalletBalances balances(registry);

  annals::testkit::ReadModelSpec(registry, url)
      .given("wallet-ada", wallet::Deposited{.amount = 2'500})
      .given("wallet-ada", wallet::Deposited{.amount = 1'000})
      .given("wallet-grace", wallet::Deposited{.amount = 700})
      .when(balances)
      .then_rows("SELECT wallet_id, balance, deposits FROM wallet_balances ORDER BY wallet_id",
                 {{{"wallet_id", "ada"}, {"balance", 3'500}, {"deposits", 2}},
                  {{"wallet_id", "grace"}, {"balance", 700}, {"deposits", 1}}});
}

}  // namespace
// docs:end
