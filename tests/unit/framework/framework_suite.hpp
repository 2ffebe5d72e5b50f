// The framework's behaviour on a real store: repository, snapshots, temporal loading, command
// bus (conflict retries, idempotent commands, metadata, cache) and upcasting of stored events.
// One typed suite, instantiated on the in-memory stores (unit/framework) and on PostgreSQL
// (integration/framework): a behaviour that passes on one and fails on the other is a bug.
//
// A Factory provides:
//   static std::unique_ptr<annals::EventStore> make_store();
//   static std::unique_ptr<annals::SnapshotStore> make_snapshots();
// Stores may share data between tests; every test uses aggregate ids of its own.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/metadata.hpp"
#include "annals/framework/repository.hpp"
#include "annals/framework/snapshot_check.hpp"
#include "annals/testkit/fault_injection.hpp"
#include "annals/testkit/printers.hpp"
#include "bank.hpp"
#include "wallet.hpp"

namespace framework_suite {

using annals::AppendResult;
using annals::CommandBus;
using annals::CommandBusOptions;
using annals::CommandContext;
using annals::Repository;
using annals::RepositoryOptions;
using annals::SnapshotPolicy;
using annals::StreamId;
using annals::testkit::FaultInjectingEventStore;
using annals::testkit::FaultInjectingSnapshotStore;
using bank::Account;

inline std::string new_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 16; ++i) id.push_back(kDigits[rng() % 16]);
  return id;
}

/// Routes the bank's four commands to Account.
inline void wire(CommandBus& bus) {
  bus.handle<Account>(&bank::OpenAccount::account_id);
  bus.handle<Account>(&bank::Deposit::account_id);
  bus.handle<Account>(&bank::Withdraw::account_id);
  bus.handle<Account>(&bank::CloseAccount::account_id);
}

/// The state a snapshot holds.
inline Account::State state_of(const annals::Snapshot& snapshot) {
  return snapshot.state.get<Account::State>();
}

/// Bus options for tests: no waiting between retries.
inline CommandBusOptions quick(CommandBusOptions options = {}) {
  options.retry_backoff = std::chrono::milliseconds(0);
  return options;
}

/// bank::Account under another category, counting its decisions: a re-sent command must not
/// be decided again. Tests reset `decisions` first; a test binary runs one test at a
/// time.
struct CountedAccount {
  using State = Account::State;
  using Event = Account::Event;
  static constexpr std::string_view kCategory = "counted";
  static inline std::atomic<int> decisions{0};

  template <typename E>
  static State evolve(State state, const E& event) {
    return Account::evolve(std::move(state), event);
  }
  template <typename C>
  static auto decide(const State& state, const C& command) {
    ++decisions;
    return Account::decide(state, command);
  }
};

/// Deposit and Withdraw as FingerprintedCommands (a stable name and a JSON form), decided by
/// bank::Account under the category "printed" (a reused command id).
struct PrintedDeposit {
  static constexpr std::string_view kCommandName = "test.Deposit";
  std::string account_id;
  std::int64_t amount = 0;
};
struct PrintedWithdraw {
  static constexpr std::string_view kCommandName = "test.Withdraw";
  std::string account_id;
  std::int64_t amount = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PrintedDeposit, account_id, amount)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PrintedWithdraw, account_id, amount)
static_assert(annals::FingerprintedCommand<PrintedDeposit>);
static_assert(!annals::FingerprintedCommand<bank::Deposit>);

struct PrintedAccount {
  using State = Account::State;
  using Event = Account::Event;
  static constexpr std::string_view kCategory = "printed";
  template <typename E>
  static State evolve(State state, const E& event) {
    return Account::evolve(std::move(state), event);
  }
  static auto decide(const State& state, const bank::OpenAccount& command) {
    return Account::decide(state, command);
  }
  static auto decide(const State& state, const PrintedDeposit& command) {
    return Account::decide(state, bank::Deposit{command.account_id, command.amount});
  }
  static auto decide(const State& state, const PrintedWithdraw& command) {
    return Account::decide(state, bank::Withdraw{command.account_id, command.amount});
  }
};

inline void wire_printed(CommandBus& bus) {
  bus.handle<PrintedAccount>(&bank::OpenAccount::account_id);
  bus.handle<PrintedAccount>(&PrintedDeposit::account_id);
  bus.handle<PrintedAccount>(&PrintedWithdraw::account_id);
}

inline void wire_counted(CommandBus& bus) {
  bus.handle<CountedAccount>(&bank::OpenAccount::account_id);
  bus.handle<CountedAccount>(&bank::Deposit::account_id);
  bus.handle<CountedAccount>(&bank::Withdraw::account_id);
  bus.handle<CountedAccount>(&bank::CloseAccount::account_id);
}

template <typename Factory>
class FrameworkSuite : public ::testing::Test {
 protected:
  FrameworkSuite() : store_(Factory::make_store()), snapshots_(Factory::make_snapshots()) {
    registry_.register_events<Account>();
  }

  annals::EventStore& store() { return *store_; }
  annals::SnapshotStore& snapshots() { return *snapshots_; }
  const annals::EventRegistry& registry() const { return registry_; }

  static StreamId account_stream(const std::string& id) { return StreamId("account-" + id); }

