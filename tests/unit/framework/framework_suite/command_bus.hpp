// Part of the framework suite (framework_suite.hpp, which registers every part's tests with
// GoogleTest): the command bus (results, metadata, conflict and unavailability retries, the state
// cache, concurrent senders, snapshots by policy). Include framework_suite.hpp, not this one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/framework/metadata.hpp"
#include "fixture.hpp"

namespace framework_suite {

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

}  // namespace framework_suite
