// The EventStore contract: one GoogleTest typed test suite that every EventStore must pass,
// ours (in-memory, PostgreSQL) and third parties' (ARCHITECTURE decision 1). A behaviour that
// passes on one store and fails on another is a bug.
//
//   struct MyStoreFactory {
//     static std::unique_ptr<annals::EventStore> make() { return make_my_store(); }
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(MyStore, EventStoreContract, MyStoreFactory);
//
// Requires of the factory: every call returns a usable store. Stores may share data between
// calls (the PostgreSQL factory reuses one database): each test writes only to streams of its
// own random category and never assumes that the global log starts empty.
//
// Thread safety: the tests drive the store from several threads, as the interface allows.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <latch>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/testkit/contract_support.hpp"
#include "annals/testkit/printers.hpp"

namespace annals::testkit {
namespace contract_detail {

/// Collects what a subscription delivers; handler() may be called from the subscription's
/// thread while the test reads events().
class Collector {
 public:
  EventHandler handler() {
    return [this](const RecordedEvent& event) {
      std::lock_guard lock(mutex_);
      events_.push_back(event);
    };
  }

  std::vector<RecordedEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<RecordedEvent> events_;
};

inline std::vector<EventId> ids_of(const std::vector<RecordedEvent>& events) {
  std::vector<EventId> ids;
  ids.reserve(events.size());
  for (const auto& event : events) ids.push_back(event.id);
  return ids;
}

}  // namespace contract_detail

/// The fixture of the contract suite. `Factory::make()` is called once per test.
template <typename Factory>
class EventStoreContract : public ::testing::Test {
 protected:
  /// Generous bound for asynchronous delivery; tests wait for a condition, never a duration.
  static constexpr std::chrono::milliseconds kTimeout{30'000};

  void SetUp() override {
    store_ = Factory::make();
    ASSERT_NE(store_, nullptr) << "the factory returned no store";
    category_ = "contract" + contract_detail::random_hex(16);
  }

  EventStore& store() { return *store_; }
  const std::string& category() const { return category_; }

  /// A stream of this test's category: "<category>-<name>".
  StreamId stream(std::string_view name) const {
    return StreamId(category_ + "-" + std::string(name));
  }

  /// A filter that selects this test's events.
  EventFilter own_events() const { return EventFilter{.category = category_, .event_types = {}}; }

  /// Options of read_stream (named fields spelled out: g++ 12 warns about designated
  /// initializers that leave members out).
  static ReadStreamOptions stream_options(
      ReadDirection direction, std::optional<StreamVersion> from = std::nullopt,
      std::size_t max_count = std::numeric_limits<std::size_t>::max()) {
    ReadStreamOptions options;
    options.direction = direction;
    options.from = from;
    options.max_count = max_count;
    return options;
  }

  /// Options of subscribe() with the default poll interval.
  static SubscriptionOptions subscription_options(EventFilter filter,
                                                  Position after = Position::start(),
                                                  std::size_t batch_size = 500) {
    SubscriptionOptions options;
    options.after = after;
    options.filter = std::move(filter);
    options.batch_size = batch_size;
    return options;
  }

  /// Appends through the store and remembers the position of this test's newest event, so
  /// that reads of the global log can wait for it to settle (see await_settled()).
  /// Thread-safe.
  AppendResult append(const StreamId& stream, const ExpectedVersion& expected,
                      std::vector<NewEvent> events) {
    auto result = store_->append(stream, expected, std::move(events));
    note_written(result);
    return result;
  }

  /// Like append(), for append_multi(). Thread-safe.
  std::vector<AppendResult> append_multi(std::vector<StreamAppend> appends) {
    auto results = store_->append_multi(std::move(appends));
    for (const auto& result : results) note_written(result);
    return results;
  }

  /// Waits until the global log shows the newest event this test appended. A store may hold
  /// back committed events until every earlier-ordered transaction has settled (ARCHITECTURE
  /// decision 5), e.g. while another test's transaction is open on the same server.
  void await_settled() {
    std::optional<Position> target;
    {
      std::lock_guard lock(written_mutex_);
      target = newest_written_;
    }
    if (!target) return;
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (settled_ < *target) {
      const auto page =
          store_->read_all({.after = settled_, .max_count = 1000, .filter = own_events()});
      if (!page.empty()) {
        settled_ = page.back().position;
        continue;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the global log never showed position " << target->to_string();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // back-off, not a sync
    }
  }

  /// Every event of the global log after `after` that `filter` matches, read page by page
  /// once this test's appends have settled.
  std::vector<RecordedEvent> read_filtered(const EventFilter& filter,
                                           Position after = Position::start()) {
    await_settled();
    std::vector<RecordedEvent> all;
    while (true) {
      auto page = store_->read_all({.after = after, .max_count = 1000, .filter = filter});
      if (page.empty()) return all;
      after = page.back().position;
      all.insert(all.end(), page.begin(), page.end());
    }
  }

  /// Every event of this test's category, in log order.
  std::vector<RecordedEvent> read_own() { return read_filtered(own_events()); }

  static NewEvent event(std::string type, nlohmann::json data = nlohmann::json::object()) {
    NewEvent out;
    out.type = std::move(type);
    out.data = std::move(data);
    return out;
  }

  /// `count` events of type `type` with data {"n": <index>}.
  static std::vector<NewEvent> events(std::size_t count, const std::string& type = "Happened") {
    std::vector<NewEvent> out;
    for (std::size_t i = 0; i < count; ++i) out.push_back(event(type, {{"n", i}}));
    return out;
  }

  static std::vector<EventId> new_ids(std::size_t count) {
    std::vector<EventId> ids;
    for (std::size_t i = 0; i < count; ++i) ids.push_back(EventId::generate());
    return ids;
  }

  /// Events carrying the given ids, one each.
  static std::vector<NewEvent> events_with_ids(const std::vector<EventId>& ids) {
    auto out = events(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) out[i].id = ids[i];
    return out;
  }

  /// Asserts that `call` throws InvalidArgumentError whose message contains `mention`.
  template <typename F>
  static void expect_invalid_argument(F&& call, const std::string& mention) {
    auto error = contract_detail::catch_error<InvalidArgumentError>(std::forward<F>(call));
    ASSERT_TRUE(error.has_value()) << "expected InvalidArgumentError mentioning " << mention;
    EXPECT_EQ(error->code(), ErrorCode::kInvalidArgument);
    EXPECT_FALSE(error->retryable());
    EXPECT_THAT(error->what(), ::testing::HasSubstr(mention));
  }

  /// Asserts that `call` throws ConcurrencyError with exactly these fields.
  template <typename F>
  static void expect_concurrency_error(F&& call, const StreamId& stream,
                                       const std::string& expected,
                                       std::optional<StreamVersion> actual) {
    auto error = contract_detail::catch_error<ConcurrencyError>(std::forward<F>(call));
    ASSERT_TRUE(error.has_value()) << "expected ConcurrencyError on " << stream.value();
    EXPECT_EQ(error->code(), ErrorCode::kConcurrency);
    EXPECT_TRUE(error->retryable());
    EXPECT_EQ(error->stream(), stream.value());
    EXPECT_EQ(error->expected(), expected);
    EXPECT_EQ(error->actual(), actual);
  }

  /// Asserts that `call` throws IdempotencyError.
  template <typename F>
  static void expect_idempotency_error(F&& call) {
    auto error = contract_detail::catch_error<IdempotencyError>(std::forward<F>(call));
    ASSERT_TRUE(error.has_value()) << "expected IdempotencyError";
    EXPECT_EQ(error->code(), ErrorCode::kIdempotency);
    EXPECT_FALSE(error->retryable());
  }

  /// Asserts that `call` throws IdempotencyError whose message contains every `mention`.
  template <typename F>
  static void expect_idempotency_error(F&& call, const std::vector<std::string>& mentions) {
    auto error = contract_detail::catch_error<IdempotencyError>(std::forward<F>(call));
    ASSERT_TRUE(error.has_value()) << "expected IdempotencyError";
    EXPECT_EQ(error->code(), ErrorCode::kIdempotency);
    EXPECT_FALSE(error->retryable());
    for (const auto& mention : mentions) {
      EXPECT_THAT(error->what(), ::testing::HasSubstr(mention));
    }
  }

 private:
  void note_written(const AppendResult& result) {
    if (result.stream_id.category() != category_) return;
    std::lock_guard lock(written_mutex_);
    if (!newest_written_ || *newest_written_ < result.position) newest_written_ = result.position;
  }

  std::unique_ptr<EventStore> store_;
  std::string category_;
  std::mutex written_mutex_;
  std::optional<Position> newest_written_;  // guarded by written_mutex_
  Position settled_;                        // test thread only
};

}  // namespace annals::testkit

// The suite lives at global scope so that users instantiate it with a one-liner at global
// scope: INSTANTIATE_TYPED_TEST_SUITE_P(Mine, EventStoreContract, MyFactory).
using annals::testkit::EventStoreContract;

TYPED_TEST_SUITE_P(EventStoreContract);

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
  std::latch start(kWriters);
  std::mutex mutex;
  int successes = 0;
  std::vector<annals::ConcurrencyError> conflicts;
  std::vector<std::string> other_errors;
  {
    std::vector<std::jthread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&] {
        start.arrive_and_wait();
        try {
          this->append(s, annals::ExpectedVersion::exact(1), this->events(2));
          std::lock_guard lock(mutex);
          ++successes;
        } catch (const annals::ConcurrencyError& e) {
          std::lock_guard lock(mutex);
          conflicts.push_back(e);
        } catch (const std::exception& e) {
          std::lock_guard lock(mutex);
          other_errors.emplace_back(e.what());
        }
      });
    }
  }
  EXPECT_EQ(successes, 1);
  EXPECT_THAT(other_errors, ::testing::IsEmpty());
  ASSERT_EQ(conflicts.size(), static_cast<std::size_t>(kWriters - 1));
  for (const auto& conflict : conflicts) {
    EXPECT_EQ(conflict.stream(), s.value());
    EXPECT_EQ(conflict.expected(), "1");
    EXPECT_EQ(conflict.actual(), 3);
  }
  EXPECT_EQ(this->store().stream_version(s), 3);
}