  std::vector<annals::RecordedEvent> read(const StreamId& stream) {
    return store().read_stream(stream, {});
  }

  /// Opens account `id` and deposits `amount` (if > 0) through `bus`.
  static void open(CommandBus& bus, const std::string& id, std::int64_t amount) {
    bus.send(bank::OpenAccount{id, "ada"});
    if (amount > 0) bus.send(bank::Deposit{id, amount});
  }

  /// Waits (bounded) until the global log is settled up to `position`, so that read_all shows
  /// every event up to it (a writing transaction still running anywhere in the cluster holds
  /// readers back: ARCHITECTURE decision 5).
  void wait_settled(const annals::Position& position) {
    const auto signal = store().watch();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      const auto token = signal->observe();
      if (!(store().head_position() < position)) return;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the log did not settle up to " << position.to_string();
        return;
      }
      signal->wait(token, std::chrono::milliseconds(200));
    }
  }

  /// A raw event of the bank, as the bus would store it (for injected concurrent writers).
  annals::NewEvent raw(const Account::Event& event) const { return registry_.encode(event); }

 private:
  std::unique_ptr<annals::EventStore> store_;
  std::unique_ptr<annals::SnapshotStore> snapshots_;
  annals::EventRegistry registry_;
};

TYPED_TEST_SUITE_P(FrameworkSuite);

// ---- Repository ---------------------------------------------------------------------------

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

// ---- Snapshots ----------------------------------------------------------------------------

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

// ---- Temporal loading ---------------------------------------------------------------------

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

// ---- Command bus --------------------------------------------------------------------------

TYPED_TEST_P(FrameworkSuite, BusSendsCommandsAndReturnsTheAppendResult) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  const auto opened = bus.send(bank::OpenAccount{id, "ada"});
  EXPECT_EQ(opened.first_version, 1);
  EXPECT_EQ(opened.last_version, 1);
  bus.send(bank::Deposit{id, 30});
  const auto closed = bus.send(bank::CloseAccount{id, "moving"});  // two events
  EXPECT_EQ(closed.first_version, 3);
  EXPECT_EQ(closed.last_version, 4);
  const auto stored = this->read(this->account_stream(id));
  ASSERT_EQ(stored.size(), 4u);
  EXPECT_EQ(stored[3].position, closed.position);
  EXPECT_EQ(stored[2].type, "MoneyWithdrawn");
  EXPECT_EQ(stored[3].type, "AccountClosed");
}

TYPED_TEST_P(FrameworkSuite, BusNoOpCommandWritesNothing) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  bus.send(bank::OpenAccount{id, "ada"});
  const auto again = bus.send(bank::OpenAccount{id, "ada"});  // already open: no events
  EXPECT_EQ(again.first_version, 2);
  EXPECT_EQ(again.last_version, 1);
  EXPECT_EQ(again.position, annals::Position::start());
  EXPECT_EQ(this->read(this->account_stream(id)).size(), 1u);
}

TYPED_TEST_P(FrameworkSuite, BusCarriesCommandMetadataIntoEveryEvent) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  bus.send(bank::OpenAccount{id, "ada"});
  bus.send(bank::Deposit{id, 5});
  const CommandContext context{
      .command_id = "close-" + id,
      .correlation_id = "checkout-77",
      .causation_id = "",
      .actor = "alice",
      .extra = {{"traceparent", "00-4bf92f35-00f067aa-01"}, {"tenant", {{"id", 7}}}}};
  bus.send(bank::CloseAccount{id, "moving"}, context);
  const auto stored = this->read(this->account_stream(id));
  ASSERT_EQ(stored.size(), 4u);
  for (std::size_t k = 2; k < 4; ++k) {
    const auto meta = annals::EventMetadata::of(stored[k]);
    EXPECT_EQ(meta.command_id, "close-" + id);
    EXPECT_EQ(meta.correlation_id, "checkout-77");
    EXPECT_EQ(meta.causation_id, "close-" + id);  // the command caused it
    EXPECT_EQ(meta.actor, "alice");
    EXPECT_EQ(meta.recorded_at, stored[k].recorded_at);
    EXPECT_EQ(meta.extra, nlohmann::json({{"traceparent", "00-4bf92f35-00f067aa-01"},
                                          {"tenant", {{"id", 7}}}}));
    EXPECT_EQ(stored[k].id, annals::derive_event_id("close-" + id, k - 2));
  }
  // Without ids in the context, the command id is generated and both ids default to it.
  const auto first = annals::EventMetadata::of(stored[0]);
  EXPECT_FALSE(first.command_id.empty());
  EXPECT_EQ(first.correlation_id, first.command_id);
  EXPECT_EQ(first.causation_id, first.command_id);
  EXPECT_TRUE(first.actor.empty());
}

TYPED_TEST_P(FrameworkSuite, BusRefusesReservedMetadataKeysBeforeDeciding) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  EXPECT_THROW(bus.send(bank::OpenAccount{id, "ada"}, {.extra = {{"command_id", "x"}}}),
               annals::InvalidArgumentError);
  EXPECT_THROW(bus.send(bank::OpenAccount{id, "ada"}, {.extra = nlohmann::json::array()}),
               annals::InvalidArgumentError);
  EXPECT_TRUE(this->read(this->account_stream(id)).empty());
}

