// EventStore contract, reads: a stream forward and backward with from/max_count, stream
// versions, and the global log (order, commit groups, paging without gaps or repeats,
// filters, positions and their string form).
//
// Part of the EventStore contract (annals/testkit/event_store_contract.hpp, which registers
// every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/testkit/event_store_contract/fixture.hpp"

// ---- Reading streams --------------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, ReadStreamForwardReturnsEventsAsAppended) {
  const auto s = this->stream("a");
  const auto ids = this->new_ids(3);
  std::vector<annals::NewEvent> batch;
  for (std::size_t i = 0; i < 3; ++i) {
    auto event =
        this->event("Type" + std::to_string(i),
                    {{"amount", 10 * i}, {"tags", {"x", "y"}}, {"nested", {{"ok", true}}}});
    event.id = ids[i];
    event.schema_version = static_cast<std::int32_t>(i + 1);
    event.metadata = {{"correlation_id", "c-" + std::to_string(i)}};
    batch.push_back(std::move(event));
  }
  const auto result = this->append(s, annals::ExpectedVersion::no_stream(), batch);
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(log[i].stream_id, s);
    EXPECT_EQ(log[i].version, static_cast<annals::StreamVersion>(i + 1));
    EXPECT_EQ(log[i].id, ids[i]);
    EXPECT_EQ(log[i].type, batch[i].type);
    EXPECT_EQ(log[i].schema_version, batch[i].schema_version);
    EXPECT_EQ(log[i].data, batch[i].data);
    EXPECT_EQ(log[i].metadata, batch[i].metadata);
    if (i > 0) {
      EXPECT_LT(log[i - 1].position, log[i].position);
    }
  }
  EXPECT_EQ(result.position, log.back().position);
}

TYPED_TEST_P(EventStoreContract, ReadStreamBackwardReturnsNewestFirst) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(4));
  const auto log =
      this->store().read_stream(s, this->stream_options(annals::ReadDirection::kBackward));
  ASSERT_EQ(log.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(log[i].version, static_cast<annals::StreamVersion>(4 - i));
    EXPECT_EQ(log[i].data, (nlohmann::json{{"n", 3 - i}}));
  }
}

TYPED_TEST_P(EventStoreContract, ReadStreamForwardHonoursFromAndMaxCount) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(5));
  constexpr auto kAll = std::numeric_limits<std::size_t>::max();
  auto versions = [&](std::optional<annals::StreamVersion> from, std::size_t max_count) {
    std::vector<annals::StreamVersion> out;
    const auto options = this->stream_options(annals::ReadDirection::kForward, from, max_count);
    for (const auto& event : this->store().read_stream(s, options)) out.push_back(event.version);
    return out;
  };
  using V = std::vector<annals::StreamVersion>;
  EXPECT_EQ(versions(2, 3), (V{2, 3, 4}));
  EXPECT_EQ(versions(4, kAll), (V{4, 5}));
  EXPECT_EQ(versions(4, 10), (V{4, 5}));
  EXPECT_EQ(versions(std::nullopt, 2), (V{1, 2}));
  EXPECT_EQ(versions(6, kAll), V{});
}

TYPED_TEST_P(EventStoreContract, ReadStreamBackwardHonoursFromAndMaxCount) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(5));
  constexpr auto kAll = std::numeric_limits<std::size_t>::max();
  auto versions = [&](std::optional<annals::StreamVersion> from, std::size_t max_count) {
    std::vector<annals::StreamVersion> out;
    const auto options = this->stream_options(annals::ReadDirection::kBackward, from, max_count);
    for (const auto& event : this->store().read_stream(s, options)) out.push_back(event.version);
    return out;
  };
  using V = std::vector<annals::StreamVersion>;
  EXPECT_EQ(versions(4, 2), (V{4, 3}));
  EXPECT_EQ(versions(std::nullopt, 2), (V{5, 4}));
  EXPECT_EQ(versions(std::nullopt, kAll), (V{5, 4, 3, 2, 1}));
  EXPECT_EQ(versions(1, kAll), (V{1}));
  EXPECT_EQ(versions(3, 10), (V{3, 2, 1}));
}

