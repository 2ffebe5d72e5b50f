// The order process manager, fed the log by hand (no runner): the whole flow, its
// idempotency under redelivery and after a crash between two of its commands, and two orders
// competing for the last units. Each test runs on the in-memory store and on PostgreSQL.
#include <latch>
#include <thread>

#include <gtest/gtest.h>

#include "inventory.hpp"
#include "order.hpp"
#include "order_saga.hpp"
#include "shop_fixture.hpp"

namespace {

using shop::Inventory;
using shop::Order;
using shop::OrderConfirmed;
using shop::OrderLineRefused;
using shop::OrderLineReserved;
using shop::OrderPlaced;
using shop::OrderRejected;
using shop::StockReceived;
using shop::StockReleased;
using shop::StockReserved;
using shop_test::drive;
using shop_test::events_of;
using shop_test::StoreKind;
using shop_test::unique_id;

class OrderSagaTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  OrderSagaTest() : shop_(GetParam()), saga_(*shop_.bus, *shop_.store, shop_.registry) {}

  // The state of an inventory, rebuilt from its stream.
  Inventory::State stock(const std::string& sku) {
    Inventory::State state;
    for (const auto& e : events_of<Inventory>(shop_, sku)) {
      state = annals::detail::evolve<Inventory>(std::move(state), e);
    }
    return state;
  }

  // The OrderPlaced event of an order, as stored.
  annals::RecordedEvent placed_event(const std::string& order_id) {
    return shop_.store->read_stream(annals::StreamId("order-" + order_id), {}).at(0);
  }

  shop_test::Shop shop_;
  shop::OrderSaga saga_;
  const std::string apple_ = unique_id("apple");
  const std::string pear_ = unique_id("pear");
};

TEST_P(OrderSagaTest, ConfirmsAnOrderWhoseLinesAreAllReserved) {
  auto& bus = *shop_.bus;
  bus.send(shop::ReceiveStock{apple_, 10});
  bus.send(shop::ReceiveStock{pear_, 5});
  const auto order = unique_id("o");
  bus.send(shop::PlaceOrder{order, {{apple_, 3}, {pear_, 5}}});

  drive(saga_, *shop_.store);

  EXPECT_EQ(events_of<Order>(shop_, order),
            (std::vector<Order::Event>{OrderPlaced{{{apple_, 3}, {pear_, 5}}},
                                       OrderLineReserved{apple_, 3}, OrderLineReserved{pear_, 5},
                                       OrderConfirmed{}}));
  EXPECT_EQ(events_of<Inventory>(shop_, apple_),
            (std::vector<Inventory::Event>{StockReceived{10}, StockReserved{order, 3}}));
  EXPECT_EQ(stock(apple_).available, 7);
  EXPECT_EQ(stock(apple_).reserved(), 3);
  EXPECT_EQ(stock(pear_).available, 0);
  EXPECT_EQ(stock(pear_).reserved(), 5);
}

TEST_P(OrderSagaTest, RejectsAnOrderWithALineShortAndReleasesWhatItReserved) {
  auto& bus = *shop_.bus;
  bus.send(shop::ReceiveStock{apple_, 10});
  bus.send(shop::ReceiveStock{pear_, 5});
  const auto order = unique_id("o");
  bus.send(shop::PlaceOrder{order, {{apple_, 3}, {pear_, 6}}});

  drive(saga_, *shop_.store);

  const std::string reason = "insufficient stock of " + pear_ + ": requested 6, available 5";
  EXPECT_EQ(events_of<Order>(shop_, order),
            (std::vector<Order::Event>{OrderPlaced{{{apple_, 3}, {pear_, 6}}},
                                       OrderLineReserved{apple_, 3}, OrderLineRefused{pear_, 6, 5},
                                       OrderRejected{reason}}));
  EXPECT_EQ(events_of<Inventory>(shop_, apple_),
            (std::vector<Inventory::Event>{StockReceived{10}, StockReserved{order, 3},
                                           StockReleased{order, 3}}));
  EXPECT_EQ(events_of<Inventory>(shop_, pear_), (std::vector<Inventory::Event>{StockReceived{5}}));
  EXPECT_EQ(stock(apple_).available, 10);
  EXPECT_EQ(stock(apple_).reserved(), 0);
  EXPECT_EQ(stock(pear_).available, 5);
}