TYPED_TEST_P(FrameworkSuite, BusRetriesAConflictByReloadingAndDecidingAgain) {
  FaultInjectingEventStore store(this->store());
  CommandBus bus(store, this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  const auto stream = this->account_stream(id);
  this->open(bus, id, 100);
  // Another writer withdraws 50 just before our append: our decision on balance 100 conflicts.
  store.inject_concurrent_append(stream, {this->raw(bank::MoneyWithdrawn{50})});
  const auto appends_before = store.append_calls();
  const auto result = bus.send(bank::Withdraw{id, 30});
  EXPECT_EQ(store.append_calls() - appends_before, 2u);  // conflict, then success
  EXPECT_EQ(result.first_version, 4);                    // after the other writer's event
  EXPECT_EQ(Repository<Account>(this->store(), this->registry()).load(id).state().balance, 20);
}

TYPED_TEST_P(FrameworkSuite, BusRedecidesOnTheReloadedStateAfterAConflict) {
  FaultInjectingEventStore store(this->store());
  CommandBus bus(store, this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 100);
  // The other writer takes 80: deciding again on the stored state refuses our withdrawal.
  store.inject_concurrent_append(this->account_stream(id), {this->raw(bank::MoneyWithdrawn{80})});
  try {
    bus.send(bank::Withdraw{id, 30});
    FAIL() << "expected InsufficientFunds";
  } catch (const bank::InsufficientFunds& e) {
    EXPECT_EQ(e.balance(), 20);
    EXPECT_EQ(e.requested(), 30);
  }
  EXPECT_EQ(this->read(this->account_stream(id)).size(), 3u);
}

TYPED_TEST_P(FrameworkSuite, BusGivesUpAfterMaxAttempts) {
  FaultInjectingEventStore store(this->store());
  CommandBus bus(store, this->registry(), quick({.max_attempts = 3}));
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 100);
  for (int i = 0; i < 3; ++i) {
    store.inject_concurrent_append(this->account_stream(id), {this->raw(bank::MoneyDeposited{1})});
  }
  const auto appends_before = store.append_calls();
  EXPECT_THROW(bus.send(bank::Withdraw{id, 30}), annals::ConcurrencyError);
  EXPECT_EQ(store.append_calls() - appends_before, 3u);
  EXPECT_EQ(Repository<Account>(this->store(), this->registry()).load(id).state().balance, 103);
}

TYPED_TEST_P(FrameworkSuite, BusNeverRetriesADomainError) {
  FaultInjectingEventStore store(this->store());
  CommandBus bus(store, this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 10);
  const auto appends_before = store.append_calls();
  EXPECT_THROW(bus.send(bank::Withdraw{id, 30}), bank::InsufficientFunds);
  EXPECT_THROW(bus.send(bank::Deposit{id, -5}), bank::InvalidAmount);
  EXPECT_EQ(store.append_calls(), appends_before);  // nothing appended, nothing retried
}

TYPED_TEST_P(FrameworkSuite, BusRetriesAnUnavailableStoreWithTheSameEvents) {
  FaultInjectingEventStore store(this->store());
  CommandBus bus(store, this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 10);
  // The first append is written but its answer is lost; the second is refused outright.
  store.fail_next_appends(1, FaultInjectingEventStore::Failure::kOutcomeUnknownWritten);
  store.fail_next_appends(1, FaultInjectingEventStore::Failure::kUnavailable);
  const auto result = bus.send(bank::Withdraw{id, 4}, {.command_id = "w-" + id});
  EXPECT_EQ(result.first_version, 3);
  EXPECT_EQ(result.last_version, 3);
  const auto stored = this->read(this->account_stream(id));
  ASSERT_EQ(stored.size(), 3u);  // written once
  EXPECT_EQ(stored[2].position, result.position);
}

TYPED_TEST_P(FrameworkSuite, ResentCommandReturnsTheOriginalResult) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 100);
  const CommandContext context{.command_id = "withdraw-all-" + id};
  const auto original = bus.send(bank::Withdraw{id, 100}, context);
  // Deciding again would now refuse (balance 0); the re-send is recognised instead.
  EXPECT_EQ(bus.send(bank::Withdraw{id, 100}, context), original);
  // Also by a bus that never saw it (another process, an empty cache).
  CommandBus other(this->store(), this->registry(), quick({.cache_capacity = 0}));
  wire(other);
  EXPECT_EQ(other.send(bank::Withdraw{id, 100}, context), original);
  EXPECT_EQ(this->read(this->account_stream(id)).size(), 3u);
}

TYPED_TEST_P(FrameworkSuite, ResentCommandIsRecognisedAfterLaterCommands) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 100);
  const CommandContext withdraw{.command_id = "withdraw-" + id};
  const auto original = bus.send(bank::Withdraw{id, 30}, withdraw);
  bus.send(bank::Deposit{id, 5});
  bus.send(bank::Withdraw{id, 10});
  EXPECT_EQ(bus.send(bank::Withdraw{id, 30}, withdraw), original);

  const CommandContext close{.command_id = "close-" + id};
  const auto closed = bus.send(bank::CloseAccount{id, "moving"}, close);  // two events
  ASSERT_EQ(closed.last_version - closed.first_version, 1);
  // Deciding again on a closed account is a no-op; the original (both events) comes back.
  EXPECT_EQ(bus.send(bank::CloseAccount{id, "moving"}, close), closed);
  EXPECT_EQ(this->read(this->account_stream(id)).size(), 7u);
}

