// The shop end to end, as the `shop` front runs it: commands through the bus, the order
// process manager and both read models run by a ProjectionRunner, checkpoints in a
// ProjectionStore. On the in-memory stores and on PostgreSQL (exactly-once read models).
#include <chrono>
#include <latch>
#include <thread>

#include <gtest/gtest.h>

#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "inventory.hpp"
#include "order.hpp"
#include "shop_app.hpp"
#include "shop_fixture.hpp"
#include "views.hpp"

namespace {

using namespace std::chrono_literals;
using shop::OrderLine;
using shop::OrderSummary;
using shop::StockLevel;
using shop_test::StoreKind;
using shop_test::unique_id;

constexpr auto kSettle = 20s;

class ShopFlowTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  static std::unique_ptr<shop::ShopApp> open_app() {
    shop::ShopAppOptions options;
    if (GetParam() == StoreKind::kMemory) {
      options.memory = true;
    } else {
      options.database_url = annals::testing::test_database_url();
    }
    options.runner.poll_interval = 200ms;
    options.runner.request_interval = 50ms;
    auto app = std::make_unique<shop::ShopApp>(options);
    app->start();
    return app;
  }

  std::unique_ptr<shop::ShopApp> app_ = open_app();
  const std::string apple_ = unique_id("apple");
  const std::string pear_ = unique_id("pear");
};

TEST_P(ShopFlowTest, AnOrderWhoseLinesAreAllReservedIsConfirmed) {
  auto& bus = app_->bus();
  bus.send(shop::ReceiveStock{apple_, 10});
  bus.send(shop::ReceiveStock{pear_, 5});
  const auto order = unique_id("o");
  bus.send(shop::PlaceOrder{order, {{apple_, 3}, {pear_, 5}}});

  ASSERT_TRUE(app_->settle(kSettle));

  EXPECT_EQ(app_->queries().order(order),
            (OrderSummary{order, "confirmed", {{apple_, 3}, {pear_, 5}}, 2, "", 4}));
  EXPECT_EQ(app_->queries().stock(apple_), (StockLevel{apple_, 7, 3}));
  EXPECT_EQ(app_->queries().stock(pear_), (StockLevel{pear_, 0, 5}));
}

TEST_P(ShopFlowTest, AnOrderWithOneLineShortIsRejectedAndItsStockComesBack) {
  auto& bus = app_->bus();
  bus.send(shop::ReceiveStock{apple_, 10});
  bus.send(shop::ReceiveStock{pear_, 5});
  const auto order = unique_id("o");
  bus.send(shop::PlaceOrder{order, {{apple_, 3}, {pear_, 6}}});

  ASSERT_TRUE(app_->settle(kSettle));

  EXPECT_EQ(app_->queries().order(order),
            (OrderSummary{order,
                          "rejected",
                          {{apple_, 3}, {pear_, 6}},
                          1,
                          "insufficient stock of " + pear_ + ": requested 6, available 5",
                          4}));
  EXPECT_EQ(app_->queries().stock(apple_), (StockLevel{apple_, 10, 0}));
  EXPECT_EQ(app_->queries().stock(pear_), (StockLevel{pear_, 5, 0}));
}

TEST_P(ShopFlowTest, TwoOrdersCompetingForTheLastUnitsConfirmExactlyOne) {
  app_->bus().send(shop::ReceiveStock{apple_, 5});
  const auto first = unique_id("o");
  const auto second = unique_id("o");
  // Two clients place their orders at the same moment.
  std::latch start(2);
  std::thread a([&] {
    start.arrive_and_wait();
    app_->bus().send(shop::PlaceOrder{first, {{apple_, 3}}});
  });
  std::thread b([&] {
    start.arrive_and_wait();
    app_->bus().send(shop::PlaceOrder{second, {{apple_, 3}}});
  });
  a.join();
  b.join();

  ASSERT_TRUE(app_->settle(kSettle));

  const auto one = app_->queries().order(first);
  const auto other = app_->queries().order(second);
  ASSERT_TRUE(one && other);
  EXPECT_EQ((one->status == "confirmed") + (other->status == "confirmed"), 1);
  EXPECT_EQ((one->status == "rejected") + (other->status == "rejected"), 1);
  EXPECT_EQ(app_->queries().stock(apple_), (StockLevel{apple_, 2, 3}));
}