TEST_P(OrderSagaTest, RedeliveryOfTheWholeLogChangesNothing) {
  auto& bus = *shop_.bus;
  bus.send(shop::ReceiveStock{apple_, 10});
  bus.send(shop::ReceiveStock{pear_, 1});
  const auto confirmed = unique_id("o");
  const auto rejected = unique_id("o");
  bus.send(shop::PlaceOrder{confirmed, {{apple_, 4}}});
  bus.send(shop::PlaceOrder{rejected, {{apple_, 2}, {pear_, 2}}});
  drive(saga_, *shop_.store);
  const auto order_events = events_of<Order>(shop_, confirmed);
  const auto rejected_events = events_of<Order>(shop_, rejected);
  const auto apple_events = events_of<Inventory>(shop_, apple_);
  const auto newest = shop_.store->newest();

  // A restart from the start of the log (a lost checkpoint), by a saga in a new process.
  auto other_bus = shop_.make_bus();
  shop::OrderSaga restarted(*other_bus, *shop_.store, shop_.registry);
  drive(restarted, *shop_.store);
  // And the same saga again over the same events.
  drive(saga_, *shop_.store);

  EXPECT_EQ(events_of<Order>(shop_, confirmed), order_events);
  EXPECT_EQ(events_of<Order>(shop_, rejected), rejected_events);
  EXPECT_EQ(events_of<Inventory>(shop_, apple_), apple_events);
  EXPECT_EQ(shop_.store->newest(), newest) << "a redelivery appended something";
  EXPECT_EQ(stock(apple_).available, 6);
  EXPECT_EQ(stock(apple_).reserved(), 4);
}

TEST_P(OrderSagaTest, ACrashBetweenReservingAndRecordingReservesOnce) {
  auto& bus = *shop_.bus;
  bus.send(shop::ReceiveStock{apple_, 10});
  const auto order = unique_id("o");
  bus.send(shop::PlaceOrder{order, {{apple_, 3}}});
  // The saga reserved the line, then crashed before recording it on the order.
  const auto trigger = placed_event(order);
  bus.send(shop::ReserveStock{apple_, order, 3},
           {.command_id = shop::saga_command_id(trigger.id, "reserve/" + apple_)});

  drive(saga_, *shop_.store);

  EXPECT_EQ(events_of<Inventory>(shop_, apple_),
            (std::vector<Inventory::Event>{StockReceived{10}, StockReserved{order, 3}}));
  EXPECT_EQ(events_of<Order>(shop_, order),
            (std::vector<Order::Event>{OrderPlaced{{{apple_, 3}}}, OrderLineReserved{apple_, 3},
                                       OrderConfirmed{}}));
}

TEST_P(OrderSagaTest, ARecordedRefusalStandsWhenStockArrivesBeforeTheRedelivery) {
  auto& bus = *shop_.bus;
  bus.send(shop::ReceiveStock{pear_, 1});
  const auto order = unique_id("o");
  bus.send(shop::PlaceOrder{order, {{pear_, 2}}});
  const auto trigger = placed_event(order);
  saga_.handle(trigger);  // the refusal is recorded; then the process dies
  bus.send(shop::ReceiveStock{pear_, 100});

  drive(saga_, *shop_.store);  // OrderPlaced is delivered again, then the rest

  EXPECT_EQ(events_of<Order>(shop_, order),
            (std::vector<Order::Event>{
                OrderPlaced{{{pear_, 2}}}, OrderLineRefused{pear_, 2, 1},
                OrderRejected{"insufficient stock of " + pear_ + ": requested 2, available 1"}}));
  EXPECT_EQ(events_of<Inventory>(shop_, pear_),
            (std::vector<Inventory::Event>{StockReceived{1}, StockReceived{100}}));
}