TYPED_TEST_P(FrameworkSuite, ResentCommandIsNotDecidedAgain) {
  annals::testkit::FaultInjectingEventStore store(this->store());
  CommandBus bus(store, this->registry(), quick());
  wire_counted(bus);
  const auto id = new_id();
  bus.send(bank::OpenAccount{id, "ada"});
  bus.send(bank::Deposit{id, 100});
  const CommandContext context{.command_id = "withdraw-" + id};
  CountedAccount::decisions = 0;
  const auto original = bus.send(bank::Withdraw{id, 40}, context);
  EXPECT_EQ(CountedAccount::decisions.load(), 1);

  // The cached aggregate saw the command: no decision and no round trip.
  const auto appends = store.append_calls();
  const auto reads = store.read_stream_calls();
  EXPECT_EQ(bus.send(bank::Withdraw{id, 40}, context), original);
  EXPECT_EQ(store.append_calls(), appends);
  EXPECT_EQ(store.read_stream_calls(), reads);

  // A bus without that cache (another process) loads the stream, which shows the command.
  CommandBus other(store, this->registry(), quick({.cache_capacity = 0}));
  wire_counted(other);
  EXPECT_EQ(other.send(bank::Withdraw{id, 40}, context), original);
  EXPECT_EQ(store.append_calls(), appends);
  EXPECT_EQ(CountedAccount::decisions.load(), 1);
  EXPECT_EQ(this->read(StreamId("counted-" + id)).size(), 3u);
}

TYPED_TEST_P(FrameworkSuite, ResentCommandIsNotDecidedAgainAfterLaterCommands) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire_counted(bus);
  const auto id = new_id();
  bus.send(bank::OpenAccount{id, "ada"});
  bus.send(bank::Deposit{id, 100});
  const CommandContext close{.command_id = "close-" + id};
  const CommandContext withdraw{.command_id = "withdraw-" + id};
  CountedAccount::decisions = 0;
  const auto withdrawn = bus.send(bank::Withdraw{id, 100}, withdraw);
  for (int i = 0; i < 5; ++i) bus.send(bank::Deposit{id, 1});
  bus.send(bank::Withdraw{id, 4});
  const auto closed = bus.send(bank::CloseAccount{id, "moving"}, close);  // two events
  ASSERT_EQ(closed.last_version - closed.first_version, 1);
  const int decided = CountedAccount::decisions.load();  // 1 + 5 + 1 + 1
  EXPECT_EQ(decided, 8);

  // Deciding the withdrawal again would now throw (closed, no funds): the original comes back.
  EXPECT_EQ(bus.send(bank::Withdraw{id, 100}, withdraw), withdrawn);
  EXPECT_EQ(bus.send(bank::CloseAccount{id, "moving"}, close), closed);
  CommandBus other(this->store(), this->registry(), quick({.cache_capacity = 0}));
  wire_counted(other);
  EXPECT_EQ(other.send(bank::Withdraw{id, 100}, withdraw), withdrawn);
  EXPECT_EQ(other.send(bank::CloseAccount{id, "moving"}, close), closed);
  EXPECT_EQ(CountedAccount::decisions.load(), decided);
  EXPECT_EQ(this->read(StreamId("counted-" + id)).size(), 11u);
}

TYPED_TEST_P(FrameworkSuite, ResentCommandIsNotDecidedAgainAfterASnapshotLoad) {
  annals::testkit::FaultInjectingEventStore store(this->store());
  const auto snapshotting = [&](std::size_t cache) {
    auto bus = std::make_unique<CommandBus>(store, this->registry(),
                                            quick({.snapshots = &this->snapshots(),
                                                   .snapshot_policy = SnapshotPolicy::every(2),
                                                   .cache_capacity = cache}));
    wire_counted(*bus);
    return bus;
  };
  auto bus = snapshotting(0);
  const auto id = new_id();
  const StreamId stream("counted-" + id);
  bus->send(bank::OpenAccount{id, "ada"});
  bus->send(bank::Deposit{id, 100});  // snapshot at 2
  const CommandContext withdraw{.command_id = "withdraw-" + id};
  CountedAccount::decisions = 0;
  const auto original = bus->send(bank::Withdraw{id, 100}, withdraw);
  bus->send(bank::Deposit{id, 7});  // snapshot at 4: the withdrawal is before it
  ASSERT_EQ(this->snapshots().load(stream)->version, 4);
  EXPECT_EQ(CountedAccount::decisions.load(), 2);

  // Loaded from the snapshot, the tail is empty: the bus reads back once and finds the
  // withdrawal there, instead of deciding it again (which would throw: balance 7).
  for (const std::size_t cache : {std::size_t{0}, std::size_t{16}}) {
    auto fresh = snapshotting(cache);
    const auto reads = store.read_stream_calls();
    EXPECT_EQ(fresh->send(bank::Withdraw{id, 100}, withdraw), original);
    EXPECT_EQ(store.read_stream_calls() - reads, 2u);  // the (empty) tail and the read back
  }
  EXPECT_EQ(CountedAccount::decisions.load(), 2);

  // A new command with an id of its own pays the read back once per load, then runs as usual.
  auto cached = snapshotting(16);
  const auto reads = store.read_stream_calls();
  const auto deposited = cached->send(bank::Deposit{id, 1}, {.command_id = "deposit-" + id});
  EXPECT_EQ(store.read_stream_calls() - reads, 2u);
  EXPECT_EQ(deposited.first_version, 5);
  EXPECT_EQ(cached->send(bank::Deposit{id, 1}, {.command_id = "deposit2-" + id}).first_version, 6);
  EXPECT_EQ(cached->send(bank::Withdraw{id, 100}, withdraw), original);
  EXPECT_EQ(store.read_stream_calls() - reads, 2u);  // the cached aggregate reads nothing more
  EXPECT_EQ(CountedAccount::decisions.load(), 4);
  EXPECT_EQ(this->read(stream).size(), 6u);
}

