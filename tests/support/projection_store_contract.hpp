// The ProjectionStore contract: one GoogleTest typed test suite that every ProjectionStore must
// pass (the in-memory store in tests/unit/projections, the PostgreSQL one in
// tests/integration/projections). A behaviour that passes on one store and fails on another
// is a bug (ARCHITECTURE decision 1, applied to the read side).
//
//   struct MyStoreFactory {
//     static std::unique_ptr<annals::projections::ProjectionStore> make() { return ...; }
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(Mine, ProjectionStoreContract, MyStoreFactory);
//
// Requires of the factory: every call returns a usable store. Stores may share data between
// calls (the PostgreSQL factory reuses one database): every test uses projection names of its
// own ("contract_<random hex>_<suffix>") and never assumes that list() holds only its own.
//
// What it pins down, beyond the header comments of projection_store.hpp:
//  - the first lease of a projection carries a fencing token >= 1; re-acquiring a lease one
//    already holds keeps the token; every acquisition after expiry or release increases it;
//  - the Lease returned by try_acquire()/renew() is what list() shows (owner, token, expiry);
//  - a commit is refused (OwnershipLostError, nothing stored, parked letters included) for a
//    stale fencing token, a stale expected checkpoint, or a released lease; begin() may refuse
//    already, with the same error;
//  - commit() accepts any position, including the unchanged checkpoint (a dead-letter retry)
//    and Position::start() (a rebuild);
//  - report() with a stale lease is ignored, without an error;
//  - update_rebuild() of an unknown id throws NotFoundError.
//
// Thread safety: one test drives the store from several threads, as the interface allows.
// Timing: lease expiry is waited for with a bounded loop of try_acquire() calls (a lease of
// 50 ms); nothing else depends on time.
//
// NOLINTBEGIN(readability-identifier-naming): PrintTo is the name GoogleTest looks up.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <latch>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

namespace contract_detail {

using annals::testkit::contract_detail::catch_error;
using annals::testkit::contract_detail::random_hex;

/// An in-process projection that counts setup() calls and otherwise does nothing: the
/// contract is about the store, not about applying events.
class NamedProjection final : public InProcessProjection {
 public:
  explicit NamedProjection(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void setup(UnitOfWork&) override { ++setups; }
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

  ProjectionStore& store() { return *store_; }

  /// A projection name unique to this test: "contract_<hex>_<suffix>".
  std::string name(const std::string& suffix = "p") const { return prefix_ + "_" + suffix; }

  /// Prepares a projection of this test and returns its name.
  std::string prepared(const std::string& suffix = "p") {
    contract_detail::NamedProjection projection(name(suffix));
    store_->prepare(projection);
    return projection.name();
  }

  /// Acquires the lease of `projection` for `owner`; fails the test when refused.
  Lease acquire(const std::string& projection, const std::string& owner = "owner-a",
                std::chrono::milliseconds ttl = kLongTtl) {
    auto lease = store_->try_acquire(projection, owner, ttl);
    EXPECT_TRUE(lease.has_value()) << owner << " could not acquire " << projection;
    return lease.value_or(Lease{});
  }

  /// Calls try_acquire() for `owner` until the current (short) lease lapses and `owner` gets
  /// it; fails the test after kTimeout.
  Lease acquire_after_expiry(const std::string& projection, const std::string& owner) {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto lease = store_->try_acquire(projection, owner, kLongTtl)) return *lease;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // back-off, not a sync
    }
    ADD_FAILURE() << owner << " never acquired " << projection << " after the lease lapsed";
    return Lease{};
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
  void commit(const Lease& lease, Position from, Position to) {
    auto batch = store_->begin(lease, from);
    batch->commit(to);
  }

  /// The record of `projection` in list(); fails the test when it is missing or listed twice.
  ProjectionRecord record(const std::string& projection) {
    const auto all = store_->list();
    const auto count =
        std::count_if(all.begin(), all.end(), [&](const auto& r) { return r.name == projection; });
    EXPECT_EQ(count, 1) << projection << " in list()";
    for (const auto& r : all) {
      if (r.name == projection) return r;
    }
    return ProjectionRecord{};
  }

