// Part of the framework suite (framework_suite.hpp, which registers every part's tests with
// GoogleTest): idempotent commands (a re-sent command returns the original result and is not
// decided again; a command id reused for something else is an IdempotencyError). Include
// framework_suite.hpp, not this one.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/framework/metadata.hpp"
#include "fixture.hpp"

namespace framework_suite {

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

}  // namespace framework_suite
