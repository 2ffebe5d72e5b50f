// Typed in-process projections (issue 15) run by the ProjectionRunner on the in-memory stores:
// the filter derived from the handlers reaches events stored under old names (renames,
// splits); events without a handler are skipped while the checkpoint moves; events that do not
// decode (JSON that does not fit, a version no upcaster reads) and handlers that throw follow
// the failure policy; and the projection given/when/then of the test kit.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/framework/typed_events.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/runner.hpp"
#include "annals/testkit/projection_spec.hpp"
#include "wallet.hpp"

namespace annals::projections {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using wallet::WalletCreated;
using wallet::WalletCredited;

constexpr milliseconds kTimeout{20'000};

EventRegistry wallet_registry() {
  EventRegistry registry;
  wallet::register_wallet(registry);
  return registry;
}

// Balances in cents per wallet, and owners, from typed handlers only.
class WalletBalances final : public InProcessProjection {
 public:
  WalletBalances(const EventRegistry& registry, std::string name = "wallet_balances",
                 bool handle_created = true)
      : InProcessProjection(registry), name_(std::move(name)) {
    on<WalletCredited>([this](const WalletCredited& e, const EventContext& c) {
      if (e.currency == "boom") throw std::runtime_error("handler refuses currency boom");
      const std::lock_guard lock(mutex_);
      balances_[c.stream_id().value()] += e.amount_cents;
      stored_types_.push_back(c.stored_type());
    });
    if (handle_created) {
      on<WalletCreated>([this](const WalletCreated& e, const EventContext& c) {
        const std::lock_guard lock(mutex_);
        owners_[c.stream_id().value()] = e.owner_name;
      });
    }
  }

  std::string name() const override { return name_; }
  void clear() override {
    const std::lock_guard lock(mutex_);
    balances_.clear();
    owners_.clear();
    stored_types_.clear();
  }

  std::map<std::string, std::int64_t> balances() const {
    const std::lock_guard lock(mutex_);
    return balances_;
  }
  std::map<std::string, std::string> owners() const {
    const std::lock_guard lock(mutex_);
    return owners_;
  }
  std::vector<std::string> stored_types() const {
    const std::lock_guard lock(mutex_);
    return stored_types_;
  }

 private:
  std::string name_;
  mutable std::mutex mutex_;
  std::map<std::string, std::int64_t> balances_;
  std::map<std::string, std::string> owners_;
  std::vector<std::string> stored_types_;
};

// The same projection reading a whole category: every wallet event reaches dispatch.
class WholeCategory final : public InProcessProjection {
 public:
  explicit WholeCategory(const EventRegistry& registry) : InProcessProjection(registry) {
    on<WalletCredited>([this](const WalletCredited& e) { total += e.amount_cents; });
  }
  std::string name() const override { return "whole_category"; }
  EventFilter filter() const override { return {.category = "wallet", .event_types = {}}; }
  std::atomic<std::int64_t> total{0};
};

class TypedProjectionTest : public ::testing::Test {
 protected:
  static RunnerOptions options() {
    RunnerOptions out;
    out.owner = "typed-runner";
    out.acquire_interval = milliseconds(10);
    out.poll_interval = milliseconds(1'000);
    out.request_interval = milliseconds(20);
    return out;
  }
  static ProjectionOptions policy(OnFailure on_failure) {
    ProjectionOptions out;
    out.max_attempts = 2;
    out.initial_backoff = milliseconds(1);
    out.max_backoff = milliseconds(2);
    out.on_failure = on_failure;
    return out;
  }
  AppendResult append(const std::string& stream, NewEvent event) {
    return events_->append(StreamId(stream), ExpectedVersion::any(), {std::move(event)});
  }
  static NewEvent credited(std::int64_t cents, std::string currency = "EUR") {
    return wallet::raw("WalletCredited", 3, {{"amount_cents", cents}, {"currency", currency}});
  }

  EventRegistry registry_ = wallet_registry();
  std::unique_ptr<EventStore> events_ = make_in_memory_event_store();
  std::unique_ptr<ProjectionStore> store_ = make_in_memory_projection_store();
};

TEST_F(TypedProjectionTest, TheFilterIsDerivedFromTheHandlersWithOldNames) {
  const WalletBalances projection(registry_);
  const auto filter = projection.filter();
  EXPECT_EQ(filter.category, std::nullopt);
  EXPECT_THAT(filter.event_types, ElementsAre("FundsAdded", "WalletCreated", "WalletCredited",
                                              "WalletOpenedWithFunds"));
}

TEST_F(TypedProjectionTest, RenamedUpgradedAndSplitEventsReachTheHandlersThroughTheRunner) {
  append("wallet-1", wallet::raw("WalletOpenedWithFunds", 1, {{"owner", "ada"}, {"initial", 1}}));
  append("wallet-1", wallet::raw("FundsAdded", 1, {{"amount", 2}}));
  append("wallet-1", wallet::raw("FundsAdded", 2, {{"amount_cents", 30}}));
  append("wallet-2", wallet::raw("WalletCreated", 1, {{"owner", "bob"}}));
  append("other-1", wallet::raw("Mystery", 1, {{"x", 1}}));
  const auto last = append("wallet-2", credited(4));
  auto projection = std::make_shared<WalletBalances>(registry_);
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, policy(OnFailure::kStop));
  runner.start();
  ASSERT_TRUE(runner.wait_for("wallet_balances", last.position, kTimeout));
  EXPECT_EQ(projection->balances(),
            (std::map<std::string, std::int64_t>{{"wallet-1", 330}, {"wallet-2", 4}}));
  EXPECT_EQ(projection->owners(),
            (std::map<std::string, std::string>{{"wallet-1", "ada"}, {"wallet-2", "bob"}}));
  EXPECT_THAT(projection->stored_types(),
              ElementsAre("WalletOpenedWithFunds", "FundsAdded", "FundsAdded", "WalletCredited"));
  EXPECT_EQ(runner.status("wallet_balances").errors, 0U);
}

TEST_F(TypedProjectionTest, EventsWithoutAHandlerAreSkippedAndTheCheckpointMovesPastThem) {
  append("wallet-1", credited(5));
  append("wallet-1", wallet::raw("WalletCreated", 3, {{"owner_name", "ada"}, {"currency", "EUR"}}));
  // A split whose WalletCreated part has no handler here; then an unknown type.
  append("wallet-1", wallet::raw("WalletOpenedWithFunds", 1, {{"owner", "ada"}, {"initial", 1}}));
  const auto last = append("wallet-1", wallet::raw("Mystery", 1, {{"x", 1}}));
  auto projection = std::make_shared<WholeCategory>(registry_);
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, policy(OnFailure::kStop));
  runner.start();
  ASSERT_TRUE(runner.wait_for("whole_category", last.position, kTimeout));
  runner.stop();
  EXPECT_EQ(projection->total.load(), 105);
  EXPECT_EQ(store_->checkpoint("whole_category"), last.position);
  EXPECT_EQ(runner.status("whole_category").errors, 0U);
}

TEST_F(TypedProjectionTest, JsonThatDoesNotFitStopsTheProjectionWithATypedError) {
  const auto good = append("wallet-1", credited(5));
  append("wallet-3", wallet::raw("WalletCredited", 3, {{"amount_cents", "ten"}}));
  const auto last = append("wallet-1", credited(6));
  auto projection = std::make_shared<WalletBalances>(registry_);
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, policy(OnFailure::kStop));
  runner.start();
  EXPECT_FALSE(runner.wait_for("wallet_balances", last.position, kTimeout));
  const auto status = runner.status("wallet_balances");
  EXPECT_EQ(status.state, ProjectionState::kFailed);
  ASSERT_TRUE(status.last_error.has_value());
  EXPECT_THAT(*status.last_error, HasSubstr("\"WalletCredited\" v3"));
  EXPECT_THAT(*status.last_error, HasSubstr("of stream \"wallet-3\""));
  EXPECT_EQ(store_->checkpoint("wallet_balances"), good.position);
  EXPECT_EQ(projection->balances(), (std::map<std::string, std::int64_t>{{"wallet-1", 5}}));
}