TYPED_TEST_P(EventStoreContract, ReadingMissingStreamReturnsNothing) {
  const auto s = this->stream("missing");
  EXPECT_TRUE(this->store().read_stream(s).empty());
  EXPECT_TRUE(
      this->store().read_stream(s, this->stream_options(annals::ReadDirection::kBackward)).empty());
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, StreamVersionCountsEvents) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::any(), this->events(1));
  EXPECT_EQ(this->store().stream_version(s), 1);
  this->append(s, annals::ExpectedVersion::any(), this->events(4));
  EXPECT_EQ(this->store().stream_version(s), 5);
  EXPECT_EQ(this->store().stream_version(this->stream("other")), std::nullopt);
}

// ---- Reading the global log -------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, ReadAllReturnsAppendsInOrderWithIncreasingPositions) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  const auto c = this->stream("c");
  std::vector<annals::EventId> expected;
  for (const auto& [s, n] : std::vector<std::pair<annals::StreamId, std::size_t>>{
           {a, 2}, {b, 3}, {a, 1}, {c, 4}, {b, 1}}) {
    const auto ids = this->new_ids(n);
    this->append(s, annals::ExpectedVersion::any(), this->events_with_ids(ids));
    expected.insert(expected.end(), ids.begin(), ids.end());
  }
  const auto log = this->read_own();
  EXPECT_EQ(annals::testkit::contract_detail::ids_of(log), expected);
  for (std::size_t i = 1; i < log.size(); ++i) EXPECT_LT(log[i - 1].position, log[i].position);
  // The global log and the streams agree on every event.
  for (const auto& s : {a, b, c}) {
    for (const auto& event : this->store().read_stream(s)) {
      const auto found = std::find(log.begin(), log.end(), event);
      EXPECT_NE(found, log.end()) << "stream event missing from the log: " << event.id.to_string();
    }
  }
}

TYPED_TEST_P(EventStoreContract, EventsOfOneAppendShareACommitGroup) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  this->append(a, annals::ExpectedVersion::any(), this->events(3));
  this->append_multi(
      {{.stream_id = a, .expected = annals::ExpectedVersion::any(), .events = this->events(2)},
       {.stream_id = b, .expected = annals::ExpectedVersion::any(), .events = this->events(2)}});
  const auto log = this->read_own();
  ASSERT_EQ(log.size(), 7u);
  for (std::size_t i : {1u, 2u}) EXPECT_EQ(log[i].position.commit(), log[0].position.commit());
  for (std::size_t i : {4u, 5u, 6u}) {
    EXPECT_EQ(log[i].position.commit(), log[3].position.commit());
  }
  EXPECT_NE(log[3].position.commit(), log[0].position.commit());
}

TYPED_TEST_P(EventStoreContract, ConcurrentAppendsStayContiguousInTheGlobalLog) {
  constexpr int kWriters = 4;
  constexpr int kAppends = 10;
  constexpr int kEventsPerAppend = 3;
  {
    std::vector<std::jthread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([this, w] {
        const auto s = this->stream("w" + std::to_string(w));
        for (int k = 0; k < kAppends; ++k) {
          std::vector<annals::NewEvent> batch;
          for (int i = 0; i < kEventsPerAppend; ++i) {
            batch.push_back(this->event("Wrote", {{"writer", w}, {"append", k}, {"i", i}}));
          }
          this->append(s, annals::ExpectedVersion::any(), std::move(batch));
        }
      });
    }
  }
  const auto log = this->read_own();
  ASSERT_EQ(log.size(), static_cast<std::size_t>(kWriters * kAppends * kEventsPerAppend));
  for (std::size_t at = 0; at < log.size(); at += kEventsPerAppend) {
    const auto& head = log[at].data;
    EXPECT_EQ(head["i"], 0) << "an append does not start at " << at;
    for (int i = 1; i < kEventsPerAppend; ++i) {
      const auto& next = log[at + static_cast<std::size_t>(i)].data;
      EXPECT_EQ(next["writer"], head["writer"]) << "appends interleaved at " << at;
      EXPECT_EQ(next["append"], head["append"]) << "appends interleaved at " << at;
      EXPECT_EQ(next["i"], i);
    }
  }
  for (std::size_t i = 1; i < log.size(); ++i) EXPECT_LT(log[i - 1].position, log[i].position);
}

