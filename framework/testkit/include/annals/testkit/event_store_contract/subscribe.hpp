// EventStore contract, subscriptions and change signals: catch-up then live delivery exactly
// once, filters, a start position, handler failures as the stop reason, stop(), the head
// position and watch().
//
// Part of the EventStore contract (annals/testkit/event_store_contract.hpp, which registers
// every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/testkit/event_collector.hpp"
#include "annals/testkit/event_store_contract/fixture.hpp"

// ---- Subscriptions ------------------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, SubscriptionCatchesUpThenDeliversLiveEventsExactlyOnce) {
  constexpr std::size_t kHalf = 60;
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  for (std::size_t done = 0, n = 1; done < kHalf; done += n, n = n % 4 + 1) {
    this->append(done % 2 == 0 ? a : b, annals::ExpectedVersion::any(),
                 this->events(std::min(n, kHalf - done)));
  }
  annals::testkit::EventCollector collector;
  auto subscription = this->store().subscribe(
      this->subscription_options(this->own_events(), annals::Position::start(), 7),
      collector.handler());
  std::optional<annals::AppendResult> last;
  {
    std::jthread writer([&] {
      for (std::size_t done = 0, n = 1; done < kHalf; done += n, n = n % 3 + 1) {
        last = this->append(done % 2 == 0 ? b : a, annals::ExpectedVersion::any(),
                            this->events(std::min(n, kHalf - done)));
      }
    });
  }
  ASSERT_TRUE(last.has_value());
  ASSERT_TRUE(subscription->wait_for(last->position, this->kTimeout));
  subscription->stop();
  EXPECT_EQ(subscription->stop_reason(), nullptr);
  const auto delivered = collector.events();
  EXPECT_EQ(delivered.size(), 2 * kHalf);
  EXPECT_EQ(delivered, this->read_own());
  EXPECT_EQ(subscription->position(), last->position);
}

TYPED_TEST_P(EventStoreContract, SubscriptionWithFilterDeliversOnlyMatchingEvents) {
  const auto s = this->stream("a");
  std::vector<annals::NewEvent> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(this->event(i % 2 == 0 ? "Wanted" : "Other"));
  this->append(s, annals::ExpectedVersion::any(), batch);
  const annals::EventFilter filter{.category = this->category(), .event_types = {"Wanted"}};
  annals::testkit::EventCollector collector;
  auto subscription =
      this->store().subscribe(this->subscription_options(filter), collector.handler());
  const auto more = this->append(s, annals::ExpectedVersion::any(),
                                 {this->event("Other"), this->event("Wanted")});
  ASSERT_TRUE(subscription->wait_for(more.position, this->kTimeout));
  subscription->stop();
  const auto delivered = collector.events();
  EXPECT_EQ(delivered, this->read_filtered(filter));
  EXPECT_EQ(delivered.size(), 6u);
  for (const auto& event : delivered) EXPECT_EQ(event.type, "Wanted");
}

TYPED_TEST_P(EventStoreContract, SubscriptionFromMidPositionDeliversOnlyLaterEvents) {
  const auto s = this->stream("a");
  std::vector<annals::AppendResult> results;
  for (int i = 0; i < 10; ++i) {
    results.push_back(this->append(s, annals::ExpectedVersion::any(), this->events(1)));
  }
  annals::testkit::EventCollector collector;
  auto subscription = this->store().subscribe(
      this->subscription_options(this->own_events(), results[3].position), collector.handler());
  ASSERT_TRUE(subscription->wait_for(results.back().position, this->kTimeout));
  subscription->stop();
  const auto delivered = collector.events();
  ASSERT_EQ(delivered.size(), 6u);
  for (std::size_t i = 0; i < delivered.size(); ++i) {
    EXPECT_EQ(delivered[i].version, static_cast<annals::StreamVersion>(i + 5));
  }
}