TYPED_TEST_P(EventStoreContract, ConcurrentCreationOfOneStreamLetsExactlyOneWin) {
  const auto s = this->stream("a");
  constexpr int kWriters = 8;
  std::latch start(kWriters);
  std::mutex mutex;
  int successes = 0;
  std::vector<annals::ConcurrencyError> conflicts;
  std::vector<std::string> other_errors;
  {
    std::vector<std::jthread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&] {
        start.arrive_and_wait();
        try {
          this->append(s, annals::ExpectedVersion::no_stream(), this->events(1));
          std::lock_guard lock(mutex);
          ++successes;
        } catch (const annals::ConcurrencyError& e) {
          std::lock_guard lock(mutex);
          conflicts.push_back(e);
        } catch (const std::exception& e) {
          std::lock_guard lock(mutex);
          other_errors.emplace_back(e.what());
        }
      });
    }
  }
  EXPECT_EQ(successes, 1);
  EXPECT_THAT(other_errors, ::testing::IsEmpty());
  ASSERT_EQ(conflicts.size(), static_cast<std::size_t>(kWriters - 1));
  for (const auto& conflict : conflicts) {
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

// A re-send of stored ids whose content differs is not idempotent (issue 11): it names the
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

// ---- Validation and limits ----------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, OversizedDataThrowsInvalidArgumentErrorAndWritesNothing) {
  const auto s = this->stream("a");
  const std::size_t limit = annals::AppendLimits{}.max_data_bytes;
  auto batch = this->events(2);
  batch[1].data = std::string(limit, 'x');  // serialized with its quotes: limit + 2 bytes
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "data");
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);

  batch[1].data = std::string(limit - 2, 'x');  // exactly at the limit
  this->append(s, annals::ExpectedVersion::any(), batch);
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].data, batch[1].data);
}

