// ProjectionStore contract, partition layout changes (Batch::commit_layout; annals/projections/
// partitions.hpp): removed, fenced and placed rows change together with the batch's writes, all
// or nothing; a stale lease among the held ones refuses everything; open dead letters keep a
// row from being removed.
//
// Part of the ProjectionStore contract (annals/testkit/projection_store_contract.hpp, which
// registers every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/testkit/projection_store_contract/fixture.hpp"

// ---- Partition layout changes ------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, CommitLayoutReplacesRowsAtOnePosition) {
  const auto base = this->prepared("base");
  const auto old0 = this->prepared("base.part-0-of-2");
  const auto old1 = this->prepared("base.part-1-of-2");
  const annals::Position at(70, 140);
  auto lease0 = this->acquire(old0, "fencer");
  auto lease1 = this->acquire(old1, "fencer");
  this->commit(lease0, annals::Position::start(), at);
  this->commit(lease1, annals::Position::start(), at);
  const auto base_token = this->record(base).fencing_token;
  const auto letter = this->park(lease0, at, this->sample_event());
  this->store().skip(letter);  // closed: goes with its row

  annals::projections::LayoutChange change;
  change.held = {lease0, lease1};
  change.remove = {old0, old1};
  change.fence = {base};
  change.place = {this->name("base.part-0-of-3"), this->name("base.part-1-of-3"),
                  this->name("base.part-2-of-3")};
  change.at = at;
  auto batch = this->store().begin(lease1, at);
  batch->commit_layout(change);

  std::size_t seen = 0;
  for (const auto& record : this->store().list()) {
    EXPECT_NE(record.name, old0);
    EXPECT_NE(record.name, old1);
    for (const auto& placed : change.place) {
      if (record.name != placed) continue;
      ++seen;
      EXPECT_EQ(record.checkpoint, at) << placed;
      EXPECT_FALSE(record.owned) << placed;
      EXPECT_GE(record.fencing_token, 1) << placed;
    }
  }
  EXPECT_EQ(seen, 3U);
  EXPECT_GT(this->record(base).fencing_token, base_token);
  EXPECT_TRUE(this->dead_letters(old0).empty());
  // The old leases are gone with their rows: nothing can commit under them.
  this->expect_ownership_lost([&] { this->commit(lease0, at, annals::Position(80, 160)); });
  // A placed row is a projection like any other.
  const auto placed = this->acquire(change.place[0], "next");
  this->commit(placed, at, annals::Position(80, 160));
  EXPECT_EQ(this->store().checkpoint(change.place[0]), annals::Position(80, 160));
}

TYPED_TEST_P(ProjectionStoreContract, CommitLayoutWithAStaleHeldLeaseChangesNothing) {
  const auto old0 = this->prepared("s.part-0-of-2");
  const auto old1 = this->prepared("s.part-1-of-2");
  auto lease0 = this->acquire(old0, "fencer");
  auto stale = this->acquire(old1, "fencer");
  this->store().release(stale);
  static_cast<void>(this->acquire(old1, "runner"));  // taken over: `stale` is fenced

  annals::projections::LayoutChange change;
  change.held = {lease0, stale};
  change.remove = {old0, old1};
  change.place = {this->name("s")};
  auto batch = this->store().begin(lease0, annals::Position::start());
  this->expect_ownership_lost([&] { batch->commit_layout(change); });
  EXPECT_EQ(this->record(old0).name, old0);
  EXPECT_EQ(this->record(old1).owner, std::optional<std::string>("runner"));
  for (const auto& record : this->store().list()) EXPECT_NE(record.name, this->name("s"));
}

TYPED_TEST_P(ProjectionStoreContract, CommitLayoutRefusesToRemoveARowWithOpenDeadLetters) {
  const auto old0 = this->prepared("d.part-0-of-1");
  auto lease = this->acquire(old0, "fencer");
  static_cast<void>(this->park(lease, annals::Position::start(), this->sample_event()));

  annals::projections::LayoutChange change;
  change.held = {lease};
  change.remove = {old0};
  change.place = {this->name("d")};
  auto batch = this->store().begin(lease, annals::Position::start());
  this->template expect_error<annals::InvalidArgumentError>([&] { batch->commit_layout(change); },
                                                            "dead letter");
  EXPECT_EQ(this->dead_letters(old0).size(), 1U);
  for (const auto& record : this->store().list()) EXPECT_NE(record.name, this->name("d"));
}
