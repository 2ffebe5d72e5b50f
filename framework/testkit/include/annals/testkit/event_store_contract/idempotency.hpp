// EventStore contract, idempotency: an exact re-send of stored event ids returns the original
// result and writes nothing; any other reuse of a stored id (partial overlap, another order,
// another stream, changed content) throws IdempotencyError naming the event; ids within one
// append are distinct and never nil.
//
// Part of the EventStore contract (annals/testkit/event_store_contract.hpp, which registers
// every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/testkit/event_store_contract/fixture.hpp"

// ---- Idempotency ------------------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, ExactResendReturnsOriginalResultAndWritesNothing) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(1));
  const auto batch = this->events_with_ids(this->new_ids(3));
  const auto original = this->append(s, annals::ExpectedVersion::exact(1), batch);
  const auto log_before = this->read_own();

  // The expected version no longer holds: only idempotency can make this succeed.
  const auto again = this->append(s, annals::ExpectedVersion::exact(1), batch);
  EXPECT_EQ(again, original);
  EXPECT_EQ(this->store().stream_version(s), 4);
  EXPECT_EQ(this->read_own(), log_before);
}

TYPED_TEST_P(EventStoreContract, ResendAfterLaterAppendsReturnsOriginalResult) {
  const auto s = this->stream("a");
  const auto batch = this->events_with_ids(this->new_ids(2));
  const auto original = this->append(s, annals::ExpectedVersion::no_stream(), batch);
  this->append(s, annals::ExpectedVersion::exact(2), this->events(3));
  const auto again = this->append(s, annals::ExpectedVersion::no_stream(), batch);
  EXPECT_EQ(again, original);
  EXPECT_EQ(this->store().stream_version(s), 5);
  EXPECT_EQ(this->read_own().size(), 5u);
}

TYPED_TEST_P(EventStoreContract, PartialOverlapThrowsIdempotencyErrorAndWritesNothing) {
  const auto s = this->stream("a");
  const auto stored = this->new_ids(2);
  this->append(s, annals::ExpectedVersion::no_stream(), this->events_with_ids(stored));
  const auto fresh = annals::EventId::generate();
  this->expect_idempotency_error([&] {
    this->append(s, annals::ExpectedVersion::any(), this->events_with_ids({stored[1], fresh}));
  });
  this->expect_idempotency_error([&] {
    this->append(s, annals::ExpectedVersion::any(), this->events_with_ids({fresh, stored[0]}));
  });
  this->expect_idempotency_error([&] {
    this->append(s, annals::ExpectedVersion::any(),
                 this->events_with_ids({stored[0], stored[1], fresh}));
  });
  EXPECT_EQ(this->store().stream_version(s), 2);
  EXPECT_EQ(annals::testkit::contract_detail::ids_of(this->read_own()), stored);
}

TYPED_TEST_P(EventStoreContract, ResendInAnotherOrderThrowsIdempotencyError) {
  const auto s = this->stream("a");
  const auto stored = this->new_ids(2);
  this->append(s, annals::ExpectedVersion::no_stream(), this->events_with_ids(stored));
  this->expect_idempotency_error([&] {
    this->append(s, annals::ExpectedVersion::any(), this->events_with_ids({stored[1], stored[0]}));
  });
  EXPECT_EQ(this->store().stream_version(s), 2);
}

TYPED_TEST_P(EventStoreContract, EventIdStoredInAnotherStreamThrowsIdempotencyError) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  const auto ids = this->new_ids(1);
  this->append(a, annals::ExpectedVersion::no_stream(), this->events_with_ids(ids));
  this->expect_idempotency_error(
      [&] { this->append(b, annals::ExpectedVersion::no_stream(), this->events_with_ids(ids)); });
  EXPECT_EQ(this->store().stream_version(b), std::nullopt);
  EXPECT_EQ(this->store().stream_version(a), 1);
}

TYPED_TEST_P(EventStoreContract, MultiStreamExactResendReturnsOriginalResults) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  const auto request =
      std::vector<annals::StreamAppend>{{.stream_id = a,
                                         .expected = annals::ExpectedVersion::no_stream(),
                                         .events = this->events_with_ids(this->new_ids(2))},
                                        {.stream_id = b,
                                         .expected = annals::ExpectedVersion::no_stream(),
                                         .events = this->events_with_ids(this->new_ids(1))}};
  const auto original = this->append_multi(request);
  const auto log_before = this->read_own();
  const auto again = this->append_multi(request);
  EXPECT_EQ(again, original);
  EXPECT_EQ(this->read_own(), log_before);
}

TYPED_TEST_P(EventStoreContract, MultiStreamResendMixedWithNewEventsThrowsIdempotencyError) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  const auto c = this->stream("c");
  const auto a_events = this->events_with_ids(this->new_ids(2));
  this->append_multi(
      {{.stream_id = a, .expected = annals::ExpectedVersion::no_stream(), .events = a_events},
       {.stream_id = b,
        .expected = annals::ExpectedVersion::no_stream(),
        .events = this->events_with_ids(this->new_ids(1))}});
  this->expect_idempotency_error([&] {
    this->append_multi(
        {{.stream_id = a, .expected = annals::ExpectedVersion::any(), .events = a_events},
         {.stream_id = c,
          .expected = annals::ExpectedVersion::any(),
          .events = this->events_with_ids(this->new_ids(1))}});
  });
  EXPECT_EQ(this->store().stream_version(c), std::nullopt);
  EXPECT_EQ(this->read_own().size(), 3u);
}