TYPED_TEST_P(EventStoreContract, OversizedMetadataThrowsInvalidArgumentErrorAndWritesNothing) {
  const auto s = this->stream("a");
  auto batch = this->events(1);
  batch[0].metadata = {{"blob", std::string(annals::AppendLimits{}.max_metadata_bytes, 'm')}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "metadata");
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, TooManyEventsThrowInvalidArgumentErrorAndWriteNothing) {
  const auto s = this->stream("a");
  const std::size_t limit = annals::AppendLimits{}.max_events_per_append;
  std::vector<annals::NewEvent> batch(limit + 1, this->event("Tiny"));
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                std::to_string(limit + 1));
  this->expect_invalid_argument(
      [&] {
        this->append_multi({{.stream_id = s,
                             .expected = annals::ExpectedVersion::any(),
                             .events = std::vector<annals::NewEvent>(limit, this->event("Tiny"))},
                            {.stream_id = this->stream("b"),
                             .expected = annals::ExpectedVersion::any(),
                             .events = this->events(1)}});
      },
      std::to_string(limit + 1));
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
  EXPECT_TRUE(this->read_own().empty());
}

TYPED_TEST_P(EventStoreContract, EmptyAppendThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), {}); },
                                s.value());
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, MetadataThatIsNotAnObjectThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  for (const auto& metadata : {nlohmann::json::array({1, 2}), nlohmann::json("text"),
                               nlohmann::json(nullptr), nlohmann::json(5)}) {
    auto batch = this->events(1);
    batch[0].metadata = metadata;
    this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                  "metadata");
  }
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, BadTypeNameThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  for (const std::string& type :
       {std::string(), std::string("Line\nBreak"), std::string("Tab\tbed"), std::string(257, 'T'),
        std::string("Bad\xff"
                    "Utf8"),
        std::string("Nul\0Byte", 8)}) {
    this->expect_invalid_argument(
        [&] { this->append(s, annals::ExpectedVersion::any(), {this->event(type)}); }, "type");
  }
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
  // The longest allowed name is accepted.
  this->append(s, annals::ExpectedVersion::any(), {this->event(std::string(256, 'T'))});
  EXPECT_EQ(this->store().read_stream(s).at(0).type, std::string(256, 'T'));
}

