// The bank sample's Account decider, rule by rule (given/when/then; no store, no server).
#include <gtest/gtest.h>

#include "account.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/testkit/decider_spec.hpp"

namespace {

using annals::testkit::given;
using bank::Account;
using bank::AccountClosed;
using bank::AccountOpened;
using bank::MoneyDeposited;
using bank::MoneyWithdrawn;

// docs:begin bank-sample-specs
TEST(BankAccountTest, OpensForAnOwner) {
  given<Account>().when(bank::OpenAccount{"a1", "Ada"}).then(AccountOpened{"Ada"});
}

TEST(BankAccountTest, RefusesToOpenTwice) {
  given<Account>(AccountOpened{"Ada"})
      .when(bank::OpenAccount{"a1", "Ada"})
      .then_throws<bank::AccountAlreadyExists>();
  given<Account>(AccountOpened{"Ada"}, AccountClosed{})
      .when(bank::OpenAccount{"a1", "Grace"})
      .then_throws<bank::AccountAlreadyExists>();
}

TEST(BankAccountTest, WithdrawsWhatTheBalanceCovers) {
  given<Account>(AccountOpened{"Ada"}, MoneyDeposited{100})
      .when(bank::Withdraw{"a1", 100})
      .then(MoneyWithdrawn{100});
}

TEST(BankAccountTest, RefusesToOverdraw) {
  given<Account>(AccountOpened{"Ada"}, MoneyDeposited{100}, MoneyWithdrawn{80})
      .when(bank::Withdraw{"a1", 21})
      .then_throws<bank::InsufficientFunds>([](const bank::InsufficientFunds& e) {
        EXPECT_EQ(e.balance(), 20);
        EXPECT_EQ(e.requested(), 21);
      });
}

TEST(BankAccountTest, ClosesOnlyAtZeroBalance) {
  given<Account>(AccountOpened{"Ada"}, MoneyDeposited{70})
      .when(bank::CloseAccount{"a1"})
      .then_throws<bank::BalanceNotZero>(
          [](const bank::BalanceNotZero& e) { EXPECT_EQ(e.balance(), 70); });
  given<Account>(AccountOpened{"Ada"}, MoneyDeposited{70}, MoneyWithdrawn{70})
      .when(bank::CloseAccount{"a1"})
      .then(AccountClosed{});
}
// docs:end

TEST(BankAccountTest, DepositsPositiveAmounts) {
  given<Account>(AccountOpened{"Ada"}).when(bank::Deposit{"a1", 1}).then(MoneyDeposited{1});
  given<Account>(AccountOpened{"Ada"})
      .when(bank::Deposit{"a1", bank::kMaxAmount})
      .then(MoneyDeposited{bank::kMaxAmount});
}

TEST(BankAccountTest, RefusesAmountsOutsideTheLimits) {
  for (const std::int64_t amount : {std::int64_t{0}, std::int64_t{-5}, bank::kMaxAmount + 1}) {
    given<Account>(AccountOpened{"Ada"})
        .when(bank::Deposit{"a1", amount})
        .then_throws<bank::InvalidAmount>(
            [&](const bank::InvalidAmount& e) { EXPECT_EQ(e.amount(), amount); });
    given<Account>(AccountOpened{"Ada"}, MoneyDeposited{500})
        .when(bank::Withdraw{"a1", amount})
        .then_throws<bank::InvalidAmount>();
  }
}

TEST(BankAccountTest, RefusesABalanceAboveTheLimit) {
  std::vector<Account::Event> history{AccountOpened{"Ada"}};
  for (std::int64_t total = 0; total < bank::kMaxBalance; total += bank::kMaxAmount) {
    history.emplace_back(MoneyDeposited{bank::kMaxAmount});
  }
  const annals::testkit::DeciderSpec<Account> spec(history);
  spec.when(bank::Deposit{"a1", 1})
      .then_throws<bank::BalanceLimitExceeded>([](const bank::BalanceLimitExceeded& e) {
        EXPECT_EQ(e.balance(), bank::kMaxBalance);
        EXPECT_EQ(e.requested(), 1);
      });
}

TEST(BankAccountTest, RefusesCommandsOnAnUnknownAccount) {
  given<Account>().when(bank::Deposit{"a1", 5}).then_throws<bank::AccountNotFound>();
  given<Account>().when(bank::Withdraw{"a1", 5}).then_throws<bank::AccountNotFound>();
  given<Account>().when(bank::CloseAccount{"a1"}).then_throws<bank::AccountNotFound>();
}

TEST(BankAccountTest, RefusesCommandsOnAClosedAccount) {
  const auto closed = given<Account>(AccountOpened{"Ada"}, AccountClosed{});
  closed.when(bank::Deposit{"a1", 5}).then_throws<bank::AccountIsClosed>();
  closed.when(bank::Withdraw{"a1", 5}).then_throws<bank::AccountIsClosed>();
  closed.when(bank::CloseAccount{"a1"}).then_throws<bank::AccountIsClosed>();
}

TEST(BankAccountTest, RefusesBadOwners) {
  given<Account>().when(bank::OpenAccount{"a1", ""}).then_throws<bank::InvalidOwner>();
  given<Account>()
      .when(bank::OpenAccount{"a1", std::string(bank::kMaxOwnerBytes + 1, 'x')})
      .then_throws<bank::InvalidOwner>();
  given<Account>().when(bank::OpenAccount{"a1", "Ada\nLovelace"}).then_throws<bank::InvalidOwner>();
}

TEST(BankAccountTest, KeepsUnicodeOwnersAsTheyAre) {
  given<Account>().when(bank::OpenAccount{"a1", "Zoë 李 🏦"}).then(AccountOpened{"Zoë 李 🏦"});
}

TEST(BankAccountTest, FoldsTheBalance) {
  const auto state = given<Account>(AccountOpened{"Ada"}, MoneyDeposited{100}, MoneyWithdrawn{30})
                         .when(bank::Deposit{"a1", 5})
                         .state();
  EXPECT_EQ(state, (Account::State{Account::Status::kOpen, "Ada", 75}));
}

TEST(BankAccountTest, AcceptsOnlyUrlSafeAccountIds) {
  EXPECT_TRUE(bank::is_valid_account_id("a1"));
  EXPECT_TRUE(bank::is_valid_account_id("0190f1b2-7c1e-7d2a-9b1e-1f2e3d4c5b6a"));
  EXPECT_TRUE(bank::is_valid_account_id(std::string(bank::kMaxAccountIdBytes, 'x')));
  EXPECT_FALSE(bank::is_valid_account_id(""));
  EXPECT_FALSE(bank::is_valid_account_id(std::string(bank::kMaxAccountIdBytes + 1, 'x')));
  EXPECT_FALSE(bank::is_valid_account_id("a/1"));
  EXPECT_FALSE(bank::is_valid_account_id("a 1"));
  EXPECT_FALSE(bank::is_valid_account_id("zoë"));
}

TEST(BankAccountTest, RegistersEveryEventUnderAStableName) {
  annals::EventRegistry registry;
  bank::register_events(registry);
  registry.validate();
  for (const char* name :
       {"bank.AccountOpened", "bank.MoneyDeposited", "bank.MoneyWithdrawn", "bank.AccountClosed"}) {
    const auto info = registry.find(name);
    ASSERT_TRUE(info.has_value()) << name;
  }
  const auto closed = registry.encode(AccountClosed{});
  EXPECT_EQ(closed.data, nlohmann::json::object());
  EXPECT_EQ(closed.schema_version, 1);
}

TEST(BankAccountTest, SnapshotsTheStateAsJson) {
  const Account::State state{Account::Status::kClosed, "Ada", 0};
  const nlohmann::json json = state;
  EXPECT_EQ(json, (nlohmann::json{{"status", "closed"}, {"owner", "Ada"}, {"balance", 0}}));
  EXPECT_EQ(json.get<Account::State>(), state);
}

}  // namespace
