#include "order.hpp"

#include <algorithm>
#include <set>
#include <string>

namespace shop {
namespace {

std::string quoted(const std::string& id) { return "\"" + id + "\""; }

void require_placed(const Order::State& s, const std::string& order_id) {
  if (s.status == Order::Status::kNew) throw OrderNotFound(order_id);
}

const OrderLine& line_of(const Order::State& s, const std::string& order_id,
                         const std::string& sku) {
  const auto found = std::find_if(s.lines.begin(), s.lines.end(),
                                  [&](const OrderLine& l) { return l.sku == sku; });
  if (found == s.lines.end()) throw UnknownOrderLine(order_id, sku);
  return *found;
}

}  // namespace

bool is_valid_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > kMaxIdBytes) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '~' || c == '-';
  });
}

void to_json(nlohmann::json& j, const OrderConfirmed&) { j = nlohmann::json::object(); }
void from_json(const nlohmann::json& j, OrderConfirmed&) {
  if (!j.is_object()) {
    throw nlohmann::json::type_error::create(302, "OrderConfirmed: not an object", &j);
  }
}

InvalidOrder::InvalidOrder(const std::string& why) : DomainError("invalid order: " + why) {}

OrderAlreadyPlaced::OrderAlreadyPlaced(const std::string& order_id)
    : DomainError("order " + quoted(order_id) + " is already placed") {}

OrderNotFound::OrderNotFound(const std::string& order_id)
    : DomainError("order " + quoted(order_id) + " does not exist") {}

UnknownOrderLine::UnknownOrderLine(const std::string& order_id, const std::string& sku)
    : DomainError("order " + quoted(order_id) + " has no line for SKU " + quoted(sku)), sku_(sku) {}

OrderNotFullyReserved::OrderNotFullyReserved(const std::string& order_id, std::size_t reserved,
                                             std::size_t lines)
    : DomainError("order " + quoted(order_id) +
                  " cannot be confirmed: " + std::to_string(reserved) + " of " +
                  std::to_string(lines) + " lines reserved, or a line was refused"),
      reserved_(reserved),
      lines_(lines) {}

OrderAlreadyConfirmed::OrderAlreadyConfirmed(const std::string& order_id)
    : DomainError("order " + quoted(order_id) + " is already confirmed") {}

OrderAlreadyRejected::OrderAlreadyRejected(const std::string& order_id)
    : DomainError("order " + quoted(order_id) + " is already rejected") {}

const char* to_string(Order::Status status) noexcept {
  switch (status) {
    case Order::Status::kNew:
      return "new";
    case Order::Status::kPlaced:
      return "placed";
    case Order::Status::kConfirmed:
      return "confirmed";
    case Order::Status::kRejected:
      return "rejected";
  }
  return "unknown";
}

Order::State Order::evolve(State s, const OrderPlaced& e) {
  s.status = Status::kPlaced;
  s.lines = e.lines;
  return s;
}
Order::State Order::evolve(State s, const OrderLineReserved& e) {
  s.reserved.insert(e.sku);
  return s;
}
Order::State Order::evolve(State s, const OrderLineRefused& e) {
  s.refused.insert(e.sku);
  return s;
}
Order::State Order::evolve(State s, const OrderConfirmed&) {
  s.status = Status::kConfirmed;
  return s;
}
Order::State Order::evolve(State s, const OrderRejected& e) {
  s.status = Status::kRejected;
  s.reason = e.reason;
  return s;
}

OrderPlaced Order::decide(const State& s, const PlaceOrder& c) {
  if (s.status != Status::kNew) throw OrderAlreadyPlaced(c.order_id);
  if (c.lines.empty()) throw InvalidOrder("an order needs at least one line");
  if (c.lines.size() > kMaxLines) {
    throw InvalidOrder(std::to_string(c.lines.size()) + " lines, at most " +
                       std::to_string(kMaxLines) + " allowed");
  }
  std::set<std::string> skus;
  for (const auto& line : c.lines) {
    if (!is_valid_id(line.sku)) throw InvalidOrder("invalid SKU " + quoted(line.sku));
    if (line.quantity <= 0 || line.quantity > kMaxQuantity) {
      throw InvalidOrder("quantity " + std::to_string(line.quantity) + " of SKU " +
                         quoted(line.sku) + " is not between 1 and " +
                         std::to_string(kMaxQuantity));
    }
    if (!skus.insert(line.sku).second) throw InvalidOrder("SKU " + quoted(line.sku) + " twice");
  }
  return OrderPlaced{c.lines};
}

std::vector<Order::Event> Order::decide(const State& s, const RecordReservation& c) {
  require_placed(s, c.order_id);
  const OrderLine& line = line_of(s, c.order_id, c.sku);
  if (s.reserved.contains(c.sku)) return {};
  return {OrderLineReserved{c.sku, line.quantity}};
}

std::vector<Order::Event> Order::decide(const State& s, const RecordRefusal& c) {
  require_placed(s, c.order_id);
  line_of(s, c.order_id, c.sku);
  if (s.reserved.contains(c.sku) || s.refused.contains(c.sku)) return {};
  return {OrderLineRefused{c.sku, c.requested, c.available}};
}

std::vector<Order::Event> Order::decide(const State& s, const ConfirmOrder& c) {
  require_placed(s, c.order_id);
  if (s.status == Status::kConfirmed) return {};
  if (s.status == Status::kRejected) throw OrderAlreadyRejected(c.order_id);
  if (!s.fully_reserved()) {
    throw OrderNotFullyReserved(c.order_id, s.reserved.size(), s.lines.size());
  }
  return {OrderConfirmed{}};
}

std::vector<Order::Event> Order::decide(const State& s, const RejectOrder& c) {
  require_placed(s, c.order_id);
  if (s.status == Status::kRejected) return {};
  if (s.status == Status::kConfirmed) throw OrderAlreadyConfirmed(c.order_id);
  return {OrderRejected{c.reason}};
}

}  // namespace shop
