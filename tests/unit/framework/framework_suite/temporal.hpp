// Part of the framework suite (framework_suite.hpp, which registers every part's tests with
// GoogleTest): temporal loading (load_at_version, load_as_of) and the replay check. Include
// framework_suite.hpp, not this one.
#pragma once

#include <chrono>
#include <iostream>
#include <string>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/framework/snapshot_check.hpp"
#include "fixture.hpp"

namespace framework_suite {

TYPED_TEST_P(FrameworkSuite, LoadAtVersionReturnsThePastState) {
  Repository<Account> accounts(
      this->store(), this->registry(),
      {.snapshots = &this->snapshots(), .snapshot_policy = SnapshotPolicy::every(3)});
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  accounts.save(account);
  for (int i = 1; i <= 5; ++i) {
    account.execute(bank::Deposit{id, i * 10});
    accounts.save(account);
  }
  ASSERT_EQ(this->snapshots().load(this->account_stream(id))->version, 6);
  EXPECT_EQ(accounts.load_at_version(id, 0).state(), Account::State{});
  EXPECT_EQ(accounts.load_at_version(id, 0).version(), 0);
  EXPECT_EQ(accounts.load_at_version(id, 1).state().balance, 0);
  EXPECT_TRUE(accounts.load_at_version(id, 1).state().open);
  EXPECT_EQ(accounts.load_at_version(id, 3).state().balance, 30);  // older than the snapshot
  EXPECT_EQ(accounts.load_at_version(id, 3).version(), 3);
  EXPECT_EQ(accounts.load_at_version(id, 6).state().balance, 150);
  EXPECT_EQ(accounts.load_at_version(id, 99).version(), 6);  // beyond the end: the latest
  EXPECT_THROW((void)accounts.load_at_version(id, -1), annals::InvalidArgumentError);
}

TYPED_TEST_P(FrameworkSuite, LoadAtVersionNeverStartsFromASnapshot) {
  // Temporal views are computed from the events only. A snapshot whose state is
  // wrong (and that the store cannot tell from a good one) changes what load() returns, never
  // what load_at_version returns.
  Repository<Account> accounts(
      this->store(), this->registry(),
      {.snapshots = &this->snapshots(), .snapshot_policy = SnapshotPolicy::every(2)});
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  account.execute(bank::Deposit{id, 10});
  account.execute(bank::Deposit{id, 20});
  accounts.save(account);
  const auto stream = this->account_stream(id);
  ASSERT_EQ(this->snapshots().load(stream)->version, 3);
  this->snapshots().save({.stream_id = stream,
                          .version = 3,
                          .schema_version = 1,
                          .state = Account::State{true, false, "mallory", 1'000'000}});
  ASSERT_EQ(accounts.load(id).state().balance, 1'000'000);  // load() does use it
  EXPECT_EQ(accounts.load_at_version(id, 3).state(), (Account::State{true, false, "ada", 30}));
  EXPECT_EQ(accounts.load_at_version(id, 3).version(), 3);
  EXPECT_EQ(accounts.load_at_version(id, 99).state().balance, 30);
  EXPECT_EQ(accounts.load_at_version(id, 2).state().balance, 10);
  EXPECT_EQ(accounts.load_as_of(id, std::chrono::system_clock::now() + std::chrono::hours(1))
                .state()
                .balance,
            30);
}

TYPED_TEST_P(FrameworkSuite, ReplayCheckReportsASnapshotThatDiffersFromTheEvents) {
  CommandBus bus(this->store(), this->registry(),
                 quick({.snapshots = &this->snapshots(),
                        .snapshot_policy = SnapshotPolicy::every(2),
                        .cache_capacity = 0}));
  wire(bus);
  const auto good = new_id();
  const auto bad = new_id();
  this->open(bus, good, 70);
  this->open(bus, bad, 70);
  const auto bad_stream = this->account_stream(bad);
  ASSERT_EQ(this->snapshots().load(bad_stream)->version, 2);
  // A state the events cannot produce, stored the way a buggy release would store it (so the
  // store's own checks cannot tell it from a good one).
  this->snapshots().save({.stream_id = bad_stream,
                          .version = 2,
                          .schema_version = 1,
                          .state = Account::State{true, false, "ada", 1'000'000}});
  this->wait_settled(this->read(bad_stream).back().position);  // the check lists via read_all

  // docs:begin snapshot-replay-check
  const annals::SnapshotCheckReport report =
      annals::check_snapshots<Account>(this->store(), this->registry(), this->snapshots());
  for (const annals::SnapshotMismatch& m : report.mismatches) {
    std::cout << m.stream.value() << " at version " << m.snapshot_version << ": " << m.problem
              << "\n  snapshot " << m.snapshot_state.dump() << "\n  events   "
              << m.replayed_state.dump() << '\n';
  }
  // docs:end

  EXPECT_EQ(report.category, "account");
  EXPECT_FALSE(report.ok());
  EXPECT_GE(report.streams, 2u);
  EXPECT_GE(report.snapshots, 2u);
  const annals::SnapshotMismatch* found = nullptr;
  for (const auto& m : report.mismatches) {
    EXPECT_NE(m.stream, this->account_stream(good));
    if (m.stream == bad_stream) found = &m;
  }
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->snapshot_version, 2);
  EXPECT_EQ(found->problem, "balance: snapshot 1000000, events 70");
  EXPECT_EQ(found->ignored, annals::SnapshotIgnored::kNone);  // loads would use it
  EXPECT_EQ(found->snapshot_state["balance"], 1'000'000);
  EXPECT_EQ(found->replayed_state, nlohmann::json(Account::State{true, false, "ada", 70}));
}

TYPED_TEST_P(FrameworkSuite, LoadAsOfReturnsTheStateAtARecordedTime) {
  Repository<Account> accounts(this->store(), this->registry());
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  accounts.save(account);
  for (int i = 1; i <= 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // distinct recorded times
    account.execute(bank::Deposit{id, i});
    accounts.save(account);
  }
  const auto stored = this->read(this->account_stream(id));
  ASSERT_EQ(stored.size(), 4u);
  const auto at = [&](std::chrono::system_clock::time_point t) {
    return accounts.load_as_of(id, t);
  };
  EXPECT_EQ(at(stored[0].recorded_at - std::chrono::seconds(1)).version(), 0);
  EXPECT_EQ(at(stored[0].recorded_at).version(), 1);
  EXPECT_EQ(at(stored[2].recorded_at).version(), 3);
  EXPECT_EQ(at(stored[2].recorded_at).state().balance, 3);
  EXPECT_EQ(at(stored[2].recorded_at + std::chrono::microseconds(1)).version(), 3);
  EXPECT_EQ(at(stored[3].recorded_at + std::chrono::hours(1)).state().balance, 6);
}

}  // namespace framework_suite
