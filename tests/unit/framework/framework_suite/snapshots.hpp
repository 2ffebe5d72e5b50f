// Part of the framework suite (framework_suite.hpp, which registers every part's tests with
// GoogleTest): snapshots (policy, schema and release versions, unreadable or failing snapshot
// stores, a snapshot ahead of its stream). Include framework_suite.hpp, not this one.
#pragma once

#include <algorithm>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "fixture.hpp"

namespace framework_suite {

TYPED_TEST_P(FrameworkSuite, SnapshotIsTakenByPolicyAndLoadIsSnapshotPlusTail) {
  Repository<Account> accounts(
      this->store(), this->registry(),
      {.snapshots = &this->snapshots(), .snapshot_policy = SnapshotPolicy::every(3)});
  const auto id = new_id();
  const auto stream = this->account_stream(id);
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  accounts.save(account);  // version 1: 1 event since none
  EXPECT_EQ(this->snapshots().load(stream), std::nullopt);
  account.execute(bank::Deposit{id, 5});
  account.execute(bank::Deposit{id, 6});
  accounts.save(account);  // version 3: 3 events since none
  const auto snapshot = this->snapshots().load(stream);
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->version, 3);
  EXPECT_EQ(snapshot->schema_version, 1);
  EXPECT_EQ(state_of(*snapshot), account.state());

  account.execute(bank::Deposit{id, 7});
  accounts.save(account);  // version 4: 1 since the snapshot, none taken
  EXPECT_EQ(this->snapshots().load(stream)->version, 3);

  // Prove that load starts from the snapshot: plant a state the events cannot produce.
  this->snapshots().save({.stream_id = stream,
                          .version = 3,
                          .schema_version = 1,
                          .state = Account::State{true, false, "planted", 1000}});
  const auto loaded = accounts.load(id);
  EXPECT_EQ(loaded.version(), 4);
  EXPECT_EQ(loaded.state().owner, "planted");
  EXPECT_EQ(loaded.state().balance, 1007);  // the snapshot plus the tail (event 4)
}

TYPED_TEST_P(FrameworkSuite, SnapshotPolicyPredicateSeesTheAppendedEvents) {
  Repository<Account> accounts(
      this->store(), this->registry(),
      {.snapshots = &this->snapshots(),
       .snapshot_policy = SnapshotPolicy::when([](const annals::SnapshotCandidate& c) {
         return std::any_of(c.appended.begin(), c.appended.end(),
                            [](const annals::NewEvent& e) { return e.type == "AccountClosed"; });
       })});
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  account.execute(bank::Deposit{id, 5});
  accounts.save(account);
  EXPECT_EQ(this->snapshots().load(this->account_stream(id)), std::nullopt);
  account.execute(bank::CloseAccount{id, "moving"});
  accounts.save(account);
  const auto snapshot = this->snapshots().load(this->account_stream(id));
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->version, 4);
  EXPECT_TRUE(state_of(*snapshot).closed);
}

TYPED_TEST_P(FrameworkSuite, SnapshotOfAnotherSchemaVersionIsIgnoredAndReplaced) {
  Repository<Account> accounts(
      this->store(), this->registry(),
      {.snapshots = &this->snapshots(), .snapshot_policy = SnapshotPolicy::every(100)});
  const auto id = new_id();
  const auto stream = this->account_stream(id);
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  account.execute(bank::Deposit{id, 40});
  accounts.save(account);
  // A release with another State layout left this behind.
  this->snapshots().save({.stream_id = stream,
                          .version = 2,
                          .schema_version = 7,
                          .state = {{"totally", "different"}}});

  auto loaded = accounts.load(id);  // no error: ignored
  EXPECT_EQ(loaded.version(), 2);
  EXPECT_EQ(loaded.state().balance, 40);

  loaded.execute(bank::Deposit{id, 2});
  accounts.save(loaded);  // far below every(100), yet the stale snapshot is replaced
  const auto snapshot = this->snapshots().load(stream);
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->schema_version, 1);
  EXPECT_EQ(snapshot->version, 3);
  EXPECT_EQ(state_of(*snapshot).balance, 42);
}

// The next release of Account changed its State's JSON and bumped kSnapshotVersion.
struct AccountNextRelease : Account {
  static constexpr int kSnapshotVersion = 2;
};

TYPED_TEST_P(FrameworkSuite, ReleasesWithDifferentSnapshotVersionsNeverMisreadEachOther) {
  static_assert(annals::detail::snapshot_version<Account>() == 1);
  static_assert(annals::detail::snapshot_version<AccountNextRelease>() == 2);
  const RepositoryOptions every_save{.snapshots = &this->snapshots(),
                                     .snapshot_policy = SnapshotPolicy::every(1)};
  Repository<Account> old_release(this->store(), this->registry(), every_save);
  Repository<AccountNextRelease> new_release(this->store(), this->registry(), every_save);
  const auto id = new_id();
  const auto stream = this->account_stream(id);
  auto account = old_release.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  account.execute(bank::Deposit{id, 8});
  old_release.save(account);
  ASSERT_EQ(this->snapshots().load(stream)->schema_version, 1);

  auto upgraded = new_release.load(id);  // ignores the v1 snapshot, replays
  EXPECT_EQ(upgraded.state().balance, 8);
  upgraded.execute(bank::Deposit{id, 1});
  new_release.save(upgraded);
  EXPECT_EQ(this->snapshots().load(stream)->schema_version, 2);
  EXPECT_EQ(this->snapshots().load(stream)->version, 3);

  // A rollback to the old release ignores the v2 snapshot in turn.
  EXPECT_EQ(old_release.load(id).state().balance, 9);
}

