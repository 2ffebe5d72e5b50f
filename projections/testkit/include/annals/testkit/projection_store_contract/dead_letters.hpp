// ProjectionStore contract, dead letters: a parked event keeps the whole event, lists oldest
// first with filters, and moves through retry, resolve and skip with the commit that carries
// the change.
//
// Part of the ProjectionStore contract (annals/testkit/projection_store_contract.hpp, which
// registers every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/testkit/projection_store_contract/fixture.hpp"

// ---- Dead letters ------------------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, ParkedEventBecomesADeadLetterCarryingTheFullEvent) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto event = this->sample_event(4);
  const auto before = std::chrono::system_clock::now();
  {
    auto batch = this->store().begin(lease, annals::Position::start());
    batch->park(event, "handler failed: division by zero", 5);
    batch->commit(event.position);
  }
  const auto after = std::chrono::system_clock::now();
  EXPECT_EQ(this->store().checkpoint(name), event.position);

  const auto letters = this->dead_letters(name);
  ASSERT_EQ(letters.size(), 1u);
  const auto& letter = letters.front();
  EXPECT_GE(letter.id, 1);
  EXPECT_EQ(letter.projection, name);
  EXPECT_EQ(letter.event, event);
  EXPECT_EQ(letter.error, "handler failed: division by zero");
  EXPECT_EQ(letter.attempts, 5);
  EXPECT_EQ(letter.state, DeadLetterState::kParked);
  EXPECT_GE(letter.parked_at, before - this->kClockSlack);
  EXPECT_LE(letter.parked_at, after + this->kClockSlack);
  EXPECT_GE(letter.updated_at, letter.parked_at);
}

TYPED_TEST_P(ProjectionStoreContract, DeadLettersListOldestFirstWithFilters) {
  using annals::projections::DeadLetterQuery;
  using annals::projections::DeadLetterState;
  const auto name = this->prepared("a");
  const auto other = this->prepared("b");
  const auto lease = this->acquire(name);
  const auto other_lease = this->acquire(other);
  std::vector<std::int64_t> ids;
  for (std::int64_t n = 1; n <= 3; ++n) {
    ids.push_back(this->park(lease, annals::Position::start(), this->sample_event(n)));
  }
  this->park(other_lease, annals::Position::start(), this->sample_event(9));
  EXPECT_LT(ids[0], ids[1]);
  EXPECT_LT(ids[1], ids[2]);

  const auto all = this->dead_letters(name);
  ASSERT_EQ(all.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(all[i].id, ids[i]);
    EXPECT_EQ(all[i].event.data.at("amount"), 100 * static_cast<std::int64_t>(i + 1));
  }

  DeadLetterQuery limited;
  limited.projection = name;
  limited.max_count = 2;
  const auto first_two = this->store().list_dead_letters(limited);
  ASSERT_EQ(first_two.size(), 2u);
  EXPECT_EQ(first_two[0].id, ids[0]);
  EXPECT_EQ(first_two[1].id, ids[1]);

  this->store().skip(ids[1]);
  const auto parked = this->dead_letters(name, DeadLetterState::kParked);
  ASSERT_EQ(parked.size(), 2u);
  EXPECT_EQ(parked[0].id, ids[0]);
  EXPECT_EQ(parked[1].id, ids[2]);
  const auto skipped = this->dead_letters(name, DeadLetterState::kSkipped);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].id, ids[1]);

  // Without a projection, the query spans every projection (ours among them).
  DeadLetterQuery everything;
  everything.max_count = 1'000'000;
  std::size_t ours = 0;
  for (const auto& letter : this->store().list_dead_letters(everything)) {
    if (letter.projection == name || letter.projection == other) ++ours;
  }
  EXPECT_EQ(ours, 4u);
}

TYPED_TEST_P(ProjectionStoreContract, RequestRetryMovesAParkedLetterToRetryRequested) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto id = this->park(lease, annals::Position::start(), this->sample_event());
  this->store().request_retry(id);
  EXPECT_EQ(this->dead_letter(name, id).state, DeadLetterState::kRetryRequested);
  // Asking again changes nothing.
  EXPECT_NO_THROW(this->store().request_retry(id));
  EXPECT_EQ(this->dead_letter(name, id).state, DeadLetterState::kRetryRequested);
  const auto requested = this->dead_letters(name, DeadLetterState::kRetryRequested);
  ASSERT_EQ(requested.size(), 1u);
  EXPECT_EQ(requested[0].id, id);
}