  /// Dead letters of `projection`, oldest first.
  std::vector<DeadLetter> dead_letters(const std::string& projection,
                                       std::optional<DeadLetterState> state = std::nullopt) {
    DeadLetterQuery query;
    query.projection = projection;
    query.state = state;
    return store_->list_dead_letters(query);
  }

  /// The one dead letter with this id; throws (failing the test) when missing.
  DeadLetter dead_letter(const std::string& projection, std::int64_t id) {
    for (auto& letter : dead_letters(projection)) {
      if (letter.id == id) return letter;
    }
    throw std::runtime_error("no dead letter " + std::to_string(id) + " of " + projection);
  }

  /// Parks `event` in a batch committed at the unchanged checkpoint `at`; returns its id.
  std::int64_t park(const Lease& lease, Position at, const RecordedEvent& event,
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
    auto error = contract_detail::catch_error<OwnershipLostError>(std::forward<F>(call));
    ASSERT_TRUE(error.has_value()) << "expected OwnershipLostError";
    EXPECT_EQ(error->code(), ErrorCode::kConcurrency);
    EXPECT_TRUE(error->retryable());
  }

 private:
  std::unique_ptr<ProjectionStore> store_;
  std::string prefix_;
};

}  // namespace annals::projections

// NOLINTEND(readability-identifier-naming)

// At global scope, so that users instantiate it with a one-liner at global scope.
using annals::projections::ProjectionStoreContract;

TYPED_TEST_SUITE_P(ProjectionStoreContract);

// ---- Registration ------------------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, PrepareIsIdempotentAndRunsSetupEachTime) {
  annals::projections::contract_detail::NamedProjection projection(this->name());
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
    annals::projections::contract_detail::NamedProjection projection(bad);
    this->template expect_error<InvalidArgumentError>([&] { this->store().prepare(projection); },
                                                      "projection name");
    EXPECT_EQ(projection.setups.load(), 0) << "setup ran for the bad name '" << bad << "'";
  }
  // The limits themselves are fine: 100 characters out of [A-Za-z0-9_.-].
  const std::string longest = this->name() + std::string(100 - this->name().size(), 'x');
  annals::projections::contract_detail::NamedProjection ok(longest);
  EXPECT_NO_THROW(this->store().prepare(ok));
  annals::projections::contract_detail::NamedProjection punctuated(this->name("A.b-C_9"));
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

// ---- Leases ------------------------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, TryAcquireGrantsALeaseWithAFencingToken) {
  const auto name = this->prepared();
  const auto before = std::chrono::system_clock::now();
  const auto lease = this->acquire(name, "owner-a", this->kLongTtl);
  const auto after = std::chrono::system_clock::now();
  EXPECT_EQ(lease.projection, name);
  EXPECT_EQ(lease.owner, "owner-a");
  EXPECT_GE(lease.fencing_token, 1);
  EXPECT_GE(lease.expires_at, before + this->kLongTtl - this->kClockSlack);
  EXPECT_LE(lease.expires_at, after + this->kLongTtl + this->kClockSlack);

  const auto r = this->record(name);
  EXPECT_EQ(r.owner, "owner-a");
  EXPECT_TRUE(r.owned);
  EXPECT_EQ(r.fencing_token, lease.fencing_token);
  EXPECT_EQ(r.lease_expires_at, lease.expires_at);
}

TYPED_TEST_P(ProjectionStoreContract, SecondOwnerIsRefusedWhileTheLeaseIsHeld) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name, "owner-a");
  EXPECT_FALSE(this->store().try_acquire(name, "owner-b", this->kLongTtl).has_value());
  const auto r = this->record(name);
  EXPECT_EQ(r.owner, "owner-a");
  EXPECT_EQ(r.fencing_token, lease.fencing_token);
}

TYPED_TEST_P(ProjectionStoreContract, HolderReacquiresWithTheSameToken) {
  const auto name = this->prepared();
  const auto first = this->acquire(name, "owner-a", this->kLongTtl);
  const auto again = this->acquire(name, "owner-a", this->kLongTtl);
  EXPECT_EQ(again.owner, "owner-a");
  EXPECT_EQ(again.fencing_token, first.fencing_token);
  EXPECT_GE(again.expires_at, first.expires_at);
}

