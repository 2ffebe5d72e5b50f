// The fixture of the ProjectionStore contract suite: store set-up, projection names unique to
// each test, lease, batch and dead-letter helpers, and assertions for exact errors. The tests
// themselves live in the sibling headers, one concern each;
// annals/testkit/projection_store_contract.hpp includes them all and registers the suite.
//
// Thread safety: NamedProjection::setup() may be called from any thread; everything else runs
// on the test's thread.
//
// NOLINTBEGIN(readability-identifier-naming): PrintTo is the name GoogleTest looks up.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/testkit/contract_support.hpp"
#include "annals/testkit/printers.hpp"

namespace annals::projections {

inline void PrintTo(const Lease& lease, std::ostream* os) {
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(lease.expires_at.time_since_epoch());
  *os << "{projection " << lease.projection << ", owner " << lease.owner << ", token "
      << lease.fencing_token << ", expires_at " << millis.count() << "ms}";
}

inline void PrintTo(DeadLetterState state, std::ostream* os) { *os << to_string(state); }

inline void PrintTo(RebuildState state, std::ostream* os) { *os << to_string(state); }

}  // namespace annals::projections

namespace annals::testkit {
namespace contract_detail {

/// An in-process projection that counts setup() calls and otherwise does nothing: the
/// contract is about the store, not about applying events.
class NamedProjection final : public projections::InProcessProjection {
 public:
  explicit NamedProjection(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void setup(projections::UnitOfWork&) override { ++setups; }
  void handle(const RecordedEvent&) override {}

  std::atomic<int> setups{0};

 private:
  std::string name_;
};

}  // namespace contract_detail

/// The fixture of the contract suite. `Factory::make()` is called once per test.
template <typename Factory>
class ProjectionStoreContract : public ::testing::Test {
 protected:
  /// A lease that never lapses during a test.
  static constexpr std::chrono::milliseconds kLongTtl{60'000};
  /// A lease that lapses almost at once (for takeover tests).
  static constexpr std::chrono::milliseconds kShortTtl{50};
  /// Generous bound for anything asynchronous; tests wait for a condition, never a duration.
  static constexpr std::chrono::milliseconds kTimeout{30'000};
  /// Allowed disagreement between the store's clock and this process's system clock.
  static constexpr std::chrono::seconds kClockSlack{5};

  void SetUp() override {
    store_ = Factory::make();
    ASSERT_NE(store_, nullptr) << "the factory returned no store";
    prefix_ = "contract_" + contract_detail::random_hex(12);
  }

  projections::ProjectionStore& store() { return *store_; }

  /// A projection name unique to this test: "contract_<hex>_<suffix>".
  std::string name(const std::string& suffix = "p") const { return prefix_ + "_" + suffix; }

  /// Prepares a projection of this test and returns its name.
  std::string prepared(const std::string& suffix = "p") {
    contract_detail::NamedProjection projection(name(suffix));
    store_->prepare(projection);
    return projection.name();
  }

  /// Acquires the lease of `projection` for `owner`; fails the test when refused.
  projections::Lease acquire(const std::string& projection, const std::string& owner = "owner-a",
                             std::chrono::milliseconds ttl = kLongTtl) {
    auto lease = store_->try_acquire(projection, owner, ttl);
    EXPECT_TRUE(lease.has_value()) << owner << " could not acquire " << projection;
    return lease.value_or(projections::Lease{});
  }

  /// Calls try_acquire() for `owner` until the current (short) lease lapses and `owner` gets
  /// it; fails the test after kTimeout.
  projections::Lease acquire_after_expiry(const std::string& projection, const std::string& owner) {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto lease = store_->try_acquire(projection, owner, kLongTtl)) return *lease;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // back-off, not a sync
    }
    ADD_FAILURE() << owner << " never acquired " << projection << " after the lease lapsed";
    return projections::Lease{};
  }

  /// Waits (bounded by kTimeout) until list() shows the lease of `projection` lapsed.
  void await_expiry(const std::string& projection) {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (record(projection).owned) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the lease of " << projection << " never lapsed";
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // back-off, not a sync
    }
  }

