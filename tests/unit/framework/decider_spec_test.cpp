// The bank account's rules, specified with the test kit's given/when/then, and the kit's own
// failure reports (expected vs actual as JSON, at the caller's line).
#include "annals/testkit/decider_spec.hpp"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "annals/framework/decider.hpp"
#include "bank.hpp"

namespace {

using annals::testkit::given;
using bank::Account;
using bank::AccountClosed;
using bank::AccountOpened;
using bank::MoneyDeposited;
using bank::MoneyWithdrawn;
using ::testing::HasSubstr;

static_assert(annals::Decider<Account>);

// docs:begin bank-specs
TEST(AccountTest, OpensOnce) {
  given<Account>().when(bank::OpenAccount{"42", "ada"}).then(AccountOpened{"ada"});
  given<Account>(AccountOpened{"ada"}).when(bank::OpenAccount{"42", "ada"}).then_nothing();
}

TEST(AccountTest, WithdrawsWhatTheBalanceCovers) {
  given<Account>(AccountOpened{"ada"}, MoneyDeposited{100})
      .when(bank::Withdraw{"42", 30})
      .then(MoneyWithdrawn{30});
}

TEST(AccountTest, RefusesToOverdraw) {
  given<Account>(AccountOpened{"ada"}, MoneyDeposited{100}, MoneyWithdrawn{80})
      .when(bank::Withdraw{"42", 30})
      .then_throws<bank::InsufficientFunds>([](const bank::InsufficientFunds& e) {
        EXPECT_EQ(e.balance(), 20);
        EXPECT_EQ(e.requested(), 30);
      });
}

TEST(AccountTest, ClosingPaysOutTheBalanceFirst) {
  given<Account>(AccountOpened{"ada"}, MoneyDeposited{70})
      .when(bank::CloseAccount{"42", "moving"})
      .then(MoneyWithdrawn{70}, AccountClosed{"moving"});
}
// docs:end

TEST(AccountTest, RefusesCommandsOnAccountsThatAreNotOpen) {
  given<Account>().when(bank::Deposit{"42", 5}).then_throws<bank::AccountNotOpen>();
  given<Account>(AccountOpened{"ada"}, AccountClosed{"x"})
      .when(bank::Withdraw{"42", 1})
      .then_throws<bank::AccountNotOpen>();
  given<Account>(AccountOpened{"ada"}, AccountClosed{"x"})
      .when(bank::CloseAccount{"42", "again"})
      .then_nothing();
}

TEST(AccountTest, RefusesNonPositiveAmounts) {
  given<Account>(AccountOpened{"ada"})
      .when(bank::Deposit{"42", 0})
      .then_throws<bank::InvalidAmount>();
  given<Account>(AccountOpened{"ada"})
      .when(bank::Withdraw{"42", -1})
      .then_throws<bank::InvalidAmount>();
}

TEST(AccountTest, ClosingAnEmptyAccountIsOneEvent) {
  given<Account>(AccountOpened{"ada"})
      .when(bank::CloseAccount{"42", "done"})
      .then_events({AccountClosed{"done"}});
}

TEST(AccountTest, StateAfterTheCommandIsAvailable) {
  const auto state =
      given<Account>(AccountOpened{"ada"}, MoneyDeposited{10}).when(bank::Deposit{"42", 5}).state();
  EXPECT_EQ(state.balance, 15);
  EXPECT_EQ(state.owner, "ada");
}

// --- The kit's failure reports ------------------------------------------------------------

// Runs `spec` and returns the failures it reported, without failing this test.
template <typename F>
std::vector<::testing::TestPartResult> failures_of(F&& spec) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    spec();
  }
  std::vector<::testing::TestPartResult> out;
  for (int i = 0; i < results.size(); ++i) out.push_back(results.GetTestPartResult(i));
  return out;
}

TEST(DeciderSpecTest, WrongEventsShowExpectedAndActualJsonAtTheCallersLine) {
  int line = 0;
  const auto failures = failures_of([&] {
    // clang-format off
    line = __LINE__; given<Account>(AccountOpened{"ada"}, MoneyDeposited{100}).when(bank::Withdraw{"42", 30}).then(MoneyWithdrawn{31});  // NOLINT
    // clang-format on
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].line_number(), line);
  EXPECT_THAT(failures[0].file_name(), HasSubstr("decider_spec_test.cpp"));
  const std::string message = failures[0].message();
  EXPECT_THAT(message, HasSubstr("given 2 event(s), when bank::Withdraw"));
  EXPECT_THAT(
      message,
      HasSubstr("expected (1):\n    1. {\"data\":{\"amount\":31},\"type\":\"MoneyWithdrawn\"}"));
  EXPECT_THAT(
      message,
      HasSubstr("actual (1):\n    1. {\"data\":{\"amount\":30},\"type\":\"MoneyWithdrawn\"}"));
}