TYPED_TEST_P(EventStoreContract, SchemaVersionBelowOneThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  for (std::int32_t version : {0, -1}) {
    auto batch = this->events(1);
    batch[0].schema_version = version;
    this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                  "schema_version");
  }
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, InvalidUtf8InDataThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  auto batch = this->events(1);
  batch[0].data = {{"text", "caf\xc3"}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "data");
  batch = this->events(1);
  batch[0].metadata = {{"bad\xff", 1}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "metadata");
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, NulCharacterInDataThrowsInvalidArgumentError) {
  const auto s = this->stream("a");
  auto batch = this->events(1);
  batch[0].data = {{"text", std::string("a\0b", 3)}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "U+0000");
  batch[0].data = {{std::string("k\0", 2), 1}};
  this->expect_invalid_argument([&] { this->append(s, annals::ExpectedVersion::any(), batch); },
                                "U+0000");
  EXPECT_EQ(this->store().stream_version(s), std::nullopt);
}

TYPED_TEST_P(EventStoreContract, InvalidLaterEventWritesNothing) {
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  auto batch = this->events(3);
  batch[2].type = "";
  this->expect_invalid_argument([&] { this->append(a, annals::ExpectedVersion::any(), batch); },
                                "event 2");
  this->expect_invalid_argument(
      [&] {
        this->append_multi(
            {{.stream_id = a,
              .expected = annals::ExpectedVersion::any(),
              .events = this->events(2)},
             {.stream_id = b, .expected = annals::ExpectedVersion::any(), .events = batch}});
      },
      b.value());
  EXPECT_TRUE(this->read_own().empty());
}

