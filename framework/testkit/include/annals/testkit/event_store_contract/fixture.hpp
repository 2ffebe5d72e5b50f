// The fixture of the EventStore contract suite: store set-up, a random category per test,
// append helpers that remember what the test wrote, and assertions for exact errors. The tests
// themselves live in the sibling headers, one concern each; annals/testkit/event_store_contract.hpp
// includes them all and registers the suite.
//
// Thread safety: append() and append_multi() may be called from several threads; everything
// else runs on the test's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <latch>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/testkit/contract_support.hpp"
#include "annals/testkit/event_collector.hpp"
#include "annals/testkit/printers.hpp"
namespace annals::testkit {
namespace contract_detail {

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

  /// What `writers` threads appending `count` events to `stream` with `expected` at once
  /// (released together) got back.
  struct AppendRace {
    int successes = 0;
    std::vector<ConcurrencyError> conflicts;
    std::vector<std::string> other_errors;  ///< what() of any other failure
  };

  AppendRace race_appends(const StreamId& stream, const ExpectedVersion& expected,
                          std::size_t count, int writers) {
    AppendRace race;
    std::latch start(writers);
    std::mutex mutex;
    {
      std::vector<std::jthread> threads;
      threads.reserve(static_cast<std::size_t>(writers));
      for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&] {
          start.arrive_and_wait();
          try {
            append(stream, expected, events(count));
            std::lock_guard lock(mutex);
            ++race.successes;
          } catch (const ConcurrencyError& e) {
            std::lock_guard lock(mutex);
            race.conflicts.push_back(e);
          } catch (const std::exception& e) {
            std::lock_guard lock(mutex);
            race.other_errors.emplace_back(e.what());
          }
        });
      }
    }
    return race;
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
    // The typed forms carry the same stream and expectation as the append was given.
    ASSERT_TRUE(error->stream_id().has_value()) << "ConcurrencyError without a typed stream id";
    EXPECT_EQ(*error->stream_id(), stream);
    ASSERT_TRUE(error->expected_version().has_value())
        << "ConcurrencyError without a typed expected version";
    EXPECT_EQ(error->expected_version()->to_string(), expected);
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