TEST_F(TypedProjectionTest, UndecodableEventsAreParkedAsDeadLettersAndTheRestApplied) {
  append("wallet-1", credited(5));
  const auto bad = append("wallet-3", wallet::raw("WalletCredited", 3, {{"amount_cents", "ten"}}));
  // Written by a newer release: no upcaster reads WalletCredited v4.
  const auto newer = append("wallet-4", wallet::raw("WalletCredited", 4, {{"amount_cents", 1}}));
  const auto last = append("wallet-1", credited(6));
  auto projection = std::make_shared<WalletBalances>(registry_);
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, policy(OnFailure::kDeadLetter));
  runner.start();
  ASSERT_TRUE(runner.wait_for("wallet_balances", last.position, kTimeout));
  EXPECT_EQ(projection->balances(), (std::map<std::string, std::int64_t>{{"wallet-1", 11}}));
  const auto letters = store_->list_dead_letters({.projection = "wallet_balances"});
  ASSERT_EQ(letters.size(), 2U);
  EXPECT_EQ(letters[0].event.position, bad.position);
  EXPECT_THAT(letters[0].error, HasSubstr("does not fit its C++ type"));
  EXPECT_EQ(letters[1].event.position, newer.position);
  EXPECT_THAT(letters[1].error, HasSubstr("\"WalletCredited\" v4"));
  EXPECT_EQ(letters[1].attempts, 2);
}

