// The shop sample's Order aggregate, in the decider shape (STYLE 2.5).
//
// An order is placed with lines (a SKU and a quantity each). The order process manager
// (app/order_saga.hpp) then reserves stock for each line and records each outcome on the
// order: a line is reserved or refused. An order whose lines are all reserved is confirmed; an
// order with a refused line is rejected, and the stock already reserved for it is released.
// Keeping the line outcomes in the order's own stream is what makes the process manager's
// progress part of the log rather than of some process's memory.
//
//   bus.handle<shop::Order>(&shop::PlaceOrder::order_id);
//   bus.send(shop::PlaceOrder{"o1", {{"apple", 3}, {"pear", 1}}}, {.command_id = request_id});
//
// This target links annals::framework only: no SQL, no clocks, no I/O.
// Thread safety: pure functions and values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"

namespace shop {

// --- Limits and ids -----------------------------------------------------------------------

/// Longest order id or SKU, in bytes.
inline constexpr std::size_t kMaxIdBytes = 64;
/// Most lines in one order.
inline constexpr std::size_t kMaxLines = 100;
/// Largest quantity of one order line, one reservation or one delivery of stock.
inline constexpr std::int64_t kMaxQuantity = 1'000'000;

/// True for 1 to kMaxIdBytes characters out of [A-Za-z0-9._~-]: valid order ids and SKUs (each
/// becomes part of a stream id, "order-<id>" or "inventory-<sku>").
[[nodiscard]] bool is_valid_id(std::string_view id) noexcept;

/// One line of an order.
struct OrderLine {
  std::string sku;
  std::int64_t quantity = 0;
  friend bool operator==(const OrderLine&, const OrderLine&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderLine, sku, quantity)

// --- Events -------------------------------------------------------------------------------

// docs:begin shop-order-events
struct OrderPlaced {
  static constexpr std::string_view kTypeName = "shop.OrderPlaced";
  static constexpr int kSchemaVersion = 1;
  std::vector<OrderLine> lines;  // at least one; SKUs distinct
  friend bool operator==(const OrderPlaced&, const OrderPlaced&) = default;
};

/// Stock for one line is held in the SKU's inventory (recorded by the process manager).
struct OrderLineReserved {
  static constexpr std::string_view kTypeName = "shop.OrderLineReserved";
  static constexpr int kSchemaVersion = 1;
  std::string sku;
  std::int64_t quantity = 0;
  friend bool operator==(const OrderLineReserved&, const OrderLineReserved&) = default;
};

/// The SKU's inventory refused to reserve one line (recorded by the process manager).
struct OrderLineRefused {
  static constexpr std::string_view kTypeName = "shop.OrderLineRefused";
  static constexpr int kSchemaVersion = 1;
  std::string sku;
  std::int64_t requested = 0;
  std::int64_t available = 0;  // what the inventory had when it refused
  friend bool operator==(const OrderLineRefused&, const OrderLineRefused&) = default;
};

struct OrderConfirmed {
  static constexpr std::string_view kTypeName = "shop.OrderConfirmed";
  static constexpr int kSchemaVersion = 1;
  friend bool operator==(const OrderConfirmed&, const OrderConfirmed&) = default;
};

struct OrderRejected {
  static constexpr std::string_view kTypeName = "shop.OrderRejected";
  static constexpr int kSchemaVersion = 1;
  std::string reason;
  friend bool operator==(const OrderRejected&, const OrderRejected&) = default;
};
// docs:end

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderPlaced, lines)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderLineReserved, sku, quantity)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderLineRefused, sku, requested, available)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderRejected, reason)
// OrderConfirmed has no fields; its JSON is {} (the macro needs at least one member).
void to_json(nlohmann::json& j, const OrderConfirmed&);
void from_json(const nlohmann::json& j, OrderConfirmed&);

// --- Commands -----------------------------------------------------------------------------

struct PlaceOrder {
  std::string order_id;
  std::vector<OrderLine> lines;
};
/// Sent by the process manager once the line's stock is reserved.
struct RecordReservation {
  std::string order_id;
  std::string sku;
};
/// Sent by the process manager when the line's inventory refused the reservation.
struct RecordRefusal {
  std::string order_id;
  std::string sku;
  std::int64_t requested = 0;
  std::int64_t available = 0;
};
struct ConfirmOrder {
  std::string order_id;
};
struct RejectOrder {
  std::string order_id;
  std::string reason;
};

