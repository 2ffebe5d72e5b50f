// EventStore contract, stream lifecycle: soft delete (a tombstone that refuses later appends
// unless they reopen the stream, and stays in the log), and retention rules (stream metadata)
// that stream reads honour while the global log keeps every event.
//
// Part of the EventStore contract (annals/testkit/event_store_contract.hpp, which registers
// every part's tests with GoogleTest): include that header, not this one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/testkit/event_store_contract/fixture.hpp"

namespace annals::testkit::contract_detail {

inline std::vector<StreamVersion> versions_of(const std::vector<RecordedEvent>& events) {
  std::vector<StreamVersion> versions;
  versions.reserve(events.size());
  for (const auto& event : events) versions.push_back(event.version);
  return versions;
}

inline StreamMetadata metadata(std::optional<std::int64_t> max_count,
                               std::optional<std::chrono::seconds> max_age,
                               std::optional<StreamVersion> truncate_before) {
  StreamMetadata out;
  out.max_count = max_count;
  out.max_age = max_age;
  out.truncate_before = truncate_before;
  return out;
}

/// Asserts that `call` throws StreamDeletedError for `stream` with its tombstone at `version`.
template <typename F>
void expect_stream_deleted(F&& call, const StreamId& stream, StreamVersion version) {
  auto error = catch_error<StreamDeletedError>(std::forward<F>(call));
  ASSERT_TRUE(error.has_value()) << "expected StreamDeletedError on " << stream.value();
  EXPECT_EQ(error->code(), ErrorCode::kNotFound);
  EXPECT_FALSE(error->retryable());
  EXPECT_EQ(error->stream_id(), stream);
  EXPECT_EQ(error->deleted_version(), version);
  EXPECT_THAT(error->what(), ::testing::HasSubstr(stream.value()));
}

}  // namespace annals::testkit::contract_detail

// ---- Soft delete ------------------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, DeleteStreamAppendsATombstoneAndReportsTheStreamDeleted) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(2));
  EXPECT_FALSE(this->store().stream_state(s).deleted);
  const auto result = this->store().delete_stream(s, annals::ExpectedVersion::exact(2));
  EXPECT_EQ(result.stream_id, s);
  EXPECT_EQ(result.first_version, 3);
  EXPECT_EQ(result.last_version, 3);
  const auto state = this->store().stream_state(s);
  EXPECT_TRUE(state.deleted);
  EXPECT_EQ(state.version, 3);
  EXPECT_TRUE(state.metadata.empty());
  EXPECT_EQ(this->store().stream_version(s), 3);
  // The stream reads as stored, the tombstone last.
  const auto events = this->store().read_stream(s);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events.back().type, annals::kStreamDeletedType);
  EXPECT_EQ(events.back().version, 3);
  EXPECT_EQ(events.back().position, result.position);
  EXPECT_EQ(events.front().type, "Happened");
}

TYPED_TEST_P(EventStoreContract, AppendToADeletedStreamThrowsStreamDeletedErrorAndWritesNothing) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(1));
  this->store().delete_stream(s, annals::ExpectedVersion::any());
  // Whatever the expectation (even the right version), one event or several.
  annals::testkit::contract_detail::expect_stream_deleted(
      [&] { this->append(s, annals::ExpectedVersion::any(), this->events(1)); }, s, 2);
  annals::testkit::contract_detail::expect_stream_deleted(
      [&] { this->append(s, annals::ExpectedVersion::exact(2), this->events(3)); }, s, 2);
  annals::testkit::contract_detail::expect_stream_deleted(
      [&] { this->append(s, annals::ExpectedVersion::stream_exists(), this->events(1)); }, s, 2);
  EXPECT_EQ(this->store().stream_version(s), 2);
  EXPECT_EQ(this->read_own().size(), 2u);
}

TYPED_TEST_P(EventStoreContract, AppendMultiWithADeletedStreamWritesNothing) {
  const auto live = this->stream("live");
  const auto gone = this->stream("gone");
  this->append(live, annals::ExpectedVersion::no_stream(), this->events(1));
  this->append(gone, annals::ExpectedVersion::no_stream(), this->events(1));
  this->store().delete_stream(gone, annals::ExpectedVersion::exact(1));
  annals::testkit::contract_detail::expect_stream_deleted(
      [&] {
        this->append_multi({{.stream_id = live,
                             .expected = annals::ExpectedVersion::exact(1),
                             .events = this->events(1)},
                            {.stream_id = gone,
                             .expected = annals::ExpectedVersion::exact(2),
                             .events = this->events(1)}});
      },
      gone, 2);
  EXPECT_EQ(this->store().stream_version(live), 1);
  EXPECT_EQ(this->store().stream_version(gone), 2);
}

