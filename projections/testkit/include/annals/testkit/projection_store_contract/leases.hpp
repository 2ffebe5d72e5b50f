// ProjectionStore contract, leases: try_acquire(), renew() and release(), fencing tokens that
// only grow across owners and expiry, and exactly one lease under concurrent acquisition.
//
// Part of the ProjectionStore contract (annals/testkit/projection_store_contract.hpp, which
// registers every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <latch>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/testkit/projection_store_contract/fixture.hpp"

// ---- Leases ------------------------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, TryAcquireGrantsALeaseWithAFencingToken) {
  const auto name = this->prepared();
  const auto before = std::chrono::system_clock::now();
  const auto lease = this->acquire(name, "owner-a", this->kLongTtl);
  const auto after = std::chrono::system_clock::now();
  EXPECT_EQ(lease.projection, name);
  EXPECT_EQ(lease.owner, "owner-a");
  EXPECT_GE(lease.fencing_token, 1);
  EXPECT_GE(lease.expires_at, before + this->kLongTtl - this->kClockSlack);
  EXPECT_LE(lease.expires_at, after + this->kLongTtl + this->kClockSlack);

  const auto r = this->record(name);
  EXPECT_EQ(r.owner, "owner-a");
  EXPECT_TRUE(r.owned);
  EXPECT_EQ(r.fencing_token, lease.fencing_token);
  EXPECT_EQ(r.lease_expires_at, lease.expires_at);
}

TYPED_TEST_P(ProjectionStoreContract, SecondOwnerIsRefusedWhileTheLeaseIsHeld) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name, "owner-a");
  EXPECT_FALSE(this->store().try_acquire(name, "owner-b", this->kLongTtl).has_value());
  const auto r = this->record(name);
  EXPECT_EQ(r.owner, "owner-a");
  EXPECT_EQ(r.fencing_token, lease.fencing_token);
}

TYPED_TEST_P(ProjectionStoreContract, HolderReacquiresWithTheSameToken) {
  const auto name = this->prepared();
  const auto first = this->acquire(name, "owner-a", this->kLongTtl);
  const auto again = this->acquire(name, "owner-a", this->kLongTtl);
  EXPECT_EQ(again.owner, "owner-a");
  EXPECT_EQ(again.fencing_token, first.fencing_token);
  EXPECT_GE(again.expires_at, first.expires_at);
}

TYPED_TEST_P(ProjectionStoreContract, RenewExtendsTheLeaseAndKeepsTheToken) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name, "owner-a", std::chrono::milliseconds(10'000));
  const auto renewed = this->store().renew(lease, this->kLongTtl);
  ASSERT_TRUE(renewed.has_value());
  EXPECT_EQ(renewed->projection, name);
  EXPECT_EQ(renewed->owner, "owner-a");
  EXPECT_EQ(renewed->fencing_token, lease.fencing_token);
  EXPECT_GT(renewed->expires_at, lease.expires_at);
  EXPECT_EQ(this->record(name).lease_expires_at, renewed->expires_at);
  // The renewed lease is as good as the original one for writing.
  EXPECT_NO_THROW(this->commit(*renewed, annals::Position::start(), annals::Position(3, 3)));
}

TYPED_TEST_P(ProjectionStoreContract, ReleaseLetsAnotherOwnerTakeOverAtOnce) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name, "owner-a");
  this->store().release(lease);
  const auto r = this->record(name);
  EXPECT_FALSE(r.owner.has_value());
  EXPECT_FALSE(r.owned);
  EXPECT_FALSE(this->store().renew(lease, this->kLongTtl).has_value());

  const auto taken = this->acquire(name, "owner-b");
  EXPECT_EQ(taken.owner, "owner-b");
  EXPECT_GT(taken.fencing_token, lease.fencing_token);
  // A second release of the old lease leaves the new owner alone.
  this->store().release(lease);
  EXPECT_EQ(this->record(name).owner, "owner-b");
  EXPECT_TRUE(this->record(name).owned);
}

TYPED_TEST_P(ProjectionStoreContract, ReacquiringAfterReleaseIncreasesTheToken) {
  const auto name = this->prepared();
  const auto first = this->acquire(name, "owner-a");
  this->store().release(first);
  const auto second = this->acquire(name, "owner-a");
  EXPECT_GT(second.fencing_token, first.fencing_token);
}

TYPED_TEST_P(ProjectionStoreContract, TakeoverAfterExpiryIncreasesTheFencingToken) {
  const auto name = this->prepared();
  const auto old_lease = this->acquire(name, "owner-a", this->kShortTtl);
  const auto new_lease = this->acquire_after_expiry(name, "owner-b");
  EXPECT_EQ(new_lease.owner, "owner-b");
  EXPECT_GT(new_lease.fencing_token, old_lease.fencing_token);

  // The former owner has lost it: no renewal, and its release changes nothing.
  EXPECT_FALSE(this->store().renew(old_lease, this->kLongTtl).has_value());
  this->store().release(old_lease);
  const auto r = this->record(name);
  EXPECT_EQ(r.owner, "owner-b");
  EXPECT_TRUE(r.owned);
  EXPECT_EQ(r.fencing_token, new_lease.fencing_token);
  EXPECT_TRUE(this->store().renew(new_lease, this->kLongTtl).has_value());
}

TYPED_TEST_P(ProjectionStoreContract, ExpiredHolderReacquiresWithAHigherToken) {
  const auto name = this->prepared();
  const auto first = this->acquire(name, "owner-a", this->kShortTtl);
  this->await_expiry(name);
  const auto second = this->acquire(name, "owner-a");
  EXPECT_GT(second.fencing_token, first.fencing_token);
}

TYPED_TEST_P(ProjectionStoreContract, ConcurrentAcquireGrantsExactlyOneLease) {
  const auto name = this->prepared();
  constexpr int kThreads = 8;
  std::latch ready(kThreads);
  std::vector<std::optional<annals::projections::Lease>> results(kThreads);
  std::vector<std::exception_ptr> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const auto slot = static_cast<std::size_t>(i);
      ready.arrive_and_wait();
      try {
        results[slot] =
            this->store().try_acquire(name, "owner-" + std::to_string(i), this->kLongTtl);
      } catch (...) {
        errors[slot] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, nullptr) << "try_acquire threw";
  const auto winners =
      std::count_if(results.begin(), results.end(), [](const auto& r) { return r.has_value(); });
  ASSERT_EQ(winners, 1);
  const auto winner =
      *std::find_if(results.begin(), results.end(), [](const auto& r) { return r.has_value(); });
  EXPECT_EQ(this->record(name).owner, winner->owner);
}