TYPED_TEST_P(FrameworkSuite, UnreadableSnapshotIsIgnoredAndReplaced) {
  Repository<Account> accounts(
      this->store(), this->registry(),
      {.snapshots = &this->snapshots(), .snapshot_policy = SnapshotPolicy::every(100)});
  const auto id = new_id();
  const auto stream = this->account_stream(id);
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  accounts.save(account);
  this->snapshots().save(
      {.stream_id = stream, .version = 1, .schema_version = 1, .state = {{"balance", "NaN"}}});
  auto loaded = accounts.load(id);
  EXPECT_EQ(loaded.state().owner, "ada");
  loaded.execute(bank::Deposit{id, 3});
  accounts.save(loaded);
  EXPECT_EQ(state_of(*this->snapshots().load(stream)).balance, 3);
}

TYPED_TEST_P(FrameworkSuite, SnapshotWriteFailureDoesNotFailTheCommand) {
  FaultInjectingSnapshotStore failing(this->snapshots());
  failing.fail_saves(true);
  CommandBus bus(this->store(), this->registry(),
                 quick({.snapshots = &failing, .snapshot_policy = SnapshotPolicy::every(1)}));
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 10);
  const auto result = bus.send(bank::Withdraw{id, 4});
  EXPECT_EQ(result.last_version, 3);
  EXPECT_GE(failing.save_calls(), 1u);
  EXPECT_EQ(this->snapshots().load(this->account_stream(id)), std::nullopt);

  failing.fail_saves(false);  // the store recovers: snapshots resume
  bus.send(bank::Deposit{id, 1});
  ASSERT_TRUE(this->snapshots().load(this->account_stream(id)).has_value());
  EXPECT_EQ(this->snapshots().load(this->account_stream(id))->version, 4);
}

TYPED_TEST_P(FrameworkSuite, SnapshotLoadFailureFallsBackToReplay) {
  FaultInjectingSnapshotStore failing(this->snapshots());
  Repository<Account> accounts(
      this->store(), this->registry(),
      {.snapshots = &failing, .snapshot_policy = SnapshotPolicy::every(1)});
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  account.execute(bank::Deposit{id, 9});
  accounts.save(account);
  failing.fail_loads(true);
  const auto loaded = accounts.load(id);
  EXPECT_EQ(loaded.version(), 2);
  EXPECT_EQ(loaded.state().balance, 9);
  EXPECT_GE(failing.load_calls(), 1u);
}

TYPED_TEST_P(FrameworkSuite, LosingAllSnapshotsChangesNothingButSpeed) {
  Repository<Account> with_snapshots(
      this->store(), this->registry(),
      {.snapshots = &this->snapshots(), .snapshot_policy = SnapshotPolicy::every(2)});
  Repository<Account> without(this->store(), this->registry());
  const auto id = new_id();
  auto account = with_snapshots.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  with_snapshots.save(account);
  for (int i = 1; i <= 9; ++i) {
    account.execute(bank::Deposit{id, i});
    with_snapshots.save(account);
  }
  ASSERT_TRUE(this->snapshots().load(this->account_stream(id)).has_value());
  const auto expected = without.load(id);
  EXPECT_EQ(with_snapshots.load(id).state(), expected.state());
  this->snapshots().remove(this->account_stream(id));
  const auto after = with_snapshots.load(id);
  EXPECT_EQ(after.state(), expected.state());
  EXPECT_EQ(after.version(), expected.version());
}

TYPED_TEST_P(FrameworkSuite, SnapshotAheadOfItsStreamIsRebuiltByTheBus) {
  CommandBus bus(this->store(), this->registry(),
                 quick({.snapshots = &this->snapshots(),
                        .snapshot_policy = SnapshotPolicy::every(50),
                        .cache_capacity = 0}));
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 10);
  // A snapshot that claims more events than the stream has (kept across a restore).
  this->snapshots().save({.stream_id = this->account_stream(id),
                          .version = 40,
                          .schema_version = 1,
                          .state = Account::State{true, false, "ghost", 999}});
  const auto result = bus.send(bank::Withdraw{id, 3});
  EXPECT_EQ(result.first_version, 3);
  EXPECT_EQ(Repository<Account>(this->store(), this->registry()).load(id).state().balance, 7);
  const auto snapshot = this->snapshots().load(this->account_stream(id));
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->version, 3);  // replaced
  EXPECT_EQ(state_of(*snapshot).balance, 7);
}

}  // namespace framework_suite