TYPED_TEST_P(FrameworkSuite, ResentCommandOlderThanTheWindowStillGetsTheOriginalResult) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire_counted(bus);
  const auto id = new_id();
  bus.send(bank::OpenAccount{id, "ada"});
  const CommandContext withdraw{.command_id = "withdraw-" + id};
  bus.send(bank::Deposit{id, 100});
  const auto original = bus.send(bank::Withdraw{id, 100}, withdraw);
  const auto window = static_cast<int>(annals::detail::RecentCommands::kCapacity);
  for (int i = 0; i < window + 2; ++i) bus.send(bank::Deposit{id, 1});
  // Forgotten by the aggregate: decided again, refused (balance 34), and then looked up in
  // the store.
  EXPECT_EQ(bus.send(bank::Withdraw{id, 100}, withdraw), original);
  CommandBus other(this->store(), this->registry(), quick({.cache_capacity = 0}));
  wire_counted(other);
  EXPECT_EQ(other.send(bank::Withdraw{id, 100}, withdraw), original);
  // Decided again and accepted: the store recognises the event ids.
  const CommandContext small{.command_id = "small-" + id};
  const auto small_original = bus.send(bank::Withdraw{id, 1}, small);
  for (int i = 0; i < window + 2; ++i) bus.send(bank::Deposit{id, 1});
  EXPECT_EQ(bus.send(bank::Withdraw{id, 1}, small), small_original);
  EXPECT_EQ(other.send(bank::Withdraw{id, 1}, small), small_original);
  EXPECT_EQ(this->read(StreamId("counted-" + id)).size(), static_cast<std::size_t>(2 * window + 8));
}

TYPED_TEST_P(FrameworkSuite, DomainErrorOnAFullyKnownStreamNeedsNoLookUp) {
  annals::testkit::FaultInjectingEventStore store(this->store());
  CommandBus bus(store, this->registry(), quick({.cache_capacity = 0}));
  wire_counted(bus);
  const auto id = new_id();
  bus.send(bank::OpenAccount{id, "ada"});
  const auto appends = store.append_calls();
  const auto reads = store.read_stream_calls();
  EXPECT_THROW(bus.send(bank::Withdraw{id, 5}, {.command_id = "w-" + id}), bank::InsufficientFunds);
  EXPECT_EQ(store.append_calls(), appends);          // no look-up append
  EXPECT_EQ(store.read_stream_calls() - reads, 1u);  // the load
}

TYPED_TEST_P(FrameworkSuite, RepositoryRecognisesResendsWithFewerOrMoreEvents) {
  Repository<Account> accounts(this->store(), this->registry());
  const auto id = new_id();
  auto account = accounts.load(id);
  account.execute(bank::OpenAccount{id, "ada"});
  accounts.save(account);

  // The original decision had two events; deciding again now yields one.
  account.record({bank::MoneyDeposited{1}, bank::MoneyDeposited{2}});
  const auto two = accounts.save(account, {.command_id = "two-" + id});
  auto again = accounts.load(id);
  again.record({bank::MoneyDeposited{5}});
  EXPECT_EQ(accounts.save(again, {.command_id = "two-" + id}), two);
  EXPECT_EQ(again.version(), 3);  // reloaded
  EXPECT_TRUE(again.pending().empty());

  // The original had one; deciding again yields three.
  again.record({bank::MoneyDeposited{10}});
  const auto one = accounts.save(again, {.command_id = "one-" + id});
  auto third = accounts.load(id);
  third.record({bank::MoneyDeposited{7}, bank::MoneyDeposited{8}, bank::MoneyDeposited{9}});
  EXPECT_EQ(accounts.save(third, {.command_id = "one-" + id}), one);
  EXPECT_EQ(accounts.load(id).state().balance, 13);
  EXPECT_EQ(this->read(this->account_stream(id)).size(), 4u);
}

TYPED_TEST_P(FrameworkSuite, CommandIdReusedForAnotherAggregateIsAnIdempotencyError) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire(bus);
  const auto a = new_id();
  const auto b = new_id();
  bus.send(bank::OpenAccount{a, "ada"}, {.command_id = "open-" + a});
  EXPECT_THROW(bus.send(bank::OpenAccount{b, "bob"}, {.command_id = "open-" + a}),
               annals::IdempotencyError);
  EXPECT_TRUE(this->read(this->account_stream(b)).empty());
}