// --- Domain errors ------------------------------------------------------------------------

/// An order that cannot be placed as given (no lines, too many, a bad SKU or quantity, a SKU
/// twice); what() says which.
class InvalidOrder : public annals::DomainError {
 public:
  explicit InvalidOrder(const std::string& why);
};

/// Placing an order whose id is taken.
class OrderAlreadyPlaced : public annals::DomainError {
 public:
  explicit OrderAlreadyPlaced(const std::string& order_id);
};

/// A command on an order that was never placed.
class OrderNotFound : public annals::DomainError {
 public:
  explicit OrderNotFound(const std::string& order_id);
};

/// A reservation outcome for a SKU the order does not contain.
class UnknownOrderLine : public annals::DomainError {
 public:
  UnknownOrderLine(const std::string& order_id, const std::string& sku);
  [[nodiscard]] const std::string& sku() const noexcept { return sku_; }

 private:
  std::string sku_;
};

/// Confirming an order before every line is reserved (or after one was refused).
class OrderNotFullyReserved : public annals::DomainError {
 public:
  OrderNotFullyReserved(const std::string& order_id, std::size_t reserved, std::size_t lines);
  [[nodiscard]] std::size_t reserved() const noexcept { return reserved_; }
  [[nodiscard]] std::size_t lines() const noexcept { return lines_; }

 private:
  std::size_t reserved_;
  std::size_t lines_;
};

/// Rejecting an order that is confirmed.
class OrderAlreadyConfirmed : public annals::DomainError {
 public:
  explicit OrderAlreadyConfirmed(const std::string& order_id);
};

/// Confirming an order that is rejected.
class OrderAlreadyRejected : public annals::DomainError {
 public:
  explicit OrderAlreadyRejected(const std::string& order_id);
};

// --- The decider --------------------------------------------------------------------------

// docs:begin shop-order-decider
struct Order {
  enum class Status { kNew, kPlaced, kConfirmed, kRejected };

  struct State {
    Status status = Status::kNew;
    std::vector<OrderLine> lines;
    std::set<std::string> reserved;  // SKUs whose stock is held for this order
    std::set<std::string> refused;   // SKUs whose inventory refused
    std::string reason;              // why it was rejected
    friend bool operator==(const State&, const State&) = default;

    /// Every line reserved and none refused: the order may be confirmed.
    [[nodiscard]] bool fully_reserved() const noexcept {
      return !lines.empty() && reserved.size() == lines.size() && refused.empty();
    }
  };
  using Event =
      std::variant<OrderPlaced, OrderLineReserved, OrderLineRefused, OrderConfirmed, OrderRejected>;
  static constexpr std::string_view kCategory = "order";  // streams "order-<id>"

  static State evolve(State s, const OrderPlaced& e);
  static State evolve(State s, const OrderLineReserved& e);
  static State evolve(State s, const OrderLineRefused& e);
  static State evolve(State s, const OrderConfirmed& e);
  static State evolve(State s, const OrderRejected& e);

  static OrderPlaced decide(const State& s, const PlaceOrder& c);
  // The outcomes of a line are facts reported by the process manager; the first one of a
  // line counts, except that stock held for a refused line is still recorded, so that it is
  // released. Repeating an outcome is a no-op.
  static std::vector<Event> decide(const State& s, const RecordReservation& c);
  static std::vector<Event> decide(const State& s, const RecordRefusal& c);
  // Confirming a confirmed order, or rejecting a rejected one, is a no-op; the opposite
  // outcome is refused.
  static std::vector<Event> decide(const State& s, const ConfirmOrder& c);
  static std::vector<Event> decide(const State& s, const RejectOrder& c);
};
// docs:end

/// "new", "placed", "confirmed" or "rejected".
[[nodiscard]] const char* to_string(Order::Status status) noexcept;

NLOHMANN_JSON_SERIALIZE_ENUM(Order::Status, {{Order::Status::kNew, "new"},
                                             {Order::Status::kPlaced, "placed"},
                                             {Order::Status::kConfirmed, "confirmed"},
                                             {Order::Status::kRejected, "rejected"}})
// Snapshots store the state as JSON.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Order::State, status, lines, reserved, refused, reason)

}  // namespace shop