TYPED_TEST_P(ProjectionStoreContract, ResolveDeadLetterTakesEffectWithTheCommit) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const annals::Position at(2, 2);
  this->commit(lease, annals::Position::start(), at);
  const auto id = this->park(lease, at, this->sample_event());
  this->store().request_retry(id);
  {
    auto batch = this->store().begin(lease, at);
    batch->resolve_dead_letter(id);
  }  // rolled back
  EXPECT_EQ(this->dead_letter(name, id).state, DeadLetterState::kRetryRequested);
  {
    auto batch = this->store().begin(lease, at);
    batch->resolve_dead_letter(id);
    batch->commit(at);
  }
  EXPECT_EQ(this->dead_letter(name, id).state, DeadLetterState::kResolved);
  EXPECT_EQ(this->store().checkpoint(name), at);
}

TYPED_TEST_P(ProjectionStoreContract, SkipGivesUpOnAParkedOrRequestedLetter) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto parked = this->park(lease, annals::Position::start(), this->sample_event(1));
  const auto requested = this->park(lease, annals::Position::start(), this->sample_event(2));
  this->store().request_retry(requested);
  this->store().skip(parked);
  this->store().skip(requested);
  EXPECT_EQ(this->dead_letter(name, parked).state, DeadLetterState::kSkipped);
  EXPECT_EQ(this->dead_letter(name, requested).state, DeadLetterState::kSkipped);
  // Skipping again changes nothing.
  EXPECT_NO_THROW(this->store().skip(parked));
  EXPECT_EQ(this->dead_letter(name, parked).state, DeadLetterState::kSkipped);
}

TYPED_TEST_P(ProjectionStoreContract, ClosedLettersRefuseRetryAndResolvedRefuseSkip) {
  using annals::InvalidArgumentError;
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto skipped = this->park(lease, annals::Position::start(), this->sample_event(1));
  this->store().skip(skipped);
  const auto resolved = this->park(lease, annals::Position::start(), this->sample_event(2));
  this->store().request_retry(resolved);
  {
    auto batch = this->store().begin(lease, annals::Position::start());
    batch->resolve_dead_letter(resolved);
    batch->commit(annals::Position::start());
  }
  this->template expect_error<InvalidArgumentError>([&] { this->store().request_retry(skipped); },
                                                    std::to_string(skipped));
  this->template expect_error<InvalidArgumentError>([&] { this->store().request_retry(resolved); },
                                                    std::to_string(resolved));
  this->template expect_error<InvalidArgumentError>([&] { this->store().skip(resolved); },
                                                    std::to_string(resolved));
  EXPECT_EQ(this->dead_letter(name, skipped).state, DeadLetterState::kSkipped);
  EXPECT_EQ(this->dead_letter(name, resolved).state, DeadLetterState::kResolved);
}

TYPED_TEST_P(ProjectionStoreContract, UnknownDeadLetterThrowsNotFoundError) {
  using annals::NotFoundError;
  // Ids are positive; this one was never issued.
  constexpr std::int64_t kMissing = 9'000'000'000'000'000'000;
  const auto mention = std::to_string(kMissing);
  this->template expect_error<NotFoundError>([&] { this->store().request_retry(kMissing); },
                                             mention);
  this->template expect_error<NotFoundError>([&] { this->store().skip(kMissing); }, mention);
  this->template expect_error<NotFoundError>([&] { this->store().retry_failed(kMissing, "again"); },
                                             mention);
}

TYPED_TEST_P(ProjectionStoreContract, RetryFailedParksAgainWithTheNewErrorAndOneMoreAttempt) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto event = this->sample_event();
  const auto id = this->park(lease, annals::Position::start(), event, "first error", 5);
  this->store().request_retry(id);
  this->store().retry_failed(id, "second error");
  const auto letter = this->dead_letter(name, id);
  EXPECT_EQ(letter.state, DeadLetterState::kParked);
  EXPECT_EQ(letter.error, "second error");
  EXPECT_EQ(letter.attempts, 6);
  EXPECT_EQ(letter.event, event);
  // It can be asked for again.
  EXPECT_NO_THROW(this->store().request_retry(id));
}