// A command id reused for a different command (other fields, or another command type) of a
// FingerprintedCommand is refused, by a bus that has the aggregate cached and by one that
// loads it; the same command re-sent still gets its original result.
TYPED_TEST_P(FrameworkSuite, CommandIdReusedForADifferentCommandIsAnIdempotencyError) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire_printed(bus);
  CommandBus other(this->store(), this->registry(), quick({.cache_capacity = 0}));
  wire_printed(other);
  const auto id = new_id();
  const StreamId stream("printed-" + id);
  bus.send(bank::OpenAccount{id, "ada"});
  const CommandContext context{.command_id = "deposit-" + id};
  const auto original = bus.send(PrintedDeposit{id, 10}, context);
  EXPECT_EQ(annals::EventMetadata::of(this->read(stream).back()).fingerprint,
            annals::command_fingerprint("test.Deposit", {{"account_id", id}, {"amount", 10}}));

  EXPECT_EQ(bus.send(PrintedDeposit{id, 10}, context), original);
  EXPECT_EQ(other.send(PrintedDeposit{id, 10}, context), original);
  for (auto* b : {&bus, &other}) {
    try {
      b->send(PrintedDeposit{id, 20}, context);
      ADD_FAILURE() << "expected IdempotencyError";
    } catch (const annals::IdempotencyError& e) {
      EXPECT_NE(std::string(e.what()).find("deposit-" + id), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("different command"), std::string::npos) << e.what();
    }
    EXPECT_THROW(b->send(PrintedWithdraw{id, 10}, context), annals::IdempotencyError);
  }
  EXPECT_EQ(this->read(stream).size(), 2u);
}

// The same when the original is older than the aggregate's window of recent commands: the
// command is decided again, the store recognises its ids, and the fingerprints differ.
TYPED_TEST_P(FrameworkSuite, CommandIdReusedForADifferentOldCommandIsAnIdempotencyError) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire_printed(bus);
  const auto id = new_id();
  const StreamId stream("printed-" + id);
  bus.send(bank::OpenAccount{id, "ada"});
  const CommandContext context{.command_id = "deposit-" + id};
  const auto original = bus.send(PrintedDeposit{id, 10}, context);
  const auto window = static_cast<int>(annals::detail::RecentCommands::kCapacity);
  for (int i = 0; i < window + 2; ++i) bus.send(PrintedDeposit{id, 1});
  EXPECT_THROW(bus.send(PrintedDeposit{id, 20}, context), annals::IdempotencyError);
  EXPECT_EQ(bus.send(PrintedDeposit{id, 10}, context), original);
  EXPECT_EQ(this->read(stream).size(), static_cast<std::size_t>(window + 4));
}

// A command type that is not a FingerprintedCommand keeps working as before: its re-sends are
// recognised by command id alone (so a reused id returns the first command's result).
TYPED_TEST_P(FrameworkSuite, CommandWithoutAFingerprintIsRecognisedByItsIdAlone) {
  CommandBus bus(this->store(), this->registry(), quick());
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 0);
  const CommandContext context{.command_id = "deposit-" + id};
  const auto original = bus.send(bank::Deposit{id, 10}, context);
  EXPECT_EQ(bus.send(bank::Deposit{id, 10}, context), original);
  EXPECT_EQ(bus.send(bank::Deposit{id, 20}, context), original);
  EXPECT_TRUE(
      annals::EventMetadata::of(this->read(this->account_stream(id)).back()).fingerprint.empty());
}

TYPED_TEST_P(FrameworkSuite, CachedStateIsConfirmedBeforeADomainErrorIsReported) {
  CommandBus a(this->store(), this->registry(), quick());
  CommandBus b(this->store(), this->registry(), quick());
  wire(a);
  wire(b);
  const auto id = new_id();
  this->open(a, id, 100);  // `a` caches the account at balance 100
  b.send(bank::Deposit{id, 50});
  const auto result = a.send(bank::Withdraw{id, 120});  // 100 says no; the stored 150 says yes
  EXPECT_EQ(result.first_version, 4);
  EXPECT_EQ(Repository<Account>(this->store(), this->registry()).load(id).state().balance, 30);
}

TYPED_TEST_P(FrameworkSuite, StaleCacheConflictsThenSucceeds) {
  FaultInjectingEventStore store(this->store());
  CommandBus a(store, this->registry(), quick());
  CommandBus b(this->store(), this->registry(), quick());
  wire(a);
  wire(b);
  const auto id = new_id();
  this->open(a, id, 100);
  b.send(bank::Withdraw{id, 60});
  const auto before = store.append_calls();
  const auto result = a.send(bank::Withdraw{id, 30});
  EXPECT_EQ(store.append_calls() - before, 2u);
  EXPECT_EQ(result.first_version, 4);
  EXPECT_EQ(Repository<Account>(this->store(), this->registry()).load(id).state().balance, 10);
}