TEST_P(OrderSagaTest, ReleasesStockReservedAfterTheOrderWasRejected) {
  auto& bus = *shop_.bus;
  bus.send(shop::ReceiveStock{apple_, 10});
  const auto order = unique_id("o");
  bus.send(shop::PlaceOrder{order, {{apple_, 3}}});
  // An operator rejects the order while the saga is reserving its stock.
  bus.send(shop::RejectOrder{order, "cancelled by the customer"});

  drive(saga_, *shop_.store);

  // The saga saw the order placed (it loads the current state, rejected: it reserves nothing).
  EXPECT_EQ(events_of<Order>(shop_, order),
            (std::vector<Order::Event>{OrderPlaced{{{apple_, 3}}},
                                       OrderRejected{"cancelled by the customer"}}));
  EXPECT_EQ(stock(apple_).available, 10);

  // The same race, the other way round: the reservation lands after the rejection.
  const auto late = unique_id("o");
  bus.send(shop::PlaceOrder{late, {{apple_, 3}}});
  const auto trigger = placed_event(late);
  bus.send(shop::ReserveStock{apple_, late, 3},
           {.command_id = shop::saga_command_id(trigger.id, "reserve/" + apple_)});
  bus.send(shop::RejectOrder{late, "cancelled by the customer"});
  bus.send(shop::RecordReservation{late, apple_},
           {.command_id = shop::saga_command_id(trigger.id, "reserved/" + apple_)});

  drive(saga_, *shop_.store);

  EXPECT_EQ(events_of<Order>(shop_, late),
            (std::vector<Order::Event>{OrderPlaced{{{apple_, 3}}},
                                       OrderRejected{"cancelled by the customer"},
                                       OrderLineReserved{apple_, 3}}));
  EXPECT_EQ(stock(apple_).available, 10);
  EXPECT_EQ(stock(apple_).reserved(), 0);
}

TEST_P(OrderSagaTest, TwoOrdersCompetingForTheLastUnitsConfirmExactlyOne) {
  shop_.bus->send(shop::ReceiveStock{apple_, 5});
  const auto first = unique_id("o");
  const auto second = unique_id("o");
  shop_.bus->send(shop::PlaceOrder{first, {{apple_, 3}}});
  shop_.bus->send(shop::PlaceOrder{second, {{apple_, 3}}});
  const auto first_placed = placed_event(first);
  const auto second_placed = placed_event(second);

  // Two saga instances (as in two processes, each with its own bus and cache) handle the two
  // orders at the same moment: both reserve from the same inventory.
  auto other_bus = shop_.make_bus();
  shop::OrderSaga other(*other_bus, *shop_.store, shop_.registry);
  std::latch start(2);
  std::thread a([&] {
    start.arrive_and_wait();
    saga_.handle(first_placed);
  });
  std::thread b([&] {
    start.arrive_and_wait();
    other.handle(second_placed);
  });
  a.join();
  b.join();
  drive(saga_, *shop_.store);

  int confirmed = 0;
  int rejected = 0;
  for (const auto& order : {first, second}) {
    const auto events = events_of<Order>(shop_, order);
    ASSERT_FALSE(events.empty());
    if (std::holds_alternative<OrderConfirmed>(events.back())) ++confirmed;
    if (std::holds_alternative<OrderRejected>(events.back())) ++rejected;
  }
  EXPECT_EQ(confirmed, 1);
  EXPECT_EQ(rejected, 1);
  EXPECT_EQ(stock(apple_).available, 2);
  EXPECT_EQ(stock(apple_).reserved(), 3);
  EXPECT_EQ(events_of<Inventory>(shop_, apple_).size(), 2U) << "one reservation, nothing released";
}

TEST(OrderSagaIdTest, CommandIdsDeriveFromTheTriggerAndTheStep) {
  const auto trigger = annals::EventId::parse("0190f1a2-0000-7000-8000-000000000001");
  const auto other = annals::EventId::parse("0190f1a2-0000-7000-8000-000000000002");
  EXPECT_EQ(shop::saga_command_id(trigger, "confirm"), shop::saga_command_id(trigger, "confirm"));
  EXPECT_NE(shop::saga_command_id(trigger, "confirm"), shop::saga_command_id(other, "confirm"));
  EXPECT_NE(shop::saga_command_id(trigger, "reserve/a"),
            shop::saga_command_id(trigger, "reserve/b"));
  // A name-based UUID, version 5.
  EXPECT_EQ(shop::saga_command_id(trigger, "confirm").at(14), '5');
}

INSTANTIATE_TEST_SUITE_P(Stores, OrderSagaTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kPostgres),
                         shop_test::store_name);

}  // namespace
