// The in-memory read models, event by event: what --memory shows, and at-least-once delivery
// (an event delivered again is ignored).
#include <memory>

#include <gtest/gtest.h>

#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/projections/projection.hpp"
#include "in_memory_read_models.hpp"
#include "shop_domain.hpp"

namespace {

TEST(InMemoryReadModelsTest, ShowOrdersAndStockAndIgnoreEventsDeliveredAgain) {
  annals::EventRegistry registry;
  shop::register_events(registry);
  auto store = annals::make_in_memory_event_store();
  annals::CommandBus bus(*store, registry);
  shop::register_handlers(bus);
  bus.send(shop::ReceiveStock{"apple", 10});
  bus.send(shop::PlaceOrder{"o1", {{"apple", 3}}});
  bus.send(shop::ReserveStock{"apple", "o1", 3});
  bus.send(shop::RecordReservation{"o1", "apple"});
  bus.send(shop::ConfirmOrder{"o1"});

  auto models = shop::make_in_memory_read_models(registry);
  const auto events = store->read_all({});
  for (const auto& projection : models.projections) {
    auto in_process =
        std::dynamic_pointer_cast<annals::projections::InProcessProjection>(projection);
    ASSERT_NE(in_process, nullptr);
    for (const auto& event : events) {
      if (!projection->filter().matches(event)) continue;
      in_process->handle(event);
      in_process->handle(event);  // delivered again after a failed batch
    }
  }

  EXPECT_EQ(models.queries->order("o1"),
            (shop::OrderSummary{"o1", "confirmed", {{"apple", 3}}, 1, "", 3}));
  EXPECT_EQ(models.queries->stock("apple"), (shop::StockLevel{"apple", 7, 3}));
  EXPECT_EQ(models.queries->stock_levels(), (std::vector<shop::StockLevel>{{"apple", 7, 3}}));
  EXPECT_EQ(models.queries->order("o2"), std::nullopt);
  EXPECT_EQ(models.queries->stock("pear"), std::nullopt);

  // A rebuild forgets everything.
  for (const auto& projection : models.projections) {
    const auto in_process =
        std::dynamic_pointer_cast<annals::projections::InProcessProjection>(projection);
    ASSERT_NE(in_process, nullptr);
    in_process->clear();
  }
  EXPECT_EQ(models.queries->order("o1"), std::nullopt);
  EXPECT_TRUE(models.queries->stock_levels().empty());
}

}  // namespace
