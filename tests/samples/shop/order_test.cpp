// The shop's Order decider, rule by rule (given/when/then, no store).
#include <gtest/gtest.h>

#include "annals/testkit/decider_spec.hpp"
#include "order.hpp"

namespace {

// The state after `events`, folded with the decider's evolve (as the repository does).
template <typename D, typename... Es>
typename D::State fold(const Es&... events) {
  typename D::State state;
  ((state = D::evolve(std::move(state), events)), ...);
  return state;
}

using annals::testkit::given;
using shop::Order;
using shop::OrderConfirmed;
using shop::OrderLineRefused;
using shop::OrderLineReserved;
using shop::OrderPlaced;
using shop::OrderRejected;

const OrderPlaced kPlaced{{{"apple", 3}, {"pear", 1}}};

TEST(OrderTest, PlacesAnOrderWithItsLines) {
  given<Order>()
      .when(shop::PlaceOrder{"o1", {{"apple", 3}, {"pear", 1}}})
      .then(OrderPlaced{{{"apple", 3}, {"pear", 1}}});
}

TEST(OrderTest, RefusesToPlaceTwice) {
  given<Order>(kPlaced)
      .when(shop::PlaceOrder{"o1", {{"apple", 3}}})
      .then_throws<shop::OrderAlreadyPlaced>([](const shop::OrderAlreadyPlaced& e) {
        EXPECT_STREQ(e.what(), "order \"o1\" is already placed");
      });
}

TEST(OrderTest, RefusesInvalidLines) {
  given<Order>()
      .when(shop::PlaceOrder{"o1", {}})
      .then_throws<shop::InvalidOrder>([](const shop::InvalidOrder& e) {
        EXPECT_STREQ(e.what(), "invalid order: an order needs at least one line");
      });
  given<Order>()
      .when(shop::PlaceOrder{"o1", {{"apple", 0}}})
      .then_throws<shop::InvalidOrder>([](const shop::InvalidOrder& e) {
        EXPECT_STREQ(e.what(),
                     "invalid order: quantity 0 of SKU \"apple\" is not between 1 and 1000000");
      });
  given<Order>()
      .when(shop::PlaceOrder{"o1", {{"apple", shop::kMaxQuantity + 1}}})
      .then_throws<shop::InvalidOrder>();
  given<Order>()
      .when(shop::PlaceOrder{"o1", {{"ap ple", 1}}})
      .then_throws<shop::InvalidOrder>([](const shop::InvalidOrder& e) {
        EXPECT_STREQ(e.what(), "invalid order: invalid SKU \"ap ple\"");
      });
  given<Order>()
      .when(shop::PlaceOrder{"o1", {{"apple", 1}, {"apple", 2}}})
      .then_throws<shop::InvalidOrder>([](const shop::InvalidOrder& e) {
        EXPECT_STREQ(e.what(), "invalid order: SKU \"apple\" twice");
      });
  std::vector<shop::OrderLine> many;
  for (std::size_t i = 0; i <= shop::kMaxLines; ++i) many.push_back({"sku" + std::to_string(i), 1});
  given<Order>()
      .when(shop::PlaceOrder{"o1", many})
      .then_throws<shop::InvalidOrder>([](const shop::InvalidOrder& e) {
        EXPECT_STREQ(e.what(), "invalid order: 101 lines, at most 100 allowed");
      });
}

TEST(OrderTest, RecordsEachLineOutcomeOnce) {
  given<Order>(kPlaced)
      .when(shop::RecordReservation{"o1", "apple"})
      .then(OrderLineReserved{"apple", 3});
  given<Order>(kPlaced, OrderLineReserved{"apple", 3})
      .when(shop::RecordReservation{"o1", "apple"})
      .then_nothing();
  given<Order>(kPlaced)
      .when(shop::RecordRefusal{"o1", "pear", 1, 0})
      .then(OrderLineRefused{"pear", 1, 0});
  given<Order>(kPlaced, OrderLineRefused{"pear", 1, 0})
      .when(shop::RecordRefusal{"o1", "pear", 1, 0})
      .then_nothing();
  // A refusal of a line whose stock is held changes nothing: the stock is held.
  given<Order>(kPlaced, OrderLineReserved{"apple", 3})
      .when(shop::RecordRefusal{"o1", "apple", 3, 0})
      .then_nothing();
}

TEST(OrderTest, RecordsStockHeldForARefusedLineSoThatItIsReleased) {
  given<Order>(kPlaced, OrderLineRefused{"apple", 3, 0}, OrderRejected{"no apples"})
      .when(shop::RecordReservation{"o1", "apple"})
      .then(OrderLineReserved{"apple", 3});
}

TEST(OrderTest, RefusesOutcomesOfUnknownOrdersAndLines) {
  given<Order>()
      .when(shop::RecordReservation{"o9", "apple"})
      .then_throws<shop::OrderNotFound>([](const shop::OrderNotFound& e) {
        EXPECT_STREQ(e.what(), "order \"o9\" does not exist");
      });
  given<Order>(kPlaced)
      .when(shop::RecordReservation{"o1", "kiwi"})
      .then_throws<shop::UnknownOrderLine>([](const shop::UnknownOrderLine& e) {
        EXPECT_EQ(e.sku(), "kiwi");
        EXPECT_STREQ(e.what(), "order \"o1\" has no line for SKU \"kiwi\"");
      });
  given<Order>(kPlaced)
      .when(shop::RecordRefusal{"o1", "kiwi", 1, 0})
      .then_throws<shop::UnknownOrderLine>();
}

TEST(OrderTest, ConfirmsOnlyWhenEveryLineIsReserved) {
  given<Order>(kPlaced, OrderLineReserved{"apple", 3}, OrderLineReserved{"pear", 1})
      .when(shop::ConfirmOrder{"o1"})
      .then(OrderConfirmed{});
  given<Order>(kPlaced, OrderLineReserved{"apple", 3})
      .when(shop::ConfirmOrder{"o1"})
      .then_throws<shop::OrderNotFullyReserved>([](const shop::OrderNotFullyReserved& e) {
        EXPECT_EQ(e.reserved(), 1U);
        EXPECT_EQ(e.lines(), 2U);
      });
  given<Order>(kPlaced, OrderLineRefused{"apple", 3, 0}, OrderLineReserved{"apple", 3},
               OrderLineReserved{"pear", 1})
      .when(shop::ConfirmOrder{"o1"})
      .then_throws<shop::OrderNotFullyReserved>();
  given<Order>().when(shop::ConfirmOrder{"o1"}).then_throws<shop::OrderNotFound>();
}

TEST(OrderTest, NeverConfirmsOrRejectsTwice) {
  const auto confirmed = given<Order>(kPlaced, OrderLineReserved{"apple", 3},
                                      OrderLineReserved{"pear", 1}, OrderConfirmed{});
  confirmed.when(shop::ConfirmOrder{"o1"}).then_nothing();
  confirmed.when(shop::RejectOrder{"o1", "late"})
      .then_throws<shop::OrderAlreadyConfirmed>([](const shop::OrderAlreadyConfirmed& e) {
        EXPECT_STREQ(e.what(), "order \"o1\" is already confirmed");
      });

  const auto rejected = given<Order>(kPlaced, OrderRejected{"no apples"});
  rejected.when(shop::RejectOrder{"o1", "again"}).then_nothing();
  rejected.when(shop::ConfirmOrder{"o1"})
      .then_throws<shop::OrderAlreadyRejected>([](const shop::OrderAlreadyRejected& e) {
        EXPECT_STREQ(e.what(), "order \"o1\" is already rejected");
      });
}

TEST(OrderTest, RejectsAPlacedOrderWithItsReason) {
  given<Order>(kPlaced, OrderLineRefused{"pear", 1, 0})
      .when(shop::RejectOrder{"o1", "insufficient stock"})
      .then(OrderRejected{"insufficient stock"});
  given<Order>().when(shop::RejectOrder{"o1", "x"}).then_throws<shop::OrderNotFound>();
}

TEST(OrderTest, StateFollowsTheLineOutcomes) {
  const auto state = fold<Order>(kPlaced, OrderLineReserved{"apple", 3},
                                 OrderLineRefused{"pear", 1, 0}, OrderRejected{"no pears"});
  EXPECT_EQ(state.status, Order::Status::kRejected);
  EXPECT_EQ(state.reserved, (std::set<std::string>{"apple"}));
  EXPECT_EQ(state.refused, (std::set<std::string>{"pear"}));
  EXPECT_EQ(state.reason, "no pears");
  EXPECT_FALSE(state.fully_reserved());
  EXPECT_STREQ(shop::to_string(state.status), "rejected");
}

TEST(OrderTest, ValidatesIds) {
  EXPECT_TRUE(shop::is_valid_id("o-1.2_3~"));
  EXPECT_FALSE(shop::is_valid_id(""));
  EXPECT_FALSE(shop::is_valid_id("a/b"));
  EXPECT_FALSE(shop::is_valid_id(std::string(shop::kMaxIdBytes + 1, 'a')));
  EXPECT_TRUE(shop::is_valid_id(std::string(shop::kMaxIdBytes, 'a')));
}

}  // namespace