TYPED_TEST_P(EventStoreContract, ReopenAppendsAfterTheTombstoneAndTheStreamIsLiveAgain) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(2));
  this->store().delete_stream(s, annals::ExpectedVersion::exact(2));
  // Reopening still checks the expected version: the tombstone is version 3.
  this->expect_concurrency_error(
      [&] {
        this->append_multi({{.stream_id = s,
                             .expected = annals::ExpectedVersion::exact(2),
                             .events = this->events(1),
                             .reopen = true}});
      },
      s, "2", 3);
  const auto results = this->append_multi({{.stream_id = s,
                                            .expected = annals::ExpectedVersion::exact(3),
                                            .events = this->events(2),
                                            .reopen = true}});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].first_version, 4);
  EXPECT_EQ(results[0].last_version, 5);
  EXPECT_FALSE(this->store().stream_state(s).deleted);
  // Live again: ordinary appends go on.
  EXPECT_EQ(this->append(s, annals::ExpectedVersion::exact(5), this->events(1)).last_version, 6);
  const auto events = this->store().read_stream(s);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[2].type, annals::kStreamDeletedType);
  // Reopening a stream that is not deleted is an ordinary append.
  EXPECT_EQ(this->append_multi({{.stream_id = s,
                                 .expected = annals::ExpectedVersion::exact(6),
                                 .events = this->events(1),
                                 .reopen = true}})
                .front()
                .last_version,
            7);
}

TYPED_TEST_P(EventStoreContract, DeleteStreamChecksTheExpectedVersion) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(2));
  this->expect_concurrency_error(
      [&] { this->store().delete_stream(s, annals::ExpectedVersion::exact(1)); }, s, "1", 2);
  EXPECT_FALSE(this->store().stream_state(s).deleted);
  EXPECT_EQ(this->store().stream_version(s), 2);
  EXPECT_TRUE(
      this->store().delete_stream(s, annals::ExpectedVersion::stream_exists()).last_version == 3);
}

TYPED_TEST_P(EventStoreContract, DeletingAStreamWithoutEventsIsRefused) {
  const auto s = this->stream("missing");
  const auto not_found = annals::testkit::contract_detail::catch_error<annals::NotFoundError>(
      [&] { this->store().delete_stream(s, annals::ExpectedVersion::any()); });
  ASSERT_TRUE(not_found.has_value());
  EXPECT_THAT(not_found->what(), ::testing::HasSubstr(s.value()));
  this->expect_invalid_argument(
      [&] { this->store().delete_stream(s, annals::ExpectedVersion::no_stream()); }, s.value());
  this->expect_invalid_argument(
      [&] { this->store().delete_stream(s, annals::ExpectedVersion::exact(0)); }, s.value());
  EXPECT_FALSE(this->store().stream_version(s).has_value());
  EXPECT_FALSE(this->store().stream_state(s).deleted);
}

TYPED_TEST_P(EventStoreContract, DeletingADeletedStreamThrowsStreamDeletedError) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(1));
  this->store().delete_stream(s, annals::ExpectedVersion::exact(1));
  annals::testkit::contract_detail::expect_stream_deleted(
      [&] { this->store().delete_stream(s, annals::ExpectedVersion::any()); }, s, 2);
  EXPECT_EQ(this->store().stream_version(s), 2);
}

TYPED_TEST_P(EventStoreContract, DeletedStreamsEventsAndTombstoneStayInTheGlobalLog) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(2));
  const auto tombstone = this->store().delete_stream(s, annals::ExpectedVersion::exact(2));
  // Noted so that read_own() waits for it to settle.
  this->append(this->stream("other"), annals::ExpectedVersion::no_stream(), this->events(1));
  const auto own = this->read_own();
  std::vector<std::string> types;
  for (const auto& event : own) {
    if (event.stream_id == s) types.push_back(event.type);
  }
  EXPECT_THAT(types, ::testing::ElementsAre("Happened", "Happened",
                                            std::string(annals::kStreamDeletedType)));
  const auto only_tombstones = this->read_filtered(annals::EventFilter{
      .category = this->category(), .event_types = {std::string(annals::kStreamDeletedType)}});
  ASSERT_EQ(only_tombstones.size(), 1u);
  EXPECT_EQ(only_tombstones[0].position, tombstone.position);
}

TYPED_TEST_P(EventStoreContract, ExactResendAfterDeleteReturnsTheOriginalResult) {
  const auto s = this->stream("a");
  const auto ids = this->new_ids(2);
  const auto original =
      this->append(s, annals::ExpectedVersion::no_stream(), this->events_with_ids(ids));
  this->store().delete_stream(s, annals::ExpectedVersion::exact(2));
  EXPECT_EQ(this->append(s, annals::ExpectedVersion::no_stream(), this->events_with_ids(ids)),
            original);
  EXPECT_EQ(this->store().stream_version(s), 3);
}

