#include "inventory.hpp"

#include <string>

namespace shop {
namespace {

std::string quoted(const std::string& id) { return "\"" + id + "\""; }

void require_quantity(std::int64_t quantity) {
  if (quantity <= 0 || quantity > kMaxQuantity) throw InvalidQuantity(quantity);
}

}  // namespace

InvalidQuantity::InvalidQuantity(std::int64_t quantity)
    : DomainError("invalid quantity " + std::to_string(quantity) + ": must be between 1 and " +
                  std::to_string(kMaxQuantity)),
      quantity_(quantity) {}

StockLimitExceeded::StockLimitExceeded(const std::string& sku, std::int64_t held,
                                       std::int64_t quantity)
    : DomainError("SKU " + quoted(sku) + " holds " + std::to_string(held) + " units; " +
                  std::to_string(quantity) + " more would exceed " + std::to_string(kMaxStock)) {}

InsufficientStock::InsufficientStock(const std::string& sku, std::int64_t requested,
                                     std::int64_t available)
    : DomainError("insufficient stock of SKU " + quoted(sku) + ": requested " +
                  std::to_string(requested) + ", available " + std::to_string(available)),
      sku_(sku),
      requested_(requested),
      available_(available) {}

std::int64_t Inventory::State::reserved() const noexcept {
  std::int64_t total = 0;
  for (const auto& [order, quantity] : reservations) total += quantity;
  return total;
}

// docs:begin shop-inventory-rules
Inventory::State Inventory::evolve(State s, const StockReceived& e) {
  s.available += e.quantity;
  return s;
}
Inventory::State Inventory::evolve(State s, const StockReserved& e) {
  s.available -= e.quantity;
  s.reservations[e.order_id] = e.quantity;
  return s;
}
Inventory::State Inventory::evolve(State s, const StockReleased& e) {
  s.available += e.quantity;
  s.reservations.erase(e.order_id);
  s.released.insert(e.order_id);
  return s;
}

StockReceived Inventory::decide(const State& s, const ReceiveStock& c) {
  require_quantity(c.quantity);
  const std::int64_t held = s.available + s.reserved();
  if (held > kMaxStock - c.quantity) throw StockLimitExceeded(c.sku, held, c.quantity);
  return StockReceived{c.quantity};
}

std::vector<Inventory::Event> Inventory::decide(const State& s, const ReserveStock& c) {
  require_quantity(c.quantity);
  if (s.reservations.contains(c.order_id) || s.released.contains(c.order_id)) return {};
  if (c.quantity > s.available) throw InsufficientStock(c.sku, c.quantity, s.available);
  return {StockReserved{c.order_id, c.quantity}};
}

std::vector<Inventory::Event> Inventory::decide(const State& s, const ReleaseStock& c) {
  const auto held = s.reservations.find(c.order_id);
  if (held == s.reservations.end()) return {};
  return {StockReleased{c.order_id, held->second}};
}
// docs:end

}  // namespace shop