TYPED_TEST_P(EventStoreContract, ReadAllPagesWithoutGapsOrRepeats) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  for (std::size_t n : {5u, 1u, 7u, 3u, 7u}) {
    this->append(n % 2 == 0 ? a : b, annals::ExpectedVersion::any(), this->events(n));
  }
  const auto whole = this->read_own();
  ASSERT_EQ(whole.size(), 23u);
  std::vector<annals::RecordedEvent> paged;
  annals::Position after;
  while (true) {
    const auto page =
        this->store().read_all({.after = after, .max_count = 4, .filter = this->own_events()});
    ASSERT_LE(page.size(), 4u);
    if (page.empty()) break;
    paged.insert(paged.end(), page.begin(), page.end());
    after = page.back().position;
  }
  EXPECT_EQ(paged, whole);
}

TYPED_TEST_P(EventStoreContract, ReadAllFiltersByCategory) {
  const auto other_category = "other" + annals::testkit::contract_detail::random_hex(16);
  const annals::StreamId other(other_category + "-a");
  this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(2));
  this->append(other, annals::ExpectedVersion::any(), this->events(3));
  this->append(this->stream("b"), annals::ExpectedVersion::any(), this->events(1));

  const auto own = this->read_own();
  ASSERT_EQ(own.size(), 3u);
  for (const auto& event : own) EXPECT_EQ(event.stream_id.category(), this->category());
  const auto theirs = this->read_filtered({.category = other_category, .event_types = {}});
  ASSERT_EQ(theirs.size(), 3u);
  for (const auto& event : theirs) EXPECT_EQ(event.stream_id, other);
}

TYPED_TEST_P(EventStoreContract, ReadAllFiltersByEventTypes) {
  const auto s = this->stream("a");
  std::vector<annals::NewEvent> batch;
  for (const char* type : {"Opened", "Deposited", "Withdrawn", "Deposited", "Closed"}) {
    batch.push_back(this->event(type));
  }
  this->append(s, annals::ExpectedVersion::any(), batch);
  const auto log =
      this->read_filtered({.category = this->category(), .event_types = {"Deposited", "Closed"}});
  std::vector<std::string> types;
  for (const auto& event : log) types.push_back(event.type);
  EXPECT_EQ(types, (std::vector<std::string>{"Deposited", "Deposited", "Closed"}));
  EXPECT_EQ(log[0].version, 2);
  EXPECT_EQ(log[1].version, 4);
  EXPECT_EQ(log[2].version, 5);
}

TYPED_TEST_P(EventStoreContract, ReadAllHonoursMaxCount) {
  this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(6));
  const auto whole = this->read_own();
  const auto first =
      this->store().read_all({.after = {}, .max_count = 4, .filter = this->own_events()});
  ASSERT_EQ(first.size(), 4u);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), whole.begin()));
}

TYPED_TEST_P(EventStoreContract, ReadAllAfterLastEventReturnsNothing) {
  const auto result =
      this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(3));
  EXPECT_TRUE(this->read_filtered(this->own_events(), result.position).empty());
}

TYPED_TEST_P(EventStoreContract, PositionsRoundTripThroughTheirStringForm) {
  this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(3));
  this->append(this->stream("b"), annals::ExpectedVersion::any(), this->events(2));
  const auto log = this->read_own();
  ASSERT_EQ(log.size(), 5u);
  for (const auto& event : log) {
    EXPECT_EQ(annals::Position::parse(event.position.to_string()), event.position);
  }
  const auto resumed =
      this->read_filtered(this->own_events(), annals::Position::parse(log[1].position.to_string()));
  EXPECT_EQ(resumed, std::vector<annals::RecordedEvent>(log.begin() + 2, log.end()));
}
