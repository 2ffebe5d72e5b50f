// ProjectionStore contract, checkpoints: a batch commits its checkpoint only with the current
// lease and the expected checkpoint (compare-and-set, fenced), stores nothing otherwise, and
// wait_for_checkpoint() sees what was committed.
//
// Part of the ProjectionStore contract (annals/testkit/projection_store_contract.hpp, which
// registers every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/testkit/projection_store_contract/fixture.hpp"

// ---- Batches and the checkpoint CAS ------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, CommitStoresTheCheckpoint) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const annals::Position p1(5, 10);
  const annals::Position p2(9, 20);
  this->commit(lease, annals::Position::start(), p1);
  EXPECT_EQ(this->store().checkpoint(name), p1);
  this->commit(lease, p1, p2);
  EXPECT_EQ(this->store().checkpoint(name), p2);
  EXPECT_EQ(this->record(name).checkpoint, p2);
  // Unchanged (a dead-letter retry) and back to the start (a rebuild) are accepted too.
  this->commit(lease, p2, p2);
  EXPECT_EQ(this->store().checkpoint(name), p2);
  this->commit(lease, p2, annals::Position::start());
  EXPECT_EQ(this->store().checkpoint(name), annals::Position::start());
}

TYPED_TEST_P(ProjectionStoreContract, CheckpointsOfProjectionsAreIndependent) {
  const auto a = this->prepared("a");
  const auto b = this->prepared("b");
  this->commit(this->acquire(a), annals::Position::start(), annals::Position(4, 4));
  EXPECT_EQ(this->store().checkpoint(a), annals::Position(4, 4));
  EXPECT_EQ(this->store().checkpoint(b), annals::Position::start());
}

TYPED_TEST_P(ProjectionStoreContract, CommitWithAStaleTokenIsRefusedAndStoresNothing) {
  const auto name = this->prepared();
  const auto old_lease = this->acquire(name, "owner-a", this->kShortTtl);
  const auto new_lease = this->acquire_after_expiry(name, "owner-b");
  const annals::Position p1(3, 3);
  this->commit(new_lease, annals::Position::start(), p1);

  const auto event = this->sample_event();
  this->expect_ownership_lost([&] {
    auto batch = this->store().begin(old_lease, p1);
    batch->park(event, "stale", 1);
    batch->commit(annals::Position(8, 8));
  });
  EXPECT_EQ(this->store().checkpoint(name), p1);
  EXPECT_TRUE(this->dead_letters(name).empty());
  // The current owner is unaffected.
  EXPECT_NO_THROW(this->commit(new_lease, p1, annals::Position(9, 9)));
  EXPECT_EQ(this->store().checkpoint(name), annals::Position(9, 9));
}

TYPED_TEST_P(ProjectionStoreContract, CommitFromAStaleCheckpointIsRefusedAndStoresNothing) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const annals::Position p1(3, 3);
  this->commit(lease, annals::Position::start(), p1);

  const auto event = this->sample_event();
  this->expect_ownership_lost([&] {
    auto batch = this->store().begin(lease, annals::Position::start());
    batch->park(event, "stale", 1);
    batch->commit(annals::Position(6, 6));
  });
  EXPECT_EQ(this->store().checkpoint(name), p1);
  EXPECT_TRUE(this->dead_letters(name).empty());
  EXPECT_NO_THROW(this->commit(lease, p1, annals::Position(6, 6)));
}

TYPED_TEST_P(ProjectionStoreContract, CommitAfterReleaseIsRefused) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  this->store().release(lease);
  this->expect_ownership_lost(
      [&] { this->commit(lease, annals::Position::start(), annals::Position(2, 2)); });
  EXPECT_EQ(this->store().checkpoint(name), annals::Position::start());
}

TYPED_TEST_P(ProjectionStoreContract, BatchDestroyedWithoutCommitStoresNothing) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  {
    auto batch = this->store().begin(lease, annals::Position::start());
    batch->park(this->sample_event(), "never committed", 1);
  }
  EXPECT_EQ(this->store().checkpoint(name), annals::Position::start());
  EXPECT_TRUE(this->dead_letters(name).empty());
  // Nothing was left locked or half-written: the next batch from the same checkpoint commits.
  EXPECT_NO_THROW(this->commit(lease, annals::Position::start(), annals::Position(1, 1)));
  EXPECT_EQ(this->store().checkpoint(name), annals::Position(1, 1));
}

// ---- wait_for_checkpoint -----------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, WaitForCheckpointReturnsTrueOnceReached) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const annals::Position target(10, 10);
  // Reached later, from another thread.
  std::atomic<bool> result{false};
  std::thread waiter([&] {
    result = annals::projections::wait_for_checkpoint(this->store(), name, target, this->kTimeout);
  });
  this->commit(lease, annals::Position::start(), annals::Position(5, 5));
  this->commit(lease, annals::Position(5, 5), annals::Position(11, 11));
  waiter.join();
  EXPECT_TRUE(result.load());
  // Already reached (and passed): true at once, whatever the timeout.
  EXPECT_TRUE(annals::projections::wait_for_checkpoint(this->store(), name, target,
                                                       std::chrono::milliseconds(0)));
}

TYPED_TEST_P(ProjectionStoreContract, WaitForCheckpointTimesOutWhenNotReached) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  this->commit(lease, annals::Position::start(), annals::Position(5, 5));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(annals::projections::wait_for_checkpoint(this->store(), name, annals::Position(6, 6),
                                                        std::chrono::milliseconds(50)));
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, std::chrono::milliseconds(50));
  EXPECT_LT(waited, this->kTimeout);
}

TYPED_TEST_P(ProjectionStoreContract, WaitForCheckpointOfAnUnknownProjectionThrows) {
  const auto missing = this->name("missing");
  this->template expect_error<annals::NotFoundError>(
      [&] {
        static_cast<void>(annals::projections::wait_for_checkpoint(
            this->store(), missing, annals::Position(1, 1), std::chrono::milliseconds(10)));
      },
      missing);
}