TYPED_TEST_P(EventStoreContract, SubscriptionHandlerExceptionBecomesStopReason) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::any(), this->events(5));
  const auto log = this->read_own();
  std::atomic<int> calls{0};
  auto subscription = this->store().subscribe(
      this->subscription_options(this->own_events()), [&](const annals::RecordedEvent&) {
        if (++calls == 3) throw std::runtime_error("handler failed on purpose");
      });
  EXPECT_FALSE(subscription->wait_for(log.back().position, this->kTimeout));
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(subscription->position(), log[1].position);
  const auto reason = subscription->stop_reason();
  ASSERT_NE(reason, nullptr);
  try {
    std::rethrow_exception(reason);
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "handler failed on purpose");
  }
  subscription->stop();  // still fine after a failure
  EXPECT_FALSE(subscription->is_running());
}

TYPED_TEST_P(EventStoreContract, SubscriptionStopIsIdempotentAndEndsDelivery) {
  const auto s = this->stream("a");
  const auto first = this->append(s, annals::ExpectedVersion::any(), this->events(3));
  annals::testkit::EventCollector collector;
  auto subscription =
      this->store().subscribe(this->subscription_options(this->own_events()), collector.handler());
  ASSERT_TRUE(subscription->wait_for(first.position, this->kTimeout));
  EXPECT_TRUE(subscription->is_running());
  subscription->stop();
  subscription->stop();
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(subscription->stop_reason(), nullptr);
  // stop() joined the subscription's thread: nothing can be delivered any more.
  this->append(s, annals::ExpectedVersion::any(), this->events(2));
  EXPECT_EQ(collector.events().size(), 3u);
  EXPECT_EQ(subscription->position(), first.position);
}

TYPED_TEST_P(EventStoreContract, SubscriptionIsLiveOnceCaughtUp) {
  const auto s = this->stream("a");
  const auto result = this->append(s, annals::ExpectedVersion::any(), this->events(3));
  annals::testkit::EventCollector collector;
  auto subscription = this->store().subscribe(
      this->subscription_options(this->own_events(), annals::Position::start(), 100),
      collector.handler());
  ASSERT_TRUE(subscription->wait_for(result.position, this->kTimeout));
  EXPECT_TRUE(subscription->is_live());
  EXPECT_TRUE(subscription->is_running());
}

TYPED_TEST_P(EventStoreContract, HeadPositionIsAtOrAfterEverySettledEvent) {
  const auto result =
      this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(2));
  this->await_settled();
  const annals::Position head = this->store().head_position();
  EXPECT_GE(head, result.position);
  // Nothing settled lies after the head at the moment it was read, except later appends.
  const auto later =
      this->store().read_all({.after = head, .max_count = 1000, .filter = this->own_events()});
  EXPECT_TRUE(later.empty());
}

TYPED_TEST_P(EventStoreContract, HeadPositionNeverMovesBackwards) {
  const annals::Position before = this->store().head_position();
  this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(1));
  this->await_settled();
  EXPECT_GE(this->store().head_position(), before);
}

TYPED_TEST_P(EventStoreContract, WatchSignalsAnAppend) {
  auto signal = this->store().watch();
  const std::uint64_t token = signal->observe();
  this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(1));
  // A spurious early return is allowed, so wait until a wait reports the change.
  const auto deadline = std::chrono::steady_clock::now() + this->kTimeout;
  bool signalled = false;
  while (!signalled && std::chrono::steady_clock::now() < deadline) {
    signalled = signal->wait(token, std::chrono::milliseconds(500));
  }
  EXPECT_TRUE(signalled);
}

TYPED_TEST_P(EventStoreContract, WatchInterruptEndsAWait) {
  auto signal = this->store().watch();
  const std::uint64_t token = signal->observe();
  signal->interrupt();
  const auto started = std::chrono::steady_clock::now();
  signal->wait(token, this->kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - started, this->kTimeout);
}