TEST_F(TypedProjectionTest, AHandlerThatThrowsFollowsTheFailurePolicy) {
  append("wallet-1", credited(5));
  const auto boom = append("wallet-1", credited(7, "boom"));
  const auto last = append("wallet-1", credited(6));
  auto projection = std::make_shared<WalletBalances>(registry_);
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, policy(OnFailure::kDeadLetter));
  runner.start();
  ASSERT_TRUE(runner.wait_for("wallet_balances", last.position, kTimeout));
  EXPECT_EQ(projection->balances(), (std::map<std::string, std::int64_t>{{"wallet-1", 11}}));
  const auto letters = store_->list_dead_letters({.projection = "wallet_balances"});
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].event.position, boom.position);
  EXPECT_THAT(letters[0].error, HasSubstr("handler refuses currency boom"));
}

// A projection that neither overrides handle() nor declares a handler.
class Empty final : public InProcessProjection {
 public:
  std::string name() const override { return "empty"; }
};

TEST_F(TypedProjectionTest, AProjectionWithoutHandlersFailsItsEventsLoudly) {
  const auto last = append("wallet-1", credited(5));
  auto projection = std::make_shared<Empty>();
  EXPECT_TRUE(projection->filter().event_types.empty());
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, policy(OnFailure::kStop));
  runner.start();
  EXPECT_FALSE(runner.wait_for("empty", last.position, kTimeout));
  EXPECT_THAT(runner.status("empty").last_error.value_or(""),
              HasSubstr("neither overrides handle() nor declares typed handlers"));
}

// ---- The projection given/when/then of the test kit ------------------------------------------

// docs:begin typed-in-process-projection
// Credits per wallet, from typed events: FundsAdded events stored before the rename to
// WalletCredited, and the credit part of split WalletOpenedWithFunds events, arrive upcast.
class Credits final : public annals::projections::InProcessProjection {
 public:
  explicit Credits(const annals::EventRegistry& registry) : InProcessProjection(registry) {
    on<wallet::WalletCredited>(
        [this](const wallet::WalletCredited& e, const annals::EventContext& context) {
          const std::lock_guard lock(mutex_);
          cents_[context.stream_id().value()] += e.amount_cents;
        });
  }

  std::string name() const override { return "credits"; }
  void clear() override {
    const std::lock_guard lock(mutex_);
    cents_.clear();
  }
  std::map<std::string, std::int64_t> cents() const {
    const std::lock_guard lock(mutex_);
    return cents_;
  }

 private:
  mutable std::mutex mutex_;  // handlers run on the runner's thread, cents() on others
  std::map<std::string, std::int64_t> cents_;
};
// docs:end

TEST(ProjectionSpecTest, TheGuideExampleCountsCreditsStoredUnderEveryName) {
  const auto registry = wallet_registry();
  Credits credits(registry);
  annals::testkit::ProjectionSpec(registry)
      .given("wallet-1", WalletCredited{.amount_cents = 5, .currency = "EUR"})
      .given("wallet-1", wallet::raw("FundsAdded", 1, {{"amount", 2}}))
      .when(credits)
      .then_equals(std::map<std::string, std::int64_t>{{"wallet-1", 205}},
                   [&] { return credits.cents(); });
}

TEST(ProjectionSpecTest, GivenTypedAndOldEventsWhenProjectedThenTheReadModelIsExpected) {
  const auto registry = wallet_registry();
  // docs:begin projection-spec
  WalletBalances projection(registry);
  annals::testkit::ProjectionSpec(registry)
      .given("wallet-1", WalletCreated{.owner_name = "ada", .currency = "EUR"})
      .given("wallet-1", WalletCredited{.amount_cents = 5, .currency = "EUR"})
      .given("wallet-1", wallet::raw("FundsAdded", 1, {{"amount", 2}}))  // an old name
      .given("wallet-2",
             wallet::raw("WalletOpenedWithFunds", 1, {{"owner", "bob"}, {"initial", 3}}))
      .when(projection)
      .then_equals(std::map<std::string, std::int64_t>{{"wallet-1", 205}, {"wallet-2", 300}},
                   [&] { return projection.balances(); })
      .then([&] { EXPECT_EQ(projection.owners().at("wallet-2"), "bob"); });
  // docs:end
}

TEST(ProjectionSpecTest, ThenFailsNamesTheEventThatDoesNotDecode) {
  const auto registry = wallet_registry();
  WalletBalances projection(registry);
  annals::testkit::ProjectionSpec spec(registry);
  spec.given("wallet-1", wallet::raw("WalletCredited", 3, {{"amount_cents", "ten"}}))
      .when(projection)
      .then_fails("does not fit its C++ type");
  EXPECT_EQ(spec.outcome()->status.state, ProjectionState::kFailed);
}

TEST(ProjectionSpecTest, AWrongExpectationFailsTheTest) {
  const auto registry = wallet_registry();
  WalletBalances projection(registry);
  annals::testkit::ProjectionSpec spec(registry);
  spec.given("wallet-1", WalletCredited{.amount_cents = 5, .currency = "EUR"}).when(projection);
  const std::map<std::string, std::int64_t> wrong{{"wallet-1", 6}};
  const auto actual = [&] { return projection.balances(); };
  EXPECT_NONFATAL_FAILURE(spec.then_equals(wrong, actual),
                          "the read model is not the expected state");
}

}  // namespace
}  // namespace annals::projections