TYPED_TEST_P(EventStoreContract, TombstoneTypeIsRefusedWithinALargerAppend) {
  const auto s = this->stream("a");
  auto batch = this->events(1);
  batch.push_back(this->event(std::string(annals::kStreamDeletedType)));
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                std::string(annals::kStreamDeletedType));
  EXPECT_FALSE(this->store().stream_version(s).has_value());
}

// Writers that raced with one expected version: exactly one wins, a delete or an append.
// Losers of a won delete get StreamDeletedError (a deleted stream refuses appends before its
// version is compared); losers of a won append get ConcurrencyError.
TYPED_TEST_P(EventStoreContract, DeleteRacingAppendsWithTheSameExpectedVersionLetsExactlyOneWin) {
  constexpr int kRounds = 4;
  constexpr int kWriters = 6;  // half delete, half append
  for (int round = 0; round < kRounds; ++round) {
    const auto s = this->stream("race" + std::to_string(round));
    this->append(s, annals::ExpectedVersion::no_stream(), this->events(1));
    std::latch start(kWriters);
    std::mutex mutex;
    int deletes_won = 0;
    int appends_won = 0;
    int deleted_errors = 0;
    int conflicts = 0;
    std::vector<std::string> other_errors;
    {
      std::vector<std::jthread> threads;
      for (int w = 0; w < kWriters; ++w) {
        threads.emplace_back([&, w] {
          start.arrive_and_wait();
          try {
            if (w % 2 == 0) {
              this->store().delete_stream(s, annals::ExpectedVersion::exact(1));
              std::lock_guard lock(mutex);
              ++deletes_won;
            } else {
              this->append(s, annals::ExpectedVersion::exact(1), this->events(1));
              std::lock_guard lock(mutex);
              ++appends_won;
            }
          } catch (const annals::StreamDeletedError&) {
            std::lock_guard lock(mutex);
            ++deleted_errors;
          } catch (const annals::ConcurrencyError& e) {
            std::lock_guard lock(mutex);
            ++conflicts;
            EXPECT_EQ(e.actual(), 2);
          } catch (const std::exception& e) {
            std::lock_guard lock(mutex);
            other_errors.emplace_back(e.what());
          }
        });
      }
    }
    EXPECT_THAT(other_errors, ::testing::IsEmpty());
    EXPECT_EQ(deletes_won + appends_won, 1) << "round " << round;
    EXPECT_EQ(deleted_errors + conflicts, kWriters - 1) << "round " << round;
    EXPECT_EQ(this->store().stream_version(s), 2);
    EXPECT_EQ(this->store().stream_state(s).deleted, deletes_won == 1);
    // A delete that lost saw the stream at version 2 either way; an append that lost to a
    // delete was told the stream is deleted.
    if (appends_won == 1) {
      EXPECT_EQ(deleted_errors, 0);
    }
  }
}

// ---- Stream metadata (retention rules) --------------------------------------------------

TYPED_TEST_P(EventStoreContract, StreamMetadataIsSetReplacedAndCleared) {
  using annals::testkit::contract_detail::metadata;
  const auto s = this->stream("a");
  // A stream need not exist to have rules.
  const auto rules = metadata(10, std::chrono::seconds(3600), 2);
  this->store().set_stream_metadata(s, rules);
  EXPECT_EQ(this->store().stream_state(s).metadata, rules);
  EXPECT_FALSE(this->store().stream_state(s).version.has_value());
  const auto replaced = metadata(std::nullopt, std::nullopt, 5);
  this->store().set_stream_metadata(s, replaced);
  EXPECT_EQ(this->store().stream_state(s).metadata, replaced);
  this->store().set_stream_metadata(s, {});
  EXPECT_TRUE(this->store().stream_state(s).metadata.empty());
}

TYPED_TEST_P(EventStoreContract, StreamMetadataOutOfRangeThrowsInvalidArgumentError) {
  using annals::testkit::contract_detail::metadata;
  const auto s = this->stream("a");
  this->expect_invalid_argument(
      [&] { this->store().set_stream_metadata(s, metadata(0, std::nullopt, std::nullopt)); },
      "max_count");
  this->expect_invalid_argument(
      [&] {
        this->store().set_stream_metadata(
            s, metadata(std::nullopt, std::chrono::seconds(0), std::nullopt));
      },
      "max_age");
  this->expect_invalid_argument(
      [&] { this->store().set_stream_metadata(s, metadata(std::nullopt, std::nullopt, 0)); },
      "truncate_before");
  EXPECT_TRUE(this->store().stream_state(s).metadata.empty());
}