TYPED_TEST_P(FrameworkSuite, ConcurrentSendersOnOneAggregateAllSucceed) {
  CommandBus bus(this->store(), this->registry(),
                 quick({.max_attempts = 200,
                        .retry_backoff = std::chrono::milliseconds(1),
                        .max_retry_backoff = std::chrono::milliseconds(5)}));
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 0);
  constexpr int kThreads = 6;
  constexpr int kEach = 10;
  std::vector<std::thread> senders;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        try {
          bus.send(bank::Deposit{id, 1});
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(failures.load(), 0);
  const auto loaded = Repository<Account>(this->store(), this->registry()).load(id);
  EXPECT_EQ(loaded.state().balance, kThreads * kEach);
  EXPECT_EQ(loaded.version(), 1 + kThreads * kEach);
}

TYPED_TEST_P(FrameworkSuite, BusTakesSnapshotsByPerTypePolicy) {
  CommandBus bus(this->store(), this->registry(), quick({.snapshots = &this->snapshots()}));
  bus.configure<Account>(
      {.snapshots = &this->snapshots(), .snapshot_policy = SnapshotPolicy::every(4)});
  wire(bus);
  const auto id = new_id();
  this->open(bus, id, 1);
  bus.send(bank::Deposit{id, 1});
  EXPECT_EQ(this->snapshots().load(this->account_stream(id)), std::nullopt);
  bus.send(bank::Deposit{id, 1});
  const auto snapshot = this->snapshots().load(this->account_stream(id));
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->version, 4);
  EXPECT_EQ(state_of(*snapshot).balance, 3);
}

// ---- Upcasting stored events --------------------------------------------------------------

TYPED_TEST_P(FrameworkSuite, OldEventsAreReadAsTheCurrentSchema) {
  annals::EventRegistry registry;
  wallet::register_wallet(registry);
  const auto id = new_id();
  const StreamId stream("wallet-" + id);
  // As older releases wrote them: v1 and v2, under old names, one to be split.
  this->store().append(stream, annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletOpenedWithFunds", 1, {{"owner", "ann"}, {"initial", 5}}),
                        wallet::raw("FundsAdded", 1, {{"amount", 3}}),
                        wallet::raw("FundsAdded", 2, {{"amount_cents", 250}})});
  // And what this release writes (v3).
  Repository<wallet::Wallet> wallets(this->store(), registry);
  auto w = wallets.load(id);
  w.execute(wallet::Credit{id, 100});
  wallets.save(w);

  const auto stored = this->read(stream);
  ASSERT_EQ(stored.size(), 4u);
  EXPECT_EQ(stored[0].type, "WalletOpenedWithFunds");  // never rewritten
  EXPECT_EQ(stored[0].schema_version, 1);
  using V = wallet::Wallet::Event;
  EXPECT_EQ(registry.decode<V>(stored[0]), (std::vector<V>{wallet::WalletCreated{"ann", "EUR"},
                                                           wallet::WalletCredited{500, "EUR"}}));
  EXPECT_EQ(registry.decode<V>(stored[1]), (std::vector<V>{wallet::WalletCredited{300, "EUR"}}));
  EXPECT_EQ(registry.decode<V>(stored[2]), (std::vector<V>{wallet::WalletCredited{250, "EUR"}}));
  EXPECT_EQ(registry.decode<V>(stored[3]), (std::vector<V>{wallet::WalletCredited{100, "EUR"}}));
  EXPECT_EQ(stored[3].type, "WalletCredited");
  EXPECT_EQ(stored[3].schema_version, 3);

  const auto loaded = wallets.load(id);
  EXPECT_EQ(loaded.version(), 4);
  EXPECT_EQ(loaded.state(), (wallet::Wallet::State{"ann", "EUR", 1150, 4}));
  // Metadata passes through upcasting untouched.
  EXPECT_EQ(annals::EventMetadata::of(stored[1]).extra,
            nlohmann::json({{"traceparent", "00-old-release-01"}}));
}