TYPED_TEST_P(ProjectionStoreContract, RenewExtendsTheLeaseAndKeepsTheToken) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name, "owner-a", std::chrono::milliseconds(10'000));
  const auto renewed = this->store().renew(lease, this->kLongTtl);
  ASSERT_TRUE(renewed.has_value());
  EXPECT_EQ(renewed->projection, name);
  EXPECT_EQ(renewed->owner, "owner-a");
  EXPECT_EQ(renewed->fencing_token, lease.fencing_token);
  EXPECT_GT(renewed->expires_at, lease.expires_at);
  EXPECT_EQ(this->record(name).lease_expires_at, renewed->expires_at);
  // The renewed lease is as good as the original one for writing.
  EXPECT_NO_THROW(this->commit(*renewed, annals::Position::start(), annals::Position(3, 3)));
}

TYPED_TEST_P(ProjectionStoreContract, ReleaseLetsAnotherOwnerTakeOverAtOnce) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name, "owner-a");
  this->store().release(lease);
  const auto r = this->record(name);
  EXPECT_FALSE(r.owner.has_value());
  EXPECT_FALSE(r.owned);
  EXPECT_FALSE(this->store().renew(lease, this->kLongTtl).has_value());

  const auto taken = this->acquire(name, "owner-b");
  EXPECT_EQ(taken.owner, "owner-b");
  EXPECT_GT(taken.fencing_token, lease.fencing_token);
  // A second release of the old lease leaves the new owner alone.
  this->store().release(lease);
  EXPECT_EQ(this->record(name).owner, "owner-b");
  EXPECT_TRUE(this->record(name).owned);
}

TYPED_TEST_P(ProjectionStoreContract, ReacquiringAfterReleaseIncreasesTheToken) {
  const auto name = this->prepared();
  const auto first = this->acquire(name, "owner-a");
  this->store().release(first);
  const auto second = this->acquire(name, "owner-a");
  EXPECT_GT(second.fencing_token, first.fencing_token);
}

TYPED_TEST_P(ProjectionStoreContract, TakeoverAfterExpiryIncreasesTheFencingToken) {
  const auto name = this->prepared();
  const auto old_lease = this->acquire(name, "owner-a", this->kShortTtl);
  const auto new_lease = this->acquire_after_expiry(name, "owner-b");
  EXPECT_EQ(new_lease.owner, "owner-b");
  EXPECT_GT(new_lease.fencing_token, old_lease.fencing_token);

  // The former owner has lost it: no renewal, and its release changes nothing.
  EXPECT_FALSE(this->store().renew(old_lease, this->kLongTtl).has_value());
  this->store().release(old_lease);
  const auto r = this->record(name);
  EXPECT_EQ(r.owner, "owner-b");
  EXPECT_TRUE(r.owned);
  EXPECT_EQ(r.fencing_token, new_lease.fencing_token);
  EXPECT_TRUE(this->store().renew(new_lease, this->kLongTtl).has_value());
}

TYPED_TEST_P(ProjectionStoreContract, ExpiredHolderReacquiresWithAHigherToken) {
  const auto name = this->prepared();
  const auto first = this->acquire(name, "owner-a", this->kShortTtl);
  this->await_expiry(name);
  const auto second = this->acquire(name, "owner-a");
  EXPECT_GT(second.fencing_token, first.fencing_token);
}

TYPED_TEST_P(ProjectionStoreContract, ConcurrentAcquireGrantsExactlyOneLease) {
  const auto name = this->prepared();
  constexpr int kThreads = 8;
  std::latch ready(kThreads);
  std::vector<std::optional<annals::projections::Lease>> results(kThreads);
  std::vector<std::exception_ptr> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const auto slot = static_cast<std::size_t>(i);
      ready.arrive_and_wait();
      try {
        results[slot] =
            this->store().try_acquire(name, "owner-" + std::to_string(i), this->kLongTtl);
      } catch (...) {
        errors[slot] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, nullptr) << "try_acquire threw";
  const auto winners =
      std::count_if(results.begin(), results.end(), [](const auto& r) { return r.has_value(); });
  ASSERT_EQ(winners, 1);
  const auto winner =
      *std::find_if(results.begin(), results.end(), [](const auto& r) { return r.has_value(); });
  EXPECT_EQ(this->record(name).owner, winner->owner);
}