  /// Begins a batch at `from`, parks nothing, and commits at `to`.
  void commit(const projections::Lease& lease, Position from, Position to) {
    auto batch = store_->begin(lease, from);
    batch->commit(to);
  }

  /// The record of `projection` in list(); fails the test when it is missing or listed twice.
  projections::ProjectionRecord record(const std::string& projection) {
    const auto all = store_->list();
    const auto count =
        std::count_if(all.begin(), all.end(), [&](const auto& r) { return r.name == projection; });
    EXPECT_EQ(count, 1) << projection << " in list()";
    for (const auto& r : all) {
      if (r.name == projection) return r;
    }
    return projections::ProjectionRecord{};
  }

  /// Dead letters of `projection`, oldest first.
  std::vector<projections::DeadLetter> dead_letters(
      const std::string& projection,
      std::optional<projections::DeadLetterState> state = std::nullopt) {
    projections::DeadLetterQuery query;
    query.projection = projection;
    query.state = state;
    return store_->list_dead_letters(query);
  }

  /// The one dead letter with this id; throws (failing the test) when missing.
  projections::DeadLetter dead_letter(const std::string& projection, std::int64_t id) {
    for (auto& letter : dead_letters(projection)) {
      if (letter.id == id) return letter;
    }
    throw std::runtime_error("no dead letter " + std::to_string(id) + " of " + projection);
  }

  /// Parks `event` in a batch committed at the unchanged checkpoint `at`; returns its id.
  std::int64_t park(const projections::Lease& lease, Position at, const RecordedEvent& event,
                    const std::string& error = "boom", int attempts = 3) {
    auto batch = store_->begin(lease, at);
    batch->park(event, error, attempts);
    batch->commit(at);
    const auto letters = dead_letters(lease.projection);
    EXPECT_FALSE(letters.empty());
    return letters.empty() ? 0 : letters.back().id;
  }

  /// A recorded event with every field set (times at microsecond precision, which every
  /// store keeps), as if read from an event store.
  static RecordedEvent sample_event(std::int64_t n = 1) {
    const auto now =
        std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    return RecordedEvent{
        .stream_id = StreamId("account-" + std::to_string(n)),
        .version = n + 2,
        .position = Position(1000 + static_cast<std::uint64_t>(n), 2000 + n),
        .id = EventId::generate(),
        .type = "MoneyDeposited",
        .schema_version = 2,
        .data = {{"amount", 100 * n}, {"note", "caf\u00e9 'quoted' \"double\" \\ ;--"}},
        .metadata = {{"correlation_id", "c-" + std::to_string(n)}},
        .recorded_at = now,
    };
  }

  /// Asserts that `call` throws E (exactly that type, or a subclass) whose message contains
  /// `mention`.
  template <typename E, typename F>
  static void expect_error(F&& call, const std::string& mention) {
    auto error = contract_detail::catch_error<E>(std::forward<F>(call));
    ASSERT_TRUE(error.has_value()) << "expected " << typeid(E).name() << " mentioning " << mention;
    EXPECT_THAT(error->what(), ::testing::HasSubstr(mention));
  }

  /// Asserts that `call` throws OwnershipLostError (a retryable concurrency error).
  template <typename F>
  static void expect_ownership_lost(F&& call) {
    auto error =
        contract_detail::catch_error<projections::OwnershipLostError>(std::forward<F>(call));
    ASSERT_TRUE(error.has_value()) << "expected OwnershipLostError";
    EXPECT_EQ(error->code(), ErrorCode::kConcurrency);
    EXPECT_TRUE(error->retryable());
    // A lost lease is a ConcurrencyError about no stream: callers catching the base class see
    // empty typed accessors rather than an invented stream.
    const ConcurrencyError& as_concurrency = *error;
    EXPECT_FALSE(as_concurrency.stream_id().has_value());
    EXPECT_FALSE(as_concurrency.expected_version().has_value());
  }

 private:
  std::unique_ptr<projections::ProjectionStore> store_;
  std::string prefix_;
};

}  // namespace annals::testkit

// NOLINTEND(readability-identifier-naming)

// At global scope, so that users instantiate it with a one-liner at global scope.
using annals::testkit::ProjectionStoreContract;

TYPED_TEST_SUITE_P(ProjectionStoreContract);