// ---- Round trips --------------------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, DataMayBeAnyJsonValue) {
  const auto s = this->stream("a");
  const std::vector<nlohmann::json> values{nlohmann::json::array({1, "two", nullptr}),
                                           nlohmann::json("just text"),
                                           nlohmann::json(42),
                                           nlohmann::json(-2.5),
                                           nlohmann::json(nullptr),
                                           nlohmann::json(true),
                                           nlohmann::json::object()};
  std::vector<annals::NewEvent> batch;
  for (const auto& value : values) batch.push_back(this->event("Value", value));
  this->append(s, annals::ExpectedVersion::any(), batch);
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(log[i].data, values[i]) << i;
}

TYPED_TEST_P(EventStoreContract, UnicodeAndSqlMetacharactersRoundTripVerbatim) {
  const std::string tricky = "ünï'cödé\"; DROP TABLE events;-- \\ % _ $1 😀 日本語";
  const annals::StreamId s(this->category() + "-" + tricky);
  const std::string type =
      "Typ'e\"; --"
      "\\ 😀";
  const nlohmann::json data = {
      {"text", tricky},
      {tricky, {{"nested", tricky}, {"list", {tricky, "", "\\u0041", "line\nbreak\ttab"}}}},
      {"numbers", {0, -7, 123456789012345LL, 3.25, -0.5}},
      {"flags", {true, false, nullptr}}};
  const nlohmann::json metadata = {{"note", tricky}, {"empty", nlohmann::json::object()}};
  auto event = this->event(type, data);
  event.metadata = metadata;
  this->append(s, annals::ExpectedVersion::no_stream(), {event});
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].stream_id.value(), s.value());
  EXPECT_EQ(log[0].type, type);
  EXPECT_EQ(log[0].data, data);
  EXPECT_EQ(log[0].metadata, metadata);
  EXPECT_EQ(this->store().stream_version(s), 1);
  const auto all = this->read_own();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], log[0]);
}

TYPED_TEST_P(EventStoreContract, RecordedAtIsWithinTheAppendWindow) {
  const auto s = this->stream("a");
  // Stores may keep only microseconds and read the clock on another host: allow a margin.
  const auto slack = std::chrono::seconds(2);
  const auto before = std::chrono::system_clock::now();
  this->append(s, annals::ExpectedVersion::any(), this->events(3));
  const auto after = std::chrono::system_clock::now();
  const auto log = this->store().read_stream(s);
  ASSERT_EQ(log.size(), 3u);
  for (const auto& event : log) {
    EXPECT_GE(event.recorded_at, before - slack);
    EXPECT_LE(event.recorded_at, after + slack);
    EXPECT_EQ(event.recorded_at, log[0].recorded_at) << "events of one append share the time";
  }
}

// ---- Subscriptions ------------------------------------------------------------------------