// ---- Batches and the checkpoint CAS ------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, CommitStoresTheCheckpoint) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const annals::Position p1(5, 10);
  const annals::Position p2(9, 20);
  this->commit(lease, annals::Position::start(), p1);
  EXPECT_EQ(this->store().checkpoint(name), p1);
  this->commit(lease, p1, p2);
  EXPECT_EQ(this->store().checkpoint(name), p2);
  EXPECT_EQ(this->record(name).checkpoint, p2);
  // Unchanged (a dead-letter retry) and back to the start (a rebuild) are accepted too.
  this->commit(lease, p2, p2);
  EXPECT_EQ(this->store().checkpoint(name), p2);
  this->commit(lease, p2, annals::Position::start());
  EXPECT_EQ(this->store().checkpoint(name), annals::Position::start());
}

TYPED_TEST_P(ProjectionStoreContract, CheckpointsOfProjectionsAreIndependent) {
  const auto a = this->prepared("a");
  const auto b = this->prepared("b");
  this->commit(this->acquire(a), annals::Position::start(), annals::Position(4, 4));
  EXPECT_EQ(this->store().checkpoint(a), annals::Position(4, 4));
  EXPECT_EQ(this->store().checkpoint(b), annals::Position::start());
}

TYPED_TEST_P(ProjectionStoreContract, CommitWithAStaleTokenIsRefusedAndStoresNothing) {
  const auto name = this->prepared();
  const auto old_lease = this->acquire(name, "owner-a", this->kShortTtl);
  const auto new_lease = this->acquire_after_expiry(name, "owner-b");
  const annals::Position p1(3, 3);
  this->commit(new_lease, annals::Position::start(), p1);

  const auto event = this->sample_event();
  this->expect_ownership_lost([&] {
    auto batch = this->store().begin(old_lease, p1);
    batch->park(event, "stale", 1);
    batch->commit(annals::Position(8, 8));
  });
  EXPECT_EQ(this->store().checkpoint(name), p1);
  EXPECT_TRUE(this->dead_letters(name).empty());
  // The current owner is unaffected.
  EXPECT_NO_THROW(this->commit(new_lease, p1, annals::Position(9, 9)));
  EXPECT_EQ(this->store().checkpoint(name), annals::Position(9, 9));
}

TYPED_TEST_P(ProjectionStoreContract, CommitFromAStaleCheckpointIsRefusedAndStoresNothing) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const annals::Position p1(3, 3);
  this->commit(lease, annals::Position::start(), p1);

  const auto event = this->sample_event();
  this->expect_ownership_lost([&] {
    auto batch = this->store().begin(lease, annals::Position::start());
    batch->park(event, "stale", 1);
    batch->commit(annals::Position(6, 6));
  });
  EXPECT_EQ(this->store().checkpoint(name), p1);
  EXPECT_TRUE(this->dead_letters(name).empty());
  EXPECT_NO_THROW(this->commit(lease, p1, annals::Position(6, 6)));
}

TYPED_TEST_P(ProjectionStoreContract, CommitAfterReleaseIsRefused) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  this->store().release(lease);
  this->expect_ownership_lost(
      [&] { this->commit(lease, annals::Position::start(), annals::Position(2, 2)); });
  EXPECT_EQ(this->store().checkpoint(name), annals::Position::start());
}

TYPED_TEST_P(ProjectionStoreContract, BatchDestroyedWithoutCommitStoresNothing) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  {
    auto batch = this->store().begin(lease, annals::Position::start());
    batch->park(this->sample_event(), "never committed", 1);
  }
  EXPECT_EQ(this->store().checkpoint(name), annals::Position::start());
  EXPECT_TRUE(this->dead_letters(name).empty());
  // Nothing was left locked or half-written: the next batch from the same checkpoint commits.
  EXPECT_NO_THROW(this->commit(lease, annals::Position::start(), annals::Position(1, 1)));
  EXPECT_EQ(this->store().checkpoint(name), annals::Position(1, 1));
}

