// Part of the framework suite (framework_suite.hpp, which registers every part's tests with
// GoogleTest): the repository (load, save with the loaded version as expected version, paged
// replay). Include framework_suite.hpp, not this one.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "fixture.hpp"

namespace framework_suite {

TYPED_TEST_P(FrameworkSuite, RepositoryLoadsAStreamWithoutEventsAsNewAggregate) {
  Repository<Account> accounts(this->store(), this->registry());
  const auto account = accounts.load(new_id());
  EXPECT_EQ(account.version(), 0);
  EXPECT_EQ(account.state(), Account::State{});
  EXPECT_TRUE(account.pending().empty());
}

TYPED_TEST_P(FrameworkSuite, RepositorySavesPendingEventsAndLoadsThemBack) {
  Repository<Account> accounts(this->store(), this->registry());
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  account.execute(bank::Deposit{id, 100});
  EXPECT_EQ(account.pending().size(), 2u);
  EXPECT_EQ(account.state().balance, 100);  // pending events are already applied

  const auto result = accounts.save(account, {.command_id = "cmd-" + id});
  EXPECT_EQ(result.stream_id, this->account_stream(id));
  EXPECT_EQ(result.first_version, 1);
  EXPECT_EQ(result.last_version, 2);
  EXPECT_EQ(account.version(), 2);
  EXPECT_TRUE(account.pending().empty());

  const auto stored = this->read(this->account_stream(id));
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[1].position, result.position);
  EXPECT_EQ(stored[0].type, "AccountOpened");
  EXPECT_EQ(stored[1].data, nlohmann::json({{"amount", 100}}));
  EXPECT_EQ(stored[0].id, annals::derive_event_id("cmd-" + id, 0));
  EXPECT_EQ(stored[1].id, annals::derive_event_id("cmd-" + id, 1));

  const auto loaded = accounts.load(id);
  EXPECT_EQ(loaded.version(), 2);
  EXPECT_EQ(loaded.state(), account.state());
}

TYPED_TEST_P(FrameworkSuite, RepositorySaveUsesTheLoadedVersionAsExpectedVersion) {
  Repository<Account> accounts(this->store(), this->registry());
  const auto id = new_id();
  auto first = accounts.load(id);
  first.execute(bank::OpenAccount{id, "ada"});
  accounts.save(first);

  auto a = accounts.load(id);
  auto b = accounts.load(id);
  a.execute(bank::Deposit{id, 10});
  b.execute(bank::Deposit{id, 20});
  accounts.save(a);
  try {
    accounts.save(b);
    FAIL() << "the second writer must conflict";
  } catch (const annals::ConcurrencyError& e) {
    EXPECT_EQ(e.stream(), this->account_stream(id).value());
    EXPECT_EQ(e.expected(), "1");
    EXPECT_EQ(e.actual(), 2);
  }
  EXPECT_EQ(b.version(), 1);  // unchanged: still pending, still at the loaded version
  EXPECT_EQ(b.pending().size(), 1u);
  EXPECT_EQ(accounts.load(id).state().balance, 10);
}

TYPED_TEST_P(FrameworkSuite, RepositorySaveOfANewAggregateExpectsNoStream) {
  Repository<Account> accounts(this->store(), this->registry());
  const auto id = new_id();
  auto a = accounts.load(id);
  auto b = accounts.load(id);
  a.execute(bank::OpenAccount{id, "ada"});
  b.execute(bank::OpenAccount{id, "bob"});
  accounts.save(a);
  EXPECT_THROW(accounts.save(b), annals::ConcurrencyError);
  EXPECT_EQ(accounts.load(id).state().owner, "ada");
}

TYPED_TEST_P(FrameworkSuite, RepositorySaveWithoutPendingEventsWritesNothing) {
  Repository<Account> accounts(this->store(), this->registry());
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  accounts.save(account);
  const auto result = accounts.save(account);
  EXPECT_EQ(result.first_version, 2);
  EXPECT_EQ(result.last_version, 1);
  EXPECT_EQ(result.position, annals::Position::start());
  EXPECT_EQ(this->read(this->account_stream(id)).size(), 1u);
}

TYPED_TEST_P(FrameworkSuite, RepositoryReplaysLongStreamsPageByPage) {
  Repository<Account> accounts(this->store(), this->registry(), {.read_page_size = 7});
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  for (int i = 1; i <= 30; ++i) account.execute(bank::Deposit{id, i});
  accounts.save(account);
  const auto loaded = accounts.load(id);
  EXPECT_EQ(loaded.version(), 31);
  EXPECT_EQ(loaded.state().balance, 465);
}

}  // namespace framework_suite