TYPED_TEST_P(FrameworkSuite, EveryOldVersionOfOneTypeReachesTheCurrentOne) {
  annals::EventRegistry registry;
  wallet::register_wallet(registry);
  const auto b = new_id();
  const auto c = new_id();
  this->store().append(StreamId("wallet-" + b), annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletCreated", 1, {{"owner", "bob"}})});
  this->store().append(StreamId("wallet-" + c), annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletCreated", 2, {{"owner", "cy"}, {"currency", "USD"}})});
  Repository<wallet::Wallet> wallets(this->store(), registry);
  EXPECT_EQ(wallets.load(b).state(), (wallet::Wallet::State{"bob", "EUR", 0, 0}));
  EXPECT_EQ(wallets.load(c).state(), (wallet::Wallet::State{"cy", "USD", 0, 0}));
  const auto upcast = registry.upcast_event(this->read(StreamId("wallet-" + b))[0]);
  EXPECT_EQ(upcast, (std::vector<annals::UpcastEvent>{
                        {"WalletCreated", 3, {{"owner_name", "bob"}, {"currency", "EUR"}}}}));
}

TYPED_TEST_P(FrameworkSuite, UnknownStoredTypeIsATypedErrorNamingTypeStreamAndVersion) {
  annals::EventRegistry registry;
  wallet::register_wallet(registry);
  const auto id = new_id();
  const StreamId stream("wallet-" + id);
  this->store().append(stream, annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletCreated", 3, {{"owner_name", "d"}, {"currency", "EUR"}}),
                        wallet::raw("WalletFrozen", 1, {{"why", "audit"}})});
  Repository<wallet::Wallet> wallets(this->store(), registry);
  try {
    (void)wallets.load(id);
    FAIL() << "expected UnknownEventTypeError";
  } catch (const annals::UnknownEventTypeError& e) {
    EXPECT_EQ(e.code(), annals::ErrorCode::kNotFound);
    EXPECT_EQ(e.type(), "WalletFrozen");
    EXPECT_EQ(e.schema_version(), 1);
    EXPECT_EQ(e.stream(), stream.value());
    EXPECT_EQ(e.version(), 2);
  }
  // The raw event is still readable.
  EXPECT_EQ(this->read(stream)[1].type, "WalletFrozen");
}

TYPED_TEST_P(FrameworkSuite, StoredJsonThatDoesNotFitIsACorruptionErrorNamingTheEvent) {
  annals::EventRegistry registry;
  wallet::register_wallet(registry);
  const auto id = new_id();
  const StreamId stream("wallet-" + id);
  this->store().append(stream, annals::ExpectedVersion::no_stream(),
                       {wallet::raw("WalletCreated", 3, {{"owner_name", 42}}),
                        wallet::raw("FundsAdded", 1, {{"amount", "three"}})});
  using V = wallet::Wallet::Event;
  const auto stored = this->read(stream);
  try {
    (void)registry.decode<V>(stored[0]);
    FAIL() << "expected CorruptionError";
  } catch (const annals::CorruptionError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("\"WalletCreated\" v3"), std::string::npos) << message;
    EXPECT_NE(message.find("version 1 of stream \"" + stream.value() + "\""), std::string::npos)
        << message;
  }
  try {
    (void)registry.decode<V>(stored[1]);
    FAIL() << "expected CorruptionError";
  } catch (const annals::CorruptionError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("upcaster from \"FundsAdded\" v1"), std::string::npos) << message;
    EXPECT_NE(message.find("version 2 of stream"), std::string::npos) << message;
  }
}

REGISTER_TYPED_TEST_SUITE_P(
    FrameworkSuite, RepositoryLoadsAStreamWithoutEventsAsNewAggregate,
    RepositorySavesPendingEventsAndLoadsThemBack,
    RepositorySaveUsesTheLoadedVersionAsExpectedVersion,
    RepositorySaveOfANewAggregateExpectsNoStream, RepositorySaveWithoutPendingEventsWritesNothing,
    RepositoryReplaysLongStreamsPageByPage, SnapshotIsTakenByPolicyAndLoadIsSnapshotPlusTail,
    SnapshotPolicyPredicateSeesTheAppendedEvents,
    SnapshotOfAnotherSchemaVersionIsIgnoredAndReplaced,
    ReleasesWithDifferentSnapshotVersionsNeverMisreadEachOther,
    UnreadableSnapshotIsIgnoredAndReplaced, SnapshotWriteFailureDoesNotFailTheCommand,
    SnapshotLoadFailureFallsBackToReplay, LosingAllSnapshotsChangesNothingButSpeed,
    SnapshotAheadOfItsStreamIsRebuiltByTheBus, LoadAtVersionReturnsThePastState,
    LoadAtVersionNeverStartsFromASnapshot, ReplayCheckReportsASnapshotThatDiffersFromTheEvents,
    LoadAsOfReturnsTheStateAtARecordedTime, BusSendsCommandsAndReturnsTheAppendResult,
    BusNoOpCommandWritesNothing, BusCarriesCommandMetadataIntoEveryEvent,
    BusRefusesReservedMetadataKeysBeforeDeciding, BusRetriesAConflictByReloadingAndDecidingAgain,
    BusRedecidesOnTheReloadedStateAfterAConflict, BusGivesUpAfterMaxAttempts,
    BusNeverRetriesADomainError, BusRetriesAnUnavailableStoreWithTheSameEvents,
    ResentCommandReturnsTheOriginalResult, ResentCommandIsRecognisedAfterLaterCommands,
    ResentCommandIsNotDecidedAgain, ResentCommandIsNotDecidedAgainAfterLaterCommands,
    ResentCommandIsNotDecidedAgainAfterASnapshotLoad,
    ResentCommandOlderThanTheWindowStillGetsTheOriginalResult,
    DomainErrorOnAFullyKnownStreamNeedsNoLookUp, RepositoryRecognisesResendsWithFewerOrMoreEvents,
    CommandIdReusedForAnotherAggregateIsAnIdempotencyError,
    CommandIdReusedForADifferentCommandIsAnIdempotencyError,
    CommandIdReusedForADifferentOldCommandIsAnIdempotencyError,
    CommandWithoutAFingerprintIsRecognisedByItsIdAlone,
    CachedStateIsConfirmedBeforeADomainErrorIsReported, StaleCacheConflictsThenSucceeds,
    ConcurrentSendersOnOneAggregateAllSucceed, BusTakesSnapshotsByPerTypePolicy,
    OldEventsAreReadAsTheCurrentSchema, EveryOldVersionOfOneTypeReachesTheCurrentOne,
    UnknownStoredTypeIsATypedErrorNamingTypeStreamAndVersion,
    StoredJsonThatDoesNotFitIsACorruptionErrorNamingTheEvent);

}  // namespace framework_suite