TYPED_TEST_P(EventStoreContract, SubscriptionCatchesUpThenDeliversLiveEventsExactlyOnce) {
  constexpr std::size_t kHalf = 60;
  const auto a = this->stream("a");
  const auto b = this->stream("b");
  for (std::size_t done = 0, n = 1; done < kHalf; done += n, n = n % 4 + 1) {
    this->append(done % 2 == 0 ? a : b, annals::ExpectedVersion::any(),
                 this->events(std::min(n, kHalf - done)));
  }
  annals::testkit::contract_detail::Collector collector;
  auto subscription = this->store().subscribe(
      this->subscription_options(this->own_events(), annals::Position::start(), 7),
      collector.handler());
  std::optional<annals::AppendResult> last;
  {
    std::jthread writer([&] {
      for (std::size_t done = 0, n = 1; done < kHalf; done += n, n = n % 3 + 1) {
        last = this->append(done % 2 == 0 ? b : a, annals::ExpectedVersion::any(),
                            this->events(std::min(n, kHalf - done)));
      }
    });
  }
  ASSERT_TRUE(last.has_value());
  ASSERT_TRUE(subscription->wait_for(last->position, this->kTimeout));
  subscription->stop();
  EXPECT_EQ(subscription->stop_reason(), nullptr);
  const auto delivered = collector.events();
  EXPECT_EQ(delivered.size(), 2 * kHalf);
  EXPECT_EQ(delivered, this->read_own());
  EXPECT_EQ(subscription->position(), last->position);
}

TYPED_TEST_P(EventStoreContract, SubscriptionWithFilterDeliversOnlyMatchingEvents) {
  const auto s = this->stream("a");
  std::vector<annals::NewEvent> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(this->event(i % 2 == 0 ? "Wanted" : "Other"));
  this->append(s, annals::ExpectedVersion::any(), batch);
  const annals::EventFilter filter{.category = this->category(), .event_types = {"Wanted"}};
  annals::testkit::contract_detail::Collector collector;
  auto subscription =
      this->store().subscribe(this->subscription_options(filter), collector.handler());
  const auto more = this->append(s, annals::ExpectedVersion::any(),
                                 {this->event("Other"), this->event("Wanted")});
  ASSERT_TRUE(subscription->wait_for(more.position, this->kTimeout));
  subscription->stop();
  const auto delivered = collector.events();
  EXPECT_EQ(delivered, this->read_filtered(filter));
  EXPECT_EQ(delivered.size(), 6u);
  for (const auto& event : delivered) EXPECT_EQ(event.type, "Wanted");
}

TYPED_TEST_P(EventStoreContract, SubscriptionFromMidPositionDeliversOnlyLaterEvents) {
  const auto s = this->stream("a");
  std::vector<annals::AppendResult> results;
  for (int i = 0; i < 10; ++i) {
    results.push_back(this->append(s, annals::ExpectedVersion::any(), this->events(1)));
  }
  annals::testkit::contract_detail::Collector collector;
  auto subscription = this->store().subscribe(
      this->subscription_options(this->own_events(), results[3].position), collector.handler());
  ASSERT_TRUE(subscription->wait_for(results.back().position, this->kTimeout));
  subscription->stop();
  const auto delivered = collector.events();
  ASSERT_EQ(delivered.size(), 6u);
  for (std::size_t i = 0; i < delivered.size(); ++i) {
    EXPECT_EQ(delivered[i].version, static_cast<annals::StreamVersion>(i + 5));
  }
}

TYPED_TEST_P(EventStoreContract, SubscriptionHandlerExceptionBecomesStopReason) {
  const auto s = this->stream("a");
  this->append(s, annals::ExpectedVersion::any(), this->events(5));
  const auto log = this->read_own();
  std::atomic<int> calls{0};
  auto subscription = this->store().subscribe(
      this->subscription_options(this->own_events()), [&](const annals::RecordedEvent&) {
        if (++calls == 3) throw std::runtime_error("handler failed on purpose");
      });
  EXPECT_FALSE(subscription->wait_for(log.back().position, this->kTimeout));
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(subscription->position(), log[1].position);
  const auto reason = subscription->stop_reason();
  ASSERT_NE(reason, nullptr);
  try {
    std::rethrow_exception(reason);
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "handler failed on purpose");
  }
  subscription->stop();  // still fine after a failure
  EXPECT_FALSE(subscription->is_running());
}