// ---- Dead letters ------------------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, ParkedEventBecomesADeadLetterCarryingTheFullEvent) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto event = this->sample_event(4);
  const auto before = std::chrono::system_clock::now();
  {
    auto batch = this->store().begin(lease, annals::Position::start());
    batch->park(event, "handler failed: division by zero", 5);
    batch->commit(event.position);
  }
  const auto after = std::chrono::system_clock::now();
  EXPECT_EQ(this->store().checkpoint(name), event.position);

  const auto letters = this->dead_letters(name);
  ASSERT_EQ(letters.size(), 1u);
  const auto& letter = letters.front();
  EXPECT_GE(letter.id, 1);
  EXPECT_EQ(letter.projection, name);
  EXPECT_EQ(letter.event, event);
  EXPECT_EQ(letter.error, "handler failed: division by zero");
  EXPECT_EQ(letter.attempts, 5);
  EXPECT_EQ(letter.state, DeadLetterState::kParked);
  EXPECT_GE(letter.parked_at, before - this->kClockSlack);
  EXPECT_LE(letter.parked_at, after + this->kClockSlack);
  EXPECT_GE(letter.updated_at, letter.parked_at);
}

TYPED_TEST_P(ProjectionStoreContract, DeadLettersListOldestFirstWithFilters) {
  using annals::projections::DeadLetterQuery;
  using annals::projections::DeadLetterState;
  const auto name = this->prepared("a");
  const auto other = this->prepared("b");
  const auto lease = this->acquire(name);
  const auto other_lease = this->acquire(other);
  std::vector<std::int64_t> ids;
  for (std::int64_t n = 1; n <= 3; ++n) {
    ids.push_back(this->park(lease, annals::Position::start(), this->sample_event(n)));
  }
  this->park(other_lease, annals::Position::start(), this->sample_event(9));
  EXPECT_LT(ids[0], ids[1]);
  EXPECT_LT(ids[1], ids[2]);

  const auto all = this->dead_letters(name);
  ASSERT_EQ(all.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(all[i].id, ids[i]);
    EXPECT_EQ(all[i].event.data.at("amount"), 100 * static_cast<std::int64_t>(i + 1));
  }

  DeadLetterQuery limited;
  limited.projection = name;
  limited.max_count = 2;
  const auto first_two = this->store().list_dead_letters(limited);
  ASSERT_EQ(first_two.size(), 2u);
  EXPECT_EQ(first_two[0].id, ids[0]);
  EXPECT_EQ(first_two[1].id, ids[1]);

  this->store().skip(ids[1]);
  const auto parked = this->dead_letters(name, DeadLetterState::kParked);
  ASSERT_EQ(parked.size(), 2u);
  EXPECT_EQ(parked[0].id, ids[0]);
  EXPECT_EQ(parked[1].id, ids[2]);
  const auto skipped = this->dead_letters(name, DeadLetterState::kSkipped);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].id, ids[1]);

  // Without a projection, the query spans every projection (ours among them).
  DeadLetterQuery everything;
  everything.max_count = 1'000'000;
  std::size_t ours = 0;
  for (const auto& letter : this->store().list_dead_letters(everything)) {
    if (letter.projection == name || letter.projection == other) ++ours;
  }
  EXPECT_EQ(ours, 4u);
}

TYPED_TEST_P(ProjectionStoreContract, RequestRetryMovesAParkedLetterToRetryRequested) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto id = this->park(lease, annals::Position::start(), this->sample_event());
  this->store().request_retry(id);
  EXPECT_EQ(this->dead_letter(name, id).state, DeadLetterState::kRetryRequested);
  // Asking again changes nothing.
  EXPECT_NO_THROW(this->store().request_retry(id));
  EXPECT_EQ(this->dead_letter(name, id).state, DeadLetterState::kRetryRequested);
  const auto requested = this->dead_letters(name, DeadLetterState::kRetryRequested);
  ASSERT_EQ(requested.size(), 1u);
  EXPECT_EQ(requested[0].id, id);
}

