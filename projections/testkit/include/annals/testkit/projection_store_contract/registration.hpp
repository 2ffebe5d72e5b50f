// ProjectionStore contract, registration and status: prepare() (idempotent, names checked),
// unknown projections, the first checkpoint, list() and what report() shows in it.
//
// Part of the ProjectionStore contract (annals/testkit/projection_store_contract.hpp, which
// registers every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/testkit/projection_store_contract/fixture.hpp"

// ---- Registration ------------------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, PrepareIsIdempotentAndRunsSetupEachTime) {
  annals::testkit::contract_detail::NamedProjection projection(this->name());
  this->store().prepare(projection);
  EXPECT_EQ(projection.setups.load(), 1);

  const auto lease = this->acquire(projection.name());
  const annals::Position moved(7, 7);
  this->commit(lease, annals::Position::start(), moved);

  this->store().prepare(projection);
  EXPECT_EQ(projection.setups.load(), 2);
  EXPECT_EQ(this->store().checkpoint(projection.name()), moved) << "prepare reset the checkpoint";
  EXPECT_EQ(this->record(projection.name()).checkpoint, moved);
}

TYPED_TEST_P(ProjectionStoreContract, PrepareRejectsBadNames) {
  using annals::InvalidArgumentError;
  for (const std::string& bad :
       {std::string(), std::string("has space"), std::string("semi;colon"), std::string("quote'd"),
        std::string("caf\u00e9"), std::string("new\nline"), std::string(101, 'a')}) {
    annals::testkit::contract_detail::NamedProjection projection(bad);
    this->template expect_error<InvalidArgumentError>([&] { this->store().prepare(projection); },
                                                      "projection name");
    EXPECT_EQ(projection.setups.load(), 0) << "setup ran for the bad name '" << bad << "'";
  }
  // The limits themselves are fine: 100 characters out of [A-Za-z0-9_.-].
  const std::string longest = this->name() + std::string(100 - this->name().size(), 'x');
  annals::testkit::contract_detail::NamedProjection ok(longest);
  EXPECT_NO_THROW(this->store().prepare(ok));
  annals::testkit::contract_detail::NamedProjection punctuated(this->name("A.b-C_9"));
  EXPECT_NO_THROW(this->store().prepare(punctuated));
}

TYPED_TEST_P(ProjectionStoreContract, UnknownProjectionThrowsNotFoundError) {
  using annals::NotFoundError;
  const auto missing = this->name("missing");
  this->template expect_error<NotFoundError>(
      [&] { static_cast<void>(this->store().try_acquire(missing, "owner-a", this->kLongTtl)); },
      missing);
  this->template expect_error<NotFoundError>(
      [&] { static_cast<void>(this->store().checkpoint(missing)); }, missing);
  this->template expect_error<NotFoundError>(
      [&] { static_cast<void>(this->store().request_rebuild(missing)); }, missing);
  EXPECT_FALSE(this->store().open_rebuild(missing).has_value());
  for (const auto& r : this->store().list()) EXPECT_NE(r.name, missing);
}

TYPED_TEST_P(ProjectionStoreContract, CheckpointStartsAtStart) {
  const auto name = this->prepared();
  EXPECT_EQ(this->store().checkpoint(name), annals::Position::start());
  const auto r = this->record(name);
  EXPECT_EQ(r.checkpoint, annals::Position::start());
  EXPECT_FALSE(r.owner.has_value());
  EXPECT_FALSE(r.owned);
  EXPECT_EQ(r.events_applied, 0);
  EXPECT_FALSE(r.last_error.has_value());
}

TYPED_TEST_P(ProjectionStoreContract, ListShowsEveryPreparedProjection) {
  const auto a = this->prepared("a");
  const auto b = this->prepared("b");
  const auto all = this->store().list();
  std::vector<std::string> ours;
  for (const auto& r : all) {
    if (r.name == a || r.name == b) ours.push_back(r.name);
  }
  EXPECT_EQ(ours, (std::vector<std::string>{a, b})) << "list() is ordered by name";
}

// ---- Reports -----------------------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, ReportShowsInList) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name, "owner-a");
  const annals::Position at(12, 34);
  this->commit(lease, annals::Position::start(), at);
  const auto before = std::chrono::system_clock::now();
  this->store().report(lease,
                       {.state = "failed", .last_error = "no such account", .events_applied = 42});
  const auto r = this->record(name);
  EXPECT_EQ(r.state, "failed");
  EXPECT_EQ(r.last_error, "no such account");
  EXPECT_EQ(r.events_applied, 42);
  EXPECT_EQ(r.checkpoint, at);
  EXPECT_EQ(r.owner, "owner-a");
  EXPECT_TRUE(r.owned);
  EXPECT_GE(r.updated_at, before - this->kClockSlack);

  // A later report replaces every field, the error included.
  this->store().report(lease, {.state = "live", .last_error = std::nullopt, .events_applied = 43});
  const auto r2 = this->record(name);
  EXPECT_EQ(r2.state, "live");
  EXPECT_FALSE(r2.last_error.has_value());
  EXPECT_EQ(r2.events_applied, 43);
}

TYPED_TEST_P(ProjectionStoreContract, ReportWithAStaleLeaseIsIgnored) {
  const auto name = this->prepared();
  const auto old_lease = this->acquire(name, "owner-a", this->kShortTtl);
  const auto new_lease = this->acquire_after_expiry(name, "owner-b");
  this->store().report(new_lease,
                       {.state = "live", .last_error = std::nullopt, .events_applied = 7});
  EXPECT_NO_THROW(this->store().report(
      old_lease, {.state = "stopped", .last_error = "stale", .events_applied = 1}));
  const auto r = this->record(name);
  EXPECT_EQ(r.state, "live");
  EXPECT_FALSE(r.last_error.has_value());
  EXPECT_EQ(r.events_applied, 7);
}
