// The wallet's rules as given/when/then: past events, a command, the exact outcome. No store.
// docs:begin quickstart-specs
#include <gtest/gtest.h>

#include <annals/testkit/decider_spec.hpp>

#include "wallet.hpp"

namespace {

using annals::testkit::given;
using wallet::Deposit;
using wallet::Deposited;
using wallet::Wallet;

TEST(WalletTest, DepositsAPositiveAmount) {
  given<Wallet>().when(Deposit{"ada", 2'500}).then(Deposited{2'500});
  given<Wallet>(Deposited{2'500}).when(Deposit{"ada", 1'000}).then(Deposited{1'000});
}

TEST(WalletTest, RefusesANonPositiveAmount) {
  given<Wallet>().when(Deposit{"ada", 0}).then_throws<wallet::InvalidAmount>();
  given<Wallet>().when(Deposit{"ada", -5}).then_throws<wallet::InvalidAmount>();
}

TEST(WalletTest, RefusesToGoPastTheLimit) {
  given<Wallet>(Deposited{999'000})
      .when(Deposit{"ada", 2'000})
      .then_throws<wallet::LimitExceeded>(
          [](const wallet::LimitExceeded& e) { EXPECT_EQ(e.balance(), 999'000); });
  given<Wallet>(Deposited{999'000}).when(Deposit{"ada", 1'000}).then(Deposited{1'000});
}

}  // namespace
// docs:end