TEST_P(ShopFlowTest, ReplayingTheProcessManagerFromTheStartChangesNothing) {
  auto& bus = app_->bus();
  bus.send(shop::ReceiveStock{apple_, 10});
  bus.send(shop::ReceiveStock{pear_, 1});
  const auto confirmed = unique_id("o");
  const auto rejected = unique_id("o");
  bus.send(shop::PlaceOrder{confirmed, {{apple_, 4}}});
  bus.send(shop::PlaceOrder{rejected, {{apple_, 2}, {pear_, 2}}});
  ASSERT_TRUE(app_->settle(kSettle));
  const auto head = app_->store().head_position();
  const auto apple_version = app_->store().stream_version(annals::StreamId("inventory-" + apple_));

  // A restart from an older checkpoint: the process manager's checkpoint goes back to the
  // start of the log, and it sees every order event again.
  const auto request = app_->runner().rebuild(std::string(shop::kOrderSagaName));
  const auto deadline = std::chrono::steady_clock::now() + kSettle;
  for (;;) {
    const auto state = app_->projection_store().rebuild_request(request.id)->state;
    ASSERT_NE(state, annals::projections::RebuildState::kFailed);
    if (state == annals::projections::RebuildState::kDone) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the rebuild did not finish";
    std::this_thread::sleep_for(10ms);  // polling a state the runner reports, not a sync
  }
  ASSERT_TRUE(app_->settle(kSettle));

  EXPECT_EQ(app_->store().head_position(), head) << "the replay appended events";
  EXPECT_EQ(app_->store().stream_version(annals::StreamId("inventory-" + apple_)), apple_version);
  ASSERT_TRUE(app_->queries().order(confirmed).has_value());
  ASSERT_TRUE(app_->queries().order(rejected).has_value());
  EXPECT_EQ(app_->queries().order(confirmed)->status, "confirmed");
  EXPECT_EQ(app_->queries().order(rejected)->status, "rejected");
  EXPECT_EQ(app_->queries().stock(apple_), (StockLevel{apple_, 6, 4}));
  EXPECT_EQ(app_->queries().stock(pear_), (StockLevel{pear_, 1, 0}));
}

// Only PostgreSQL outlives a process.
class ShopFlowRestartTest : public ShopFlowTest {};

TEST_P(ShopFlowRestartTest, ANewProcessContinuesWhereTheLogSaysTheOrdersAre) {
  auto& bus = app_->bus();
  bus.send(shop::ReceiveStock{apple_, 10});
  const auto order = unique_id("o");
  // Placed while no process manager runs: the first process stops before it sees the order.
  app_->stop();
  const auto placed = bus.send(shop::PlaceOrder{order, {{apple_, 4}}});
  app_.reset();

  app_ = open_app();
  // This process appended nothing: it waits for the order it knows of (the log's head may
  // not show it yet while a transaction elsewhere in the cluster is open).
  ASSERT_TRUE(app_->settle(kSettle, placed.position));

  EXPECT_EQ(app_->queries().order(order),
            (OrderSummary{order, "confirmed", {{apple_, 4}}, 1, "", 3}));
  EXPECT_EQ(app_->queries().stock(apple_), (StockLevel{apple_, 6, 4}));
}

INSTANTIATE_TEST_SUITE_P(Stores, ShopFlowTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kPostgres),
                         shop_test::store_name);
INSTANTIATE_TEST_SUITE_P(Stores, ShopFlowRestartTest, ::testing::Values(StoreKind::kPostgres),
                         shop_test::store_name);

}  // namespace
