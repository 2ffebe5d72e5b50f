// The shop's Inventory decider, rule by rule (given/when/then, no store).
#include <gtest/gtest.h>

#include "annals/testkit/decider_spec.hpp"
#include "inventory.hpp"

namespace {

// The state after `events`, folded with the decider's evolve (as the repository does).
template <typename D, typename... Es>
typename D::State fold(const Es&... events) {
  typename D::State state;
  ((state = D::evolve(std::move(state), events)), ...);
  return state;
}

using annals::testkit::given;
using shop::Inventory;
using shop::StockReceived;
using shop::StockReleased;
using shop::StockReserved;

TEST(InventoryTest, ReceivesStock) {
  given<Inventory>().when(shop::ReceiveStock{"apple", 10}).then(StockReceived{10});
  given<Inventory>()
      .when(shop::ReceiveStock{"apple", 0})
      .then_throws<shop::InvalidQuantity>(
          [](const shop::InvalidQuantity& e) { EXPECT_EQ(e.quantity(), 0); });
  given<Inventory>().when(shop::ReceiveStock{"apple", -5}).then_throws<shop::InvalidQuantity>();
}

TEST(InventoryTest, RefusesToHoldMoreThanTheLimit) {
  std::vector<Inventory::Event> full;
  for (std::int64_t held = 0; held < shop::kMaxStock; held += shop::kMaxQuantity) {
    full.emplace_back(StockReceived{shop::kMaxQuantity});
  }
  // kMaxStock is a multiple of kMaxQuantity: the SKU is exactly full.
  annals::testkit::DeciderSpec<Inventory> spec(full);
  spec.when(shop::ReceiveStock{"apple", 1}).then_throws<shop::StockLimitExceeded>();
}

TEST(InventoryTest, ReservesWhatIsAvailable) {
  given<Inventory>(StockReceived{10})
      .when(shop::ReserveStock{"apple", "o1", 10})
      .then(StockReserved{"o1", 10});
}

TEST(InventoryTest, RefusesToReserveMoreThanIsAvailable) {
  given<Inventory>(StockReceived{10}, StockReserved{"o1", 8})
      .when(shop::ReserveStock{"apple", "o2", 3})
      .then_throws<shop::InsufficientStock>([](const shop::InsufficientStock& e) {
        EXPECT_EQ(e.sku(), "apple");
        EXPECT_EQ(e.requested(), 3);
        EXPECT_EQ(e.available(), 2);
        EXPECT_STREQ(e.what(), "insufficient stock of SKU \"apple\": requested 3, available 2");
      });
  given<Inventory>()
      .when(shop::ReserveStock{"apple", "o1", 1})
      .then_throws<shop::InsufficientStock>(
          [](const shop::InsufficientStock& e) { EXPECT_EQ(e.available(), 0); });
  given<Inventory>(StockReceived{10})
      .when(shop::ReserveStock{"apple", "o1", 0})
      .then_throws<shop::InvalidQuantity>();
}

TEST(InventoryTest, ReservesOncePerOrder) {
  given<Inventory>(StockReceived{10}, StockReserved{"o1", 4})
      .when(shop::ReserveStock{"apple", "o1", 4})
      .then_nothing();
  // Even when the stock no longer covers it: the order already holds its units.
  given<Inventory>(StockReceived{4}, StockReserved{"o1", 4})
      .when(shop::ReserveStock{"apple", "o1", 4})
      .then_nothing();
  // A released order's process is over: it does not reserve again.
  given<Inventory>(StockReceived{10}, StockReserved{"o1", 4}, StockReleased{"o1", 4})
      .when(shop::ReserveStock{"apple", "o1", 4})
      .then_nothing();
}

TEST(InventoryTest, ReleasesWhatTheOrderHoldsOnce) {
  given<Inventory>(StockReceived{10}, StockReserved{"o1", 4})
      .when(shop::ReleaseStock{"apple", "o1"})
      .then(StockReleased{"o1", 4});
  given<Inventory>(StockReceived{10}, StockReserved{"o1", 4}, StockReleased{"o1", 4})
      .when(shop::ReleaseStock{"apple", "o1"})
      .then_nothing();
  given<Inventory>(StockReceived{10}).when(shop::ReleaseStock{"apple", "o1"}).then_nothing();
}

TEST(InventoryTest, StateCountsAvailableAndReservedUnits) {
  const auto state = fold<Inventory>(StockReceived{10}, StockReserved{"o1", 4},
                                     StockReserved{"o2", 3}, StockReleased{"o1", 4});
  EXPECT_EQ(state.available, 7);
  EXPECT_EQ(state.reserved(), 3);
  EXPECT_EQ(state.reservations, (std::map<std::string, std::int64_t>{{"o2", 3}}));
  EXPECT_EQ(state.released, (std::set<std::string>{"o1"}));
}

}  // namespace
