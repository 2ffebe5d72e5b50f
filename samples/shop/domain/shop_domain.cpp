#include "shop_domain.hpp"

namespace shop {

void register_events(annals::EventRegistry& registry) {
  registry.register_events<Order>();
  registry.register_events<Inventory>();
}

// docs:begin shop-wiring
void register_handlers(annals::CommandBus& bus) {
  bus.handle<Order>(&PlaceOrder::order_id);
  bus.handle<Order>(&RecordReservation::order_id);
  bus.handle<Order>(&RecordRefusal::order_id);
  bus.handle<Order>(&ConfirmOrder::order_id);
  bus.handle<Order>(&RejectOrder::order_id);
  bus.handle<Inventory>(&ReceiveStock::sku);
  bus.handle<Inventory>(&ReserveStock::sku);
  bus.handle<Inventory>(&ReleaseStock::sku);
}
// docs:end

}  // namespace shop