TYPED_TEST_P(EventStoreContract, ReadStreamHonoursTruncateBeforeAndKeepsVersions) {
  using annals::testkit::contract_detail::metadata;
  using annals::testkit::contract_detail::versions_of;
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(5));
  this->store().set_stream_metadata(s, metadata(std::nullopt, std::nullopt, 3));
  EXPECT_THAT(versions_of(this->store().read_stream(s)), ::testing::ElementsAre(3, 4, 5));
  EXPECT_THAT(versions_of(this->store().read_stream(
                  s, this->stream_options(annals::ReadDirection::kBackward))),
              ::testing::ElementsAre(5, 4, 3));
  EXPECT_THAT(versions_of(this->store().read_stream(
                  s, this->stream_options(annals::ReadDirection::kForward, 1, 2))),
              ::testing::ElementsAre(3, 4));
  EXPECT_THAT(versions_of(this->store().read_stream(
                  s, this->stream_options(annals::ReadDirection::kBackward, 2))),
              ::testing::IsEmpty());
  // The stream's version and the global log are unchanged.
  EXPECT_EQ(this->store().stream_version(s), 5);
  EXPECT_EQ(this->read_own().size(), 5u);
  // Appends go on at the next version.
  EXPECT_EQ(this->append(s, annals::ExpectedVersion::exact(5), this->events(1)).last_version, 6);
}

TYPED_TEST_P(EventStoreContract, ReadStreamHonoursMaxCount) {
  using annals::testkit::contract_detail::metadata;
  using annals::testkit::contract_detail::versions_of;
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(5));
  this->store().set_stream_metadata(s, metadata(2, std::nullopt, std::nullopt));
  EXPECT_THAT(versions_of(this->store().read_stream(s)), ::testing::ElementsAre(4, 5));
  this->append(s, annals::ExpectedVersion::exact(5), this->events(1));
  EXPECT_THAT(versions_of(this->store().read_stream(s)), ::testing::ElementsAre(5, 6));
  EXPECT_THAT(versions_of(this->store().read_stream(
                  s, this->stream_options(annals::ReadDirection::kBackward))),
              ::testing::ElementsAre(6, 5));
  // With truncate_before too, the stricter rule wins.
  this->store().set_stream_metadata(s, metadata(4, std::nullopt, 5));
  EXPECT_THAT(versions_of(this->store().read_stream(s)), ::testing::ElementsAre(5, 6));
  this->store().set_stream_metadata(s, {});
  EXPECT_EQ(this->store().read_stream(s).size(), 6u);
  EXPECT_EQ(this->read_own().size(), 6u);
}

// max_age is counted in seconds against the store's clock, so this test waits (on the clock,
// not for another thread) until the first events are more than a second old.
TYPED_TEST_P(EventStoreContract, ReadStreamHonoursMaxAge) {
  using annals::testkit::contract_detail::metadata;
  using annals::testkit::contract_detail::versions_of;
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(2));
  this->store().set_stream_metadata(
      s, metadata(std::nullopt, std::chrono::seconds(3600), std::nullopt));
  EXPECT_EQ(this->store().read_stream(s).size(), 2u);
  const auto recorded = this->store().read_stream(s).back().recorded_at;
  while (std::chrono::system_clock::now() < recorded + std::chrono::milliseconds(2500)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // waiting for time to pass
  }
  this->store().set_stream_metadata(s,
                                    metadata(std::nullopt, std::chrono::seconds(1), std::nullopt));
  EXPECT_THAT(this->store().read_stream(s), ::testing::IsEmpty());
  this->append(s, annals::ExpectedVersion::exact(2), this->events(1));
  EXPECT_THAT(versions_of(this->store().read_stream(s)), ::testing::ElementsAre(3));
  EXPECT_EQ(this->store().stream_version(s), 3);
  EXPECT_EQ(this->read_own().size(), 3u);
}

TYPED_TEST_P(EventStoreContract, StreamMetadataAndDeleteTogether) {
  using annals::testkit::contract_detail::metadata;
  using annals::testkit::contract_detail::versions_of;
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::no_stream(), this->events(3));
  this->store().set_stream_metadata(s, metadata(1, std::nullopt, std::nullopt));
  this->store().delete_stream(s, annals::ExpectedVersion::exact(3));
  // The rules hide old events, never the deletion: the state says deleted whatever they hide.
  EXPECT_THAT(versions_of(this->store().read_stream(s)), ::testing::ElementsAre(4));
  const auto state = this->store().stream_state(s);
  EXPECT_TRUE(state.deleted);
  EXPECT_EQ(state.metadata.max_count, 1);
  this->store().set_stream_metadata(s, metadata(std::nullopt, std::nullopt, 10));
  EXPECT_THAT(this->store().read_stream(s), ::testing::IsEmpty());
  EXPECT_TRUE(this->store().stream_state(s).deleted);
}
