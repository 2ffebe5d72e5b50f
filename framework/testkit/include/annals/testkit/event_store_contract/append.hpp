// EventStore contract, appends: every expected-version rule (any, no stream, stream exists,
// exact), conflicts under concurrency with exactly one winner, and multi-stream appends that
// write every stream or none.
//
// Part of the EventStore contract (annals/testkit/event_store_contract.hpp, which registers
// every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/testkit/event_store_contract/fixture.hpp"

// ---- Expected versions ------------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, AppendWithAnyToNewStreamSucceeds) {
  const auto s = this->stream("a");
  const auto result = this->append(s, annals::ExpectedVersion::any(), this->events(2));
  EXPECT_EQ(result.stream_id, s);
  EXPECT_EQ(result.first_version, 1);
  EXPECT_EQ(result.last_version, 2);
  EXPECT_EQ(this->store().stream_version(s), 2);
}

TYPED_TEST_P(EventStoreContract, AppendWithAnyToExistingStreamSucceeds) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::any(), this->events(1));
  const auto result = this->append(s, annals::ExpectedVersion::any(), this->events(2));
  EXPECT_EQ(result.first_version, 2);
  EXPECT_EQ(result.last_version, 3);
  EXPECT_EQ(this->store().stream_version(s), 3);
}

TYPED_TEST_P(EventStoreContract, AppendWithNoStreamToNewStreamSucceeds) {
  const auto s = this->stream("a");
  const auto result = this->append(s, annals::ExpectedVersion::no_stream(), this->events(3));
  EXPECT_EQ(result.first_version, 1);
  EXPECT_EQ(result.last_version, 3);
  EXPECT_EQ(this->store().stream_version(s), 3);
}

TYPED_TEST_P(EventStoreContract, AppendWithNoStreamToExistingStreamThrowsConcurrencyError) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::any(), this->events(1));
  this->expect_concurrency_error(
      [&] { this->append(s, annals::ExpectedVersion::no_stream(), this->events(1)); }, s,
      "no-stream", 1);
  EXPECT_EQ(this->store().stream_version(s), 1);
  EXPECT_EQ(this->read_own().size(), 1u);
}

TYPED_TEST_P(EventStoreContract, AppendWithExactZeroToNewStreamSucceeds) {
  const auto s = this->stream("a");
  const auto result = this->append(s, annals::ExpectedVersion::exact(0), this->events(2));
  EXPECT_EQ(result.first_version, 1);
  EXPECT_EQ(result.last_version, 2);
}

TYPED_TEST_P(EventStoreContract, AppendWithExactZeroToExistingStreamThrowsConcurrencyError) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::any(), this->events(2));
  this->expect_concurrency_error(
      [&] { this->append(s, annals::ExpectedVersion::exact(0), this->events(1)); }, s, "0", 2);
  EXPECT_EQ(this->store().stream_version(s), 2);
}

TYPED_TEST_P(EventStoreContract, AppendWithStreamExistsToExistingStreamSucceeds) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::any(), this->events(1));
  const auto result = this->append(s, annals::ExpectedVersion::stream_exists(), this->events(1));
  EXPECT_EQ(result.first_version, 2);
  EXPECT_EQ(result.last_version, 2);
}

TYPED_TEST_P(EventStoreContract, AppendWithStreamExistsToNewStreamThrowsConcurrencyError) {
  const auto s = this->stream("a");
  this->expect_concurrency_error(
      [&] { this->append(s, annals::ExpectedVersion::stream_exists(), this->events(1)); }, s,
      "exists", std::nullopt);
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
  EXPECT_TRUE(this->store().read_stream(s).empty());
}

TYPED_TEST_P(EventStoreContract, AppendWithCorrectExactVersionSucceeds) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(2));
  const auto second = this->append(s, annals::ExpectedVersion::exact(2), this->events(3));
  EXPECT_EQ(second.first_version, 3);
  EXPECT_EQ(second.last_version, 5);
  const auto third = this->append(s, annals::ExpectedVersion::exact(5), this->events(1));
  EXPECT_EQ(third.first_version, 6);
  EXPECT_EQ(third.last_version, 6);
}

TYPED_TEST_P(EventStoreContract, AppendWithWrongExactVersionThrowsConcurrencyError) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(2));
  this->expect_concurrency_error(
      [&] { this->append(s, annals::ExpectedVersion::exact(1), this->events(1)); }, s, "1", 2);
  this->expect_concurrency_error(
      [&] { this->append(s, annals::ExpectedVersion::exact(3), this->events(1)); }, s, "3", 2);
  EXPECT_EQ(this->store().stream_version(s), 2);
  EXPECT_EQ(this->read_own().size(), 2u);
}

TYPED_TEST_P(EventStoreContract, AppendWithExactVersionToMissingStreamThrowsConcurrencyError) {
  const auto s = this->stream("a");
  this->expect_concurrency_error(
      [&] { this->append(s, annals::ExpectedVersion::exact(1), this->events(1)); }, s, "1",
      std::nullopt);
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, ConcurrentAppendsWithSameExactVersionLetExactlyOneWin) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(1));
  constexpr int kWriters = 8;
  const auto race = this->race_appends(s, annals::ExpectedVersion::exact(1), 2, kWriters);
  EXPECT_EQ(race.successes, 1);
  EXPECT_THAT(race.other_errors, ::testing::IsEmpty());
  ASSERT_EQ(race.conflicts.size(), static_cast<std::size_t>(kWriters - 1));
  for (const auto& conflict : race.conflicts) {
    EXPECT_EQ(conflict.stream(), s.value());
    EXPECT_EQ(conflict.expected(), "1");
    EXPECT_EQ(conflict.actual(), 3);
  }
  EXPECT_EQ(this->store().stream_version(s), 3);
}