// A re-send of stored ids whose content differs is not idempotent: it names the
// first differing event (id, stream, stored version) and the part that differs, and writes
// nothing; the exact re-send still returns the original result.
TYPED_TEST_P(EventStoreContract, ResendWithChangedContentThrowsIdempotencyErrorNamingTheEvent) {
  const auto s = this->stream("a");
  const auto ids = this->new_ids(2);
  const auto batch = this->events_with_ids(ids);
  const auto original = this->append(s, annals::ExpectedVersion::no_stream(), batch);
  const auto log_before = this->read_own();
  const std::vector<std::string> second{ids[1].to_string(), s.value(), "version 2"};
  const auto mentions = [&](const std::string& part) {
    auto out = second;
    out.push_back(part);
    return out;
  };

  auto changed = batch;
  changed[1].data = {{"n", 99}};
  this->expect_idempotency_error(
      [&] { this->append(s, annals::ExpectedVersion::no_stream(), changed); }, mentions("data"));
  changed = batch;
  changed[1].type = "Other";
  this->expect_idempotency_error(
      [&] { this->append(s, annals::ExpectedVersion::no_stream(), changed); },
      mentions("event type"));
  changed = batch;
  changed[1].schema_version = 2;
  this->expect_idempotency_error(
      [&] { this->append(s, annals::ExpectedVersion::no_stream(), changed); },
      mentions("schema version"));
  changed = batch;
  changed[1].metadata = {{"by", "someone else"}};
  this->expect_idempotency_error(
      [&] { this->append(s, annals::ExpectedVersion::no_stream(), changed); },
      mentions("metadata"));

  EXPECT_EQ(this->read_own(), log_before);
  EXPECT_EQ(this->append(s, annals::ExpectedVersion::no_stream(), batch), original);
}

// The same for a single event (the PostgreSQL store's single-event statement hands a stored id
// to annals.append_events, which decides).
TYPED_TEST_P(EventStoreContract, SingleEventResendWithChangedDataThrowsIdempotencyError) {
  const auto s = this->stream("a");
  const auto batch = this->events_with_ids(this->new_ids(1));
  const auto original = this->append(s, annals::ExpectedVersion::any(), batch);
  auto changed = batch;
  changed[0].data = {{"n", 1}, {"extra", true}};
  this->expect_idempotency_error([&] { this->append(s, annals::ExpectedVersion::any(), changed); },
                                 {batch[0].id->to_string(), s.value(), "version 1", "data"});
  EXPECT_EQ(this->store().stream_version(s), 1);
  EXPECT_EQ(this->append(s, annals::ExpectedVersion::any(), batch), original);
}

// JSON that differs only in key order is the same content.
TYPED_TEST_P(EventStoreContract, ResendWithReorderedKeysIsExact) {
  const auto s = this->stream("a");
  auto batch = this->events_with_ids(this->new_ids(1));
  batch[0].data = nlohmann::json::parse(R"({"a": 1, "b": {"c": [1, 2], "d": "x"}})");
  const auto original = this->append(s, annals::ExpectedVersion::no_stream(), batch);
  batch[0].data = nlohmann::json::parse(R"({"b": {"d": "x", "c": [1, 2]}, "a": 1})");
  EXPECT_EQ(this->append(s, annals::ExpectedVersion::no_stream(), batch), original);
}

TYPED_TEST_P(EventStoreContract, MultiStreamResendWithChangedContentNamesTheDifferingStream) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  auto request =
      std::vector<annals::StreamAppend>{{.stream_id = a,
                                         .expected = annals::ExpectedVersion::no_stream(),
                                         .events = this->events_with_ids(this->new_ids(2))},
                                        {.stream_id = b,
                                         .expected = annals::ExpectedVersion::no_stream(),
                                         .events = this->events_with_ids(this->new_ids(2))}};
  const auto original = this->append_multi(request);
  const auto log_before = this->read_own();
  auto changed = request;
  changed[1].events[0].metadata = {{"changed", true}};
  this->expect_idempotency_error(
      [&] { this->append_multi(changed); },
      {request[1].events[0].id->to_string(), b.value(), "version 1", "metadata"});
  EXPECT_EQ(this->read_own(), log_before);
  EXPECT_EQ(this->append_multi(request), original);
}

TYPED_TEST_P(EventStoreContract, DuplicateIdsWithinOneAppendThrowInvalidArgumentError) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  const auto id = annals::EventId::generate();
  this->expect_invalid_argument(
      [&] {
        this->append(a, annals::ExpectedVersion::any(), this->events_with_ids({id, id}));
      },
      id.to_string());
  this->expect_invalid_argument(
      [&] {
        this->append_multi({{.stream_id = a,
                             .expected = annals::ExpectedVersion::any(),
                             .events = this->events_with_ids({id})},
                            {.stream_id = b,
                             .expected = annals::ExpectedVersion::any(),
                             .events = this->events_with_ids({id})}});
      },
      id.to_string());
  EXPECT_TRUE(this->read_own().empty());
}

TYPED_TEST_P(EventStoreContract, NilEventIdThrowsInvalidArgumentError) {
  const auto a = this->stream("a");
  this->expect_invalid_argument(
      [&] {
        this->append(a, annals::ExpectedVersion::any(), this->events_with_ids({annals::EventId{}}));
      },
      "nil");
  EXPECT_EQ(this->store().stream_version(a), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, GeneratedIdsAreDistinctAndNotNil) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::any(), this->events(150));
  this->append(s, annals::ExpectedVersion::any(), this->events(150));
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 300u);
  std::set<annals::EventId> ids;
  for (const auto& event : log) {
    EXPECT_FALSE(event.id.is_nil());
    ids.insert(event.id);
  }
  EXPECT_EQ(ids.size(), 300u);
}