TYPED_TEST_P(EventStoreContract, SubscriptionStopIsIdempotentAndEndsDelivery) {
  const auto s = this->stream("a");
  const auto first = this->append(s, annals::ExpectedVersion::any(), this->events(3));
  annals::testkit::contract_detail::Collector collector;
  auto subscription =
      this->store().subscribe(this->subscription_options(this->own_events()), collector.handler());
  ASSERT_TRUE(subscription->wait_for(first.position, this->kTimeout));
  EXPECT_TRUE(subscription->is_running());
  subscription->stop();
  subscription->stop();
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(subscription->stop_reason(), nullptr);
  // stop() joined the subscription's thread: nothing can be delivered any more.
  this->append(s, annals::ExpectedVersion::any(), this->events(2));
  EXPECT_EQ(collector.events().size(), 3u);
  EXPECT_EQ(subscription->position(), first.position);
}

TYPED_TEST_P(EventStoreContract, SubscriptionIsLiveOnceCaughtUp) {
  const auto s = this->stream("a");
  const auto result = this->append(s, annals::ExpectedVersion::any(), this->events(3));
  annals::testkit::contract_detail::Collector collector;
  auto subscription = this->store().subscribe(
      this->subscription_options(this->own_events(), annals::Position::start(), 100),
      collector.handler());
  ASSERT_TRUE(subscription->wait_for(result.position, this->kTimeout));
  EXPECT_TRUE(subscription->is_live());
  EXPECT_TRUE(subscription->is_running());
}

TYPED_TEST_P(EventStoreContract, HeadPositionIsAtOrAfterEverySettledEvent) {
  const auto result =
      this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(2));
  this->await_settled();
  const annals::Position head = this->store().head_position();
  EXPECT_GE(head, result.position);
  // Nothing settled lies after the head at the moment it was read, except later appends.
  const auto later =
      this->store().read_all({.after = head, .max_count = 1000, .filter = this->own_events()});
  EXPECT_TRUE(later.empty());
}

TYPED_TEST_P(EventStoreContract, HeadPositionNeverMovesBackwards) {
  const annals::Position before = this->store().head_position();
  this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(1));
  this->await_settled();
  EXPECT_GE(this->store().head_position(), before);
}

TYPED_TEST_P(EventStoreContract, WatchSignalsAnAppend) {
  auto signal = this->store().watch();
  const std::uint64_t token = signal->observe();
  this->append(this->stream("a"), annals::ExpectedVersion::any(), this->events(1));
  // A spurious early return is allowed, so wait until a wait reports the change.
  const auto deadline = std::chrono::steady_clock::now() + this->kTimeout;
  bool signalled = false;
  while (!signalled && std::chrono::steady_clock::now() < deadline) {
    signalled = signal->wait(token, std::chrono::milliseconds(500));
  }
  EXPECT_TRUE(signalled);
}

TYPED_TEST_P(EventStoreContract, WatchInterruptEndsAWait) {
  auto signal = this->store().watch();
  const std::uint64_t token = signal->observe();
  signal->interrupt();
  const auto started = std::chrono::steady_clock::now();
  signal->wait(token, this->kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - started, this->kTimeout);
}