TYPED_TEST_P(ProjectionStoreContract, ResolveDeadLetterTakesEffectWithTheCommit) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const annals::Position at(2, 2);
  this->commit(lease, annals::Position::start(), at);
  const auto id = this->park(lease, at, this->sample_event());
  this->store().request_retry(id);
  {
    auto batch = this->store().begin(lease, at);
    batch->resolve_dead_letter(id);
  }  // rolled back
  EXPECT_EQ(this->dead_letter(name, id).state, DeadLetterState::kRetryRequested);
  {
    auto batch = this->store().begin(lease, at);
    batch->resolve_dead_letter(id);
    batch->commit(at);
  }
  EXPECT_EQ(this->dead_letter(name, id).state, DeadLetterState::kResolved);
  EXPECT_EQ(this->store().checkpoint(name), at);
}

TYPED_TEST_P(ProjectionStoreContract, SkipGivesUpOnAParkedOrRequestedLetter) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto parked = this->park(lease, annals::Position::start(), this->sample_event(1));
  const auto requested = this->park(lease, annals::Position::start(), this->sample_event(2));
  this->store().request_retry(requested);
  this->store().skip(parked);
  this->store().skip(requested);
  EXPECT_EQ(this->dead_letter(name, parked).state, DeadLetterState::kSkipped);
  EXPECT_EQ(this->dead_letter(name, requested).state, DeadLetterState::kSkipped);
  // Skipping again changes nothing.
  EXPECT_NO_THROW(this->store().skip(parked));
  EXPECT_EQ(this->dead_letter(name, parked).state, DeadLetterState::kSkipped);
}

TYPED_TEST_P(ProjectionStoreContract, ClosedLettersRefuseRetryAndResolvedRefuseSkip) {
  using annals::InvalidArgumentError;
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto skipped = this->park(lease, annals::Position::start(), this->sample_event(1));
  this->store().skip(skipped);
  const auto resolved = this->park(lease, annals::Position::start(), this->sample_event(2));
  this->store().request_retry(resolved);
  {
    auto batch = this->store().begin(lease, annals::Position::start());
    batch->resolve_dead_letter(resolved);
    batch->commit(annals::Position::start());
  }
  this->template expect_error<InvalidArgumentError>([&] { this->store().request_retry(skipped); },
                                                    std::to_string(skipped));
  this->template expect_error<InvalidArgumentError>([&] { this->store().request_retry(resolved); },
                                                    std::to_string(resolved));
  this->template expect_error<InvalidArgumentError>([&] { this->store().skip(resolved); },
                                                    std::to_string(resolved));
  EXPECT_EQ(this->dead_letter(name, skipped).state, DeadLetterState::kSkipped);
  EXPECT_EQ(this->dead_letter(name, resolved).state, DeadLetterState::kResolved);
}

TYPED_TEST_P(ProjectionStoreContract, UnknownDeadLetterThrowsNotFoundError) {
  using annals::NotFoundError;
  // Ids are positive; this one was never issued.
  constexpr std::int64_t kMissing = 9'000'000'000'000'000'000;
  const auto mention = std::to_string(kMissing);
  this->template expect_error<NotFoundError>([&] { this->store().request_retry(kMissing); },
                                             mention);
  this->template expect_error<NotFoundError>([&] { this->store().skip(kMissing); }, mention);
  this->template expect_error<NotFoundError>([&] { this->store().retry_failed(kMissing, "again"); },
                                             mention);
}

TYPED_TEST_P(ProjectionStoreContract, RetryFailedParksAgainWithTheNewErrorAndOneMoreAttempt) {
  using annals::projections::DeadLetterState;
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const auto event = this->sample_event();
  const auto id = this->park(lease, annals::Position::start(), event, "first error", 5);
  this->store().request_retry(id);
  this->store().retry_failed(id, "second error");
  const auto letter = this->dead_letter(name, id);
  EXPECT_EQ(letter.state, DeadLetterState::kParked);
  EXPECT_EQ(letter.error, "second error");
  EXPECT_EQ(letter.attempts, 6);
  EXPECT_EQ(letter.event, event);
  // It can be asked for again.
  EXPECT_NO_THROW(this->store().request_retry(id));
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

// ---- wait_for_checkpoint -----------------------------------------------------------------

TYPED_TEST_P(ProjectionStoreContract, WaitForCheckpointReturnsTrueOnceReached) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  const annals::Position target(10, 10);
  // Reached later, from another thread.
  std::atomic<bool> result{false};
  std::thread waiter([&] {
    result = annals::projections::wait_for_checkpoint(this->store(), name, target, this->kTimeout);
  });
  this->commit(lease, annals::Position::start(), annals::Position(5, 5));
  this->commit(lease, annals::Position(5, 5), annals::Position(11, 11));
  waiter.join();
  EXPECT_TRUE(result.load());
  // Already reached (and passed): true at once, whatever the timeout.
  EXPECT_TRUE(annals::projections::wait_for_checkpoint(this->store(), name, target,
                                                       std::chrono::milliseconds(0)));
}