TYPED_TEST_P(EventStoreContract, ConcurrentCreationOfOneStreamLetsExactlyOneWin) {
  const auto s = this->stream("a");
  constexpr int kWriters = 8;
  const auto race = this->race_appends(s, annals::ExpectedVersion::no_stream(), 1, kWriters);
  EXPECT_EQ(race.successes, 1);
  EXPECT_THAT(race.other_errors, ::testing::IsEmpty());
  ASSERT_EQ(race.conflicts.size(), static_cast<std::size_t>(kWriters - 1));
  for (const auto& conflict : race.conflicts) {
    EXPECT_EQ(conflict.expected(), "no-stream");
    EXPECT_EQ(conflict.actual(), 1);
  }
  EXPECT_EQ(this->store().stream_version(s), 1);
}

// ---- Multi-stream appends ---------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, AppendMultiWritesEveryStreamInRequestOrder) {
  const auto b = this->stream("b");
  const auto a = this->stream("a");
  this->append(b, annals::ExpectedVersion::no_stream(), this->events(1));
  const auto results = this->append_multi(
      {{.stream_id = b, .expected = annals::ExpectedVersion::exact(1), .events = this->events(2)},
       {.stream_id = a,
        .expected = annals::ExpectedVersion::no_stream(),
        .events = this->events(2)}});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].stream_id, b);
  EXPECT_EQ(results[0].first_version, 2);
  EXPECT_EQ(results[0].last_version, 3);
  EXPECT_EQ(results[1].stream_id, a);
  EXPECT_EQ(results[1].first_version, 1);
  EXPECT_EQ(results[1].last_version, 2);

  const auto log = this->read_own();
  ASSERT_EQ(log.size(), 5u);
  const std::vector<std::pair<annals::StreamId, annals::StreamVersion>> expected{
      {b, 1}, {b, 2}, {b, 3}, {a, 1}, {a, 2}};
  for (std::size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].stream_id, expected[i].first) << "at " << i;
    EXPECT_EQ(log[i].version, expected[i].second) << "at " << i;
  }
  EXPECT_EQ(results[0].position, log[2].position);
  EXPECT_EQ(results[1].position, log[4].position);
}

TYPED_TEST_P(EventStoreContract, AppendMultiWithConflictInSecondStreamWritesNothing) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  this->append(b, annals::ExpectedVersion::no_stream(), this->events(1));
  this->expect_concurrency_error(
      [&] {
        this->append_multi({{.stream_id = a,
                             .expected = annals::ExpectedVersion::no_stream(),
                             .events = this->events(2)},
                            {.stream_id = b,
                             .expected = annals::ExpectedVersion::no_stream(),
                             .events = this->events(1)}});
      },
      b, "no-stream", 1);
  EXPECT_EQ(this->store().stream_version(a), std::nullopt);
  EXPECT_EQ(this->store().stream_version(b), 1);
  EXPECT_EQ(this->read_own().size(), 1u);
}

TYPED_TEST_P(EventStoreContract, AppendMultiConflictNamesFirstFailingStreamInRequestOrder) {
  const auto z = this->stream("z");
  const auto a = this->stream("a");
  this->append(z, annals::ExpectedVersion::no_stream(), this->events(1));
  this->append(a, annals::ExpectedVersion::no_stream(), this->events(1));
  this->expect_concurrency_error(
      [&] {
        this->append_multi({{.stream_id = z,
                             .expected = annals::ExpectedVersion::exact(5),
                             .events = this->events(1)},
                            {.stream_id = a,
                             .expected = annals::ExpectedVersion::exact(5),
                             .events = this->events(1)}});
      },
      z, "5", 1);
  EXPECT_EQ(this->read_own().size(), 2u);
}

TYPED_TEST_P(EventStoreContract, AppendMultiWithRepeatedStreamThrowsInvalidArgumentError) {
  const auto a = this->stream("a");
  this->expect_invalid_argument(
      [&] {
        this->append_multi({{.stream_id = a,
                             .expected = annals::ExpectedVersion::any(),
                             .events = this->events(1)},
                            {.stream_id = a,
                             .expected = annals::ExpectedVersion::any(),
                             .events = this->events(1)}});
      },
      a.value());
  EXPECT_EQ(this->store().stream_version(a), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, AppendMultiWithNoStreamsThrowsInvalidArgumentError) {
  this->expect_invalid_argument([&] { this->append_multi({}); }, "no streams");
}

TYPED_TEST_P(EventStoreContract, AppendMultiWithAnEmptyPartWritesNothing) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  this->expect_invalid_argument(
      [&] {
        this->append_multi(
            {{.stream_id = a,
              .expected = annals::ExpectedVersion::any(),
              .events = this->events(1)},
             {.stream_id = b, .expected = annals::ExpectedVersion::any(), .events = {}}});
      },
      b.value());
  EXPECT_EQ(this->store().stream_version(a), std::nullopt);
  EXPECT_TRUE(this->read_own().empty());
}
