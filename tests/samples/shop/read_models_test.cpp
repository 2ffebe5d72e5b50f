// The shop's document read models alone (no saga: the commands it would send are sent by
// hand), on the in-memory App and on PostgreSQL: the same projections and queries answer the
// same, a typed query with after() reads its own writes, and a rebuild replays to the same
// views.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "annals/projections/app.hpp"
#include "annals/projections/postgres/open.hpp"
#include "read_models.hpp"
#include "shop_domain.hpp"
#include "shop_fixture.hpp"
#include "views.hpp"

namespace {

using namespace std::chrono_literals;
using shop::OrderSummary;
using shop::StockLevel;
using shop_test::StoreKind;
using shop_test::unique_id;

class ShopReadModelsTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    const annals::projections::RunnerOptions runner{.poll_interval = 200ms,
                                                    .request_interval = 20ms};
    app_ = GetParam() == StoreKind::kMemory
               ? annals::open_in_memory({.runner = runner})
               : annals::postgres::open(annals::testing::test_database_url(), {.runner = runner});
    shop::register_events(app_->registry());
    shop::register_handlers(app_->bus());
    for (auto& projection : shop::make_read_models(app_->registry())) {
      app_->runner().add(projection);
    }
    app_->runner().start();
  }

  // Waits until the runner carried out a rebuild of `name` (it reports the request's state).
  void rebuild(std::string_view name) {
    const auto request = app_->runner().rebuild(std::string(name));
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      const auto state = app_->projection_store().rebuild_request(request.id)->state;
      ASSERT_NE(state, annals::projections::RebuildState::kFailed);
      if (state == annals::projections::RebuildState::kDone) return;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the rebuild did not finish";
      std::this_thread::sleep_for(5ms);  // polling a state the runner reports, not a sync
    }
  }

  std::unique_ptr<annals::App> app_;
  const std::string apple_ = unique_id("apple");
  const std::string pear_ = unique_id("pear");
  const std::string order_ = unique_id("o");
};

TEST_P(ShopReadModelsTest, ShowOrdersAndStockAndARebuildShowsTheSame) {
  auto& bus = app_->bus();
  bus.send(shop::ReceiveStock{apple_, 10});
  bus.send(shop::ReceiveStock{pear_, 2});
  bus.send(shop::PlaceOrder{order_, {{apple_, 3}}});
  bus.send(shop::ReserveStock{apple_, order_, 3});
  bus.send(shop::RecordReservation{order_, apple_});
  const auto last = bus.send(shop::ConfirmOrder{order_});

  // Read your writes: each query waits until its collection's projection passed `last`.
  const OrderSummary confirmed{order_, "confirmed", {{apple_, 3}}, 1, "", 3};
  EXPECT_EQ(app_->collection<OrderSummary>(std::string(shop::kOrderSummaries))
                .after(last.position, 20s)
                .get(order_),
            confirmed);
  EXPECT_EQ(app_->collection<StockLevel>(std::string(shop::kStockLevels))
                .after(last.position, 20s)
                .get(apple_),
            (StockLevel{apple_, 7, 3}));

  const shop::ShopQueries queries(app_->documents());
  const auto check = [&] {
    EXPECT_EQ(queries.order(order_), confirmed);
    EXPECT_EQ(queries.stock(apple_), (StockLevel{apple_, 7, 3}));
    EXPECT_EQ(queries.stock(pear_), (StockLevel{pear_, 2, 0}));
    EXPECT_EQ(queries.order(unique_id("o")), std::nullopt);
    EXPECT_EQ(queries.stock("no/such/sku"), std::nullopt);  // no SKU can have that id
    // Every SKU, by SKU (the database may hold other tests' SKUs too).
    std::vector<StockLevel> ours;
    for (const auto& level : queries.stock_levels()) {
      if (level.sku == apple_ || level.sku == pear_) ours.push_back(level);
    }
    const StockLevel apple{apple_, 7, 3};
    const StockLevel pear{pear_, 2, 0};
    const auto expected = apple_ < pear_ ? std::vector{apple, pear} : std::vector{pear, apple};
    EXPECT_EQ(ours, expected);
  };
  check();

  // A rebuild empties the collections in the transaction that resets the checkpoint, then
  // replays the log: the same views, every event counted once.
  rebuild(shop::kOrderSummariesProjection);
  rebuild(shop::kStockLevelsProjection);
  ASSERT_TRUE(
      app_->runner().wait_for(std::string(shop::kOrderSummariesProjection), last.position, 20s));
  ASSERT_TRUE(
      app_->runner().wait_for(std::string(shop::kStockLevelsProjection), last.position, 20s));
  check();
}

TEST_P(ShopReadModelsTest, AStoreTheProjectionsNeverRanOnShowsNothing) {
  // Another App on the same store, whose runner never started: on PostgreSQL it sees what the
  // first App's projections wrote; in memory it has a store of its own, never set up.
  const auto other = GetParam() == StoreKind::kMemory
                         ? annals::open_in_memory()
                         : annals::postgres::open(annals::testing::test_database_url(), {});
  const shop::ShopQueries queries(other->documents());
  EXPECT_EQ(queries.order(order_), std::nullopt);
  EXPECT_EQ(queries.stock(apple_), std::nullopt);
  if (GetParam() == StoreKind::kMemory) {
    EXPECT_TRUE(queries.stock_levels().empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, ShopReadModelsTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kPostgres),
                         shop_test::store_name);

}  // namespace