TEST(DeciderSpecTest, MultiLineSpecsReportTheThenLine) {
  int line = 0;
  const auto failures = failures_of([&] {
    // clang-format off
    given<Account>(AccountOpened{"ada"})
        .when(bank::CloseAccount{"42", "x"})
        .then(AccountClosed{"y"}); line = __LINE__;  // NOLINT
    // clang-format on
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].line_number(), line);
}

TEST(DeciderSpecTest, ExtraOrMissingEventsAreFailures) {
  const auto failures = failures_of([] {
    given<Account>(AccountOpened{"ada"}, MoneyDeposited{5})
        .when(bank::CloseAccount{"42", "x"})
        .then(AccountClosed{"x"});
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0].message(), HasSubstr("expected (1)"));
  EXPECT_THAT(failures[0].message(), HasSubstr("actual (2)"));
  EXPECT_THAT(failures[0].message(), HasSubstr("\"type\":\"AccountClosed\""));
}

TEST(DeciderSpecTest, AnUnexpectedDomainErrorIsAFailureNamingIt) {
  const auto failures = failures_of([] {
    given<Account>(AccountOpened{"ada"}).when(bank::Withdraw{"42", 1}).then(MoneyWithdrawn{1});
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0].message(), HasSubstr("but decide threw bank::InsufficientFunds"));
}

TEST(DeciderSpecTest, ThenNothingShowsTheEventsThatWereProduced) {
  const auto failures = failures_of([] {
    given<Account>().when(bank::OpenAccount{"42", "ada"}).then_nothing();
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0].message(), HasSubstr("(no events)"));
  EXPECT_THAT(failures[0].message(), HasSubstr("\"owner\":\"ada\""));
}

TEST(DeciderSpecTest, ThenThrowsFailsWhenEventsAreProduced) {
  const auto failures = failures_of([] {
    given<Account>(AccountOpened{"ada"}, MoneyDeposited{50})
        .when(bank::Withdraw{"42", 5})
        .then_throws<bank::InsufficientFunds>();
  });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0].message(), HasSubstr("expected bank::InsufficientFunds to be thrown"));
  EXPECT_THAT(failures[0].message(),
              HasSubstr("{\"data\":{\"amount\":5},\"type\":\"MoneyWithdrawn\"}"));
}

TEST(DeciderSpecTest, ThenThrowsWantsTheExactType) {
  const auto other = failures_of([] {
    given<Account>().when(bank::Withdraw{"42", 5}).then_throws<bank::InsufficientFunds>();
  });
  ASSERT_EQ(other.size(), 1u);
  EXPECT_THAT(other[0].message(), HasSubstr("another exception was thrown: bank::AccountNotOpen"));

  const auto base = failures_of([] {
    given<Account>().when(bank::Withdraw{"42", 5}).then_throws<annals::DomainError>();
  });
  ASSERT_EQ(base.size(), 1u);
  EXPECT_THAT(base[0].message(), HasSubstr("a subclass was thrown: bank::AccountNotOpen"));
}

// An event whose JSON conversion forgets a field: equal in memory, different once stored.
struct Lossy {
  static constexpr std::string_view kTypeName = "Lossy";
  static constexpr int kSchemaVersion = 1;
  int kept = 0;
  int forgotten = 0;
  friend bool operator==(const Lossy&, const Lossy&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Lossy, kept)

struct Poke {
  int value = 0;
};

struct Sloppy {
  struct State {};
  using Event = std::variant<Lossy>;
  static constexpr std::string_view kCategory = "sloppy";
  static State evolve(State s, const Lossy&) { return s; }
  static Lossy decide(const State&, const Poke& p) { return Lossy{p.value, p.value}; }
};

TEST(DeciderSpecTest, AnEventThatDoesNotSurviveJsonIsAFailure) {
  const auto failures = failures_of([] { given<Sloppy>().when(Poke{3}).then(Lossy{3, 3}); });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_THAT(failures[0].message(), HasSubstr("does not survive a JSON round trip"));
}

// A decider with an event but no evolve for it: not a Decider (the framework's static_assert
// names the event; see the compile-failure test in CMakeLists.txt).
struct MissingEvolve {
  struct State {};
  using Event = std::variant<bank::AccountOpened, bank::MoneyDeposited>;
  static constexpr std::string_view kCategory = "broken";
  static State evolve(State s, const bank::AccountOpened&) { return s; }
};
static_assert(!annals::Decider<MissingEvolve>);
static_assert(!annals::Decider<int>);

}  // namespace
