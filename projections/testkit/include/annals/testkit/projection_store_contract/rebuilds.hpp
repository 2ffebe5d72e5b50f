// ProjectionStore contract, rebuild requests: one open request per projection, updates by its
// owner, a new request once closed, unknown ids, and independence between projections.
//
// Part of the ProjectionStore contract (annals/testkit/projection_store_contract.hpp, which
// registers every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/testkit/projection_store_contract/fixture.hpp"

// ---- Rebuild requests --------------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, RequestRebuildReturnsTheOpenRequestWhenRepeated) {
  using annals::projections::RebuildState;
  const auto name = this->prepared();
  const auto before = std::chrono::system_clock::now();
  const auto request = this->store().request_rebuild(name);
  EXPECT_GE(request.id, 1);
  EXPECT_EQ(request.projection, name);
  EXPECT_EQ(request.state, RebuildState::kRequested);
  EXPECT_FALSE(request.target.has_value());
  EXPECT_FALSE(request.progress.has_value());
  EXPECT_FALSE(request.message.has_value());
  EXPECT_GE(request.requested_at, before - this->kClockSlack);

  const auto again = this->store().request_rebuild(name);
  EXPECT_EQ(again.id, request.id);
  EXPECT_EQ(again.state, RebuildState::kRequested);

  const auto open = this->store().open_rebuild(name);
  ASSERT_TRUE(open.has_value());
  EXPECT_EQ(open->id, request.id);
  const auto by_id = this->store().rebuild_request(request.id);
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(by_id->projection, name);
  EXPECT_EQ(by_id->state, RebuildState::kRequested);
}

TYPED_TEST_P(ProjectionStoreContract, RebuildRequestFollowsOwnerUpdates) {
  using annals::projections::RebuildState;
  const auto name = this->prepared();
  auto request = this->store().request_rebuild(name);

  request.state = RebuildState::kRunning;
  request.target = annals::Position(50, 100);
  request.progress = annals::Position::start();
  this->store().update_rebuild(request);
  auto seen = this->store().rebuild_request(request.id);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->state, RebuildState::kRunning);
  EXPECT_EQ(seen->target, annals::Position(50, 100));
  EXPECT_EQ(seen->progress, annals::Position::start());
  // Running is still open: asking again returns it.
  EXPECT_EQ(this->store().request_rebuild(name).id, request.id);
  ASSERT_TRUE(this->store().open_rebuild(name).has_value());
  EXPECT_EQ(this->store().open_rebuild(name)->state, RebuildState::kRunning);

  request.progress = annals::Position(25, 50);
  this->store().update_rebuild(request);
  EXPECT_EQ(this->store().rebuild_request(request.id)->progress, annals::Position(25, 50));

  request.state = RebuildState::kDone;
  request.progress = annals::Position(50, 100);
  request.message = "replayed 100 events";
  this->store().update_rebuild(request);
  seen = this->store().rebuild_request(request.id);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->state, RebuildState::kDone);
  EXPECT_EQ(seen->progress, annals::Position(50, 100));
  EXPECT_EQ(seen->message, "replayed 100 events");
  EXPECT_GE(seen->updated_at, seen->requested_at);
  EXPECT_FALSE(this->store().open_rebuild(name).has_value());
}

TYPED_TEST_P(ProjectionStoreContract, ClosedRebuildAllowsANewRequest) {
  using annals::projections::RebuildState;
  const auto name = this->prepared();
  auto failed = this->store().request_rebuild(name);
  failed.state = RebuildState::kFailed;
  failed.message = "reset failed";
  this->store().update_rebuild(failed);
  EXPECT_FALSE(this->store().open_rebuild(name).has_value());
  EXPECT_EQ(this->store().rebuild_request(failed.id)->message, "reset failed");

  const auto next = this->store().request_rebuild(name);
  EXPECT_GT(next.id, failed.id);
  EXPECT_EQ(next.state, RebuildState::kRequested);
  ASSERT_TRUE(this->store().open_rebuild(name).has_value());
  EXPECT_EQ(this->store().open_rebuild(name)->id, next.id);
}

TYPED_TEST_P(ProjectionStoreContract, UnknownRebuildRequestIsEmptyAndCannotBeUpdated) {
  using annals::NotFoundError;
  constexpr std::int64_t kMissing = 9'000'000'000'000'000'000;
  EXPECT_FALSE(this->store().rebuild_request(kMissing).has_value());
  annals::projections::RebuildRequest ghost;
  ghost.id = kMissing;
  ghost.projection = this->prepared();
  ghost.state = annals::projections::RebuildState::kDone;
  this->template expect_error<NotFoundError>([&] { this->store().update_rebuild(ghost); },
                                             std::to_string(kMissing));
}

TYPED_TEST_P(ProjectionStoreContract, RebuildRequestsOfProjectionsAreIndependent) {
  const auto a = this->prepared("a");
  const auto b = this->prepared("b");
  const auto ra = this->store().request_rebuild(a);
  EXPECT_FALSE(this->store().open_rebuild(b).has_value());
  const auto rb = this->store().request_rebuild(b);
  EXPECT_NE(ra.id, rb.id);
  EXPECT_EQ(this->store().open_rebuild(a)->id, ra.id);
  EXPECT_EQ(this->store().open_rebuild(b)->id, rb.id);
}