TYPED_TEST_P(ProjectionStoreContract, WaitForCheckpointTimesOutWhenNotReached) {
  const auto name = this->prepared();
  const auto lease = this->acquire(name);
  this->commit(lease, annals::Position::start(), annals::Position(5, 5));
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(annals::projections::wait_for_checkpoint(this->store(), name, annals::Position(6, 6),
                                                        std::chrono::milliseconds(50)));
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, std::chrono::milliseconds(50));
  EXPECT_LT(waited, this->kTimeout);
}

TYPED_TEST_P(ProjectionStoreContract, WaitForCheckpointOfAnUnknownProjectionThrows) {
  const auto missing = this->name("missing");
  this->template expect_error<annals::NotFoundError>(
      [&] {
        static_cast<void>(annals::projections::wait_for_checkpoint(
            this->store(), missing, annals::Position(1, 1), std::chrono::milliseconds(10)));
      },
      missing);
}

REGISTER_TYPED_TEST_SUITE_P(
    ProjectionStoreContract,
    // registration
    PrepareIsIdempotentAndRunsSetupEachTime, PrepareRejectsBadNames,
    UnknownProjectionThrowsNotFoundError, CheckpointStartsAtStart, ListShowsEveryPreparedProjection,
    // leases
    TryAcquireGrantsALeaseWithAFencingToken, SecondOwnerIsRefusedWhileTheLeaseIsHeld,
    HolderReacquiresWithTheSameToken, RenewExtendsTheLeaseAndKeepsTheToken,
    ReleaseLetsAnotherOwnerTakeOverAtOnce, ReacquiringAfterReleaseIncreasesTheToken,
    TakeoverAfterExpiryIncreasesTheFencingToken, ExpiredHolderReacquiresWithAHigherToken,
    ConcurrentAcquireGrantsExactlyOneLease,
    // batches
    CommitStoresTheCheckpoint, CheckpointsOfProjectionsAreIndependent,
    CommitWithAStaleTokenIsRefusedAndStoresNothing,
    CommitFromAStaleCheckpointIsRefusedAndStoresNothing, CommitAfterReleaseIsRefused,
    BatchDestroyedWithoutCommitStoresNothing,
    // dead letters
    ParkedEventBecomesADeadLetterCarryingTheFullEvent, DeadLettersListOldestFirstWithFilters,
    RequestRetryMovesAParkedLetterToRetryRequested, ResolveDeadLetterTakesEffectWithTheCommit,
    SkipGivesUpOnAParkedOrRequestedLetter, ClosedLettersRefuseRetryAndResolvedRefuseSkip,
    UnknownDeadLetterThrowsNotFoundError, RetryFailedParksAgainWithTheNewErrorAndOneMoreAttempt,
    // reports
    ReportShowsInList, ReportWithAStaleLeaseIsIgnored,
    // rebuild requests
    RequestRebuildReturnsTheOpenRequestWhenRepeated, RebuildRequestFollowsOwnerUpdates,
    ClosedRebuildAllowsANewRequest, UnknownRebuildRequestIsEmptyAndCannotBeUpdated,
    RebuildRequestsOfProjectionsAreIndependent,
    // wait_for_checkpoint
    WaitForCheckpointReturnsTrueOnceReached, WaitForCheckpointTimesOutWhenNotReached,
    WaitForCheckpointOfAnUnknownProjectionThrows);