REGISTER_TYPED_TEST_SUITE_P(
    EventStoreContract,
    // head position and change signals
    HeadPositionIsAtOrAfterEverySettledEvent, HeadPositionNeverMovesBackwards, WatchSignalsAnAppend,
    WatchInterruptEndsAWait,
    // expected versions
    AppendWithAnyToNewStreamSucceeds, AppendWithAnyToExistingStreamSucceeds,
    AppendWithNoStreamToNewStreamSucceeds, AppendWithNoStreamToExistingStreamThrowsConcurrencyError,
    AppendWithExactZeroToNewStreamSucceeds,
    AppendWithExactZeroToExistingStreamThrowsConcurrencyError,
    AppendWithStreamExistsToExistingStreamSucceeds,
    AppendWithStreamExistsToNewStreamThrowsConcurrencyError, AppendWithCorrectExactVersionSucceeds,
    AppendWithWrongExactVersionThrowsConcurrencyError,
    AppendWithExactVersionToMissingStreamThrowsConcurrencyError,
    ConcurrentAppendsWithSameExactVersionLetExactlyOneWin,
    ConcurrentCreationOfOneStreamLetsExactlyOneWin,
    // multi-stream appends
    AppendMultiWritesEveryStreamInRequestOrder, AppendMultiWithConflictInSecondStreamWritesNothing,
    AppendMultiConflictNamesFirstFailingStreamInRequestOrder,
    AppendMultiWithRepeatedStreamThrowsInvalidArgumentError,
    AppendMultiWithNoStreamsThrowsInvalidArgumentError, AppendMultiWithAnEmptyPartWritesNothing,
    // idempotency
    ExactResendReturnsOriginalResultAndWritesNothing, ResendAfterLaterAppendsReturnsOriginalResult,
    PartialOverlapThrowsIdempotencyErrorAndWritesNothing,
    ResendInAnotherOrderThrowsIdempotencyError, EventIdStoredInAnotherStreamThrowsIdempotencyError,
    MultiStreamExactResendReturnsOriginalResults,
    MultiStreamResendMixedWithNewEventsThrowsIdempotencyError,
    ResendWithChangedContentThrowsIdempotencyErrorNamingTheEvent,
    SingleEventResendWithChangedDataThrowsIdempotencyError, ResendWithReorderedKeysIsExact,
    MultiStreamResendWithChangedContentNamesTheDifferingStream,
    DuplicateIdsWithinOneAppendThrowInvalidArgumentError, NilEventIdThrowsInvalidArgumentError,
    GeneratedIdsAreDistinctAndNotNil,
    // reading streams
    ReadStreamForwardReturnsEventsAsAppended, ReadStreamBackwardReturnsNewestFirst,
    ReadStreamForwardHonoursFromAndMaxCount, ReadStreamBackwardHonoursFromAndMaxCount,
    ReadingMissingStreamReturnsNothing, StreamVersionCountsEvents,
    // reading the global log
    ReadAllReturnsAppendsInOrderWithIncreasingPositions, EventsOfOneAppendShareACommitGroup,
    ConcurrentAppendsStayContiguousInTheGlobalLog, ReadAllPagesWithoutGapsOrRepeats,
    ReadAllFiltersByCategory, ReadAllFiltersByEventTypes, ReadAllHonoursMaxCount,
    ReadAllAfterLastEventReturnsNothing, PositionsRoundTripThroughTheirStringForm,
    // validation and limits
    OversizedDataThrowsInvalidArgumentErrorAndWritesNothing,
    OversizedMetadataThrowsInvalidArgumentErrorAndWritesNothing,
    TooManyEventsThrowInvalidArgumentErrorAndWriteNothing, EmptyAppendThrowsInvalidArgumentError,
    MetadataThatIsNotAnObjectThrowsInvalidArgumentError, BadTypeNameThrowsInvalidArgumentError,
    SchemaVersionBelowOneThrowsInvalidArgumentError, InvalidUtf8InDataThrowsInvalidArgumentError,
    NulCharacterInDataThrowsInvalidArgumentError, InvalidLaterEventWritesNothing,
    // round trips
    DataMayBeAnyJsonValue, UnicodeAndSqlMetacharactersRoundTripVerbatim,
    RecordedAtIsWithinTheAppendWindow,
    // subscriptions
    SubscriptionCatchesUpThenDeliversLiveEventsExactlyOnce,
    SubscriptionWithFilterDeliversOnlyMatchingEvents,
    SubscriptionFromMidPositionDeliversOnlyLaterEvents,
    SubscriptionHandlerExceptionBecomesStopReason, SubscriptionStopIsIdempotentAndEndsDelivery,
    SubscriptionIsLiveOnceCaughtUp);
