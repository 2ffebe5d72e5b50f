// The shop sample's Inventory aggregate, one per SKU, in the decider shape (STYLE 2.5).
//
// Stock is received, reserved for orders and released again. A reservation never takes more
// than is available: the refusal is a typed InsufficientStock error carrying the facts. Both
// reserving and releasing are idempotent per order id: an order holds at most one reservation
// of a SKU, reserving for it again is a no-op, and so is releasing what it does not hold. Once
// released, an order cannot reserve that SKU again (its process is over).
//
//   bus.handle<shop::Inventory>(&shop::ReserveStock::sku);   // stream "inventory-<sku>"
//   bus.send(shop::ReserveStock{"apple", "o1", 3}, {.command_id = id});
//
// Concurrency: two orders competing for the last units are serialized by the stream's
// expected version; the command bus decides the loser again on the new state, which then
// refuses it.
//
// Thread safety: pure functions and values.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "order.hpp"

namespace shop {

/// Most units one SKU may hold (available plus reserved).
inline constexpr std::int64_t kMaxStock = 1'000'000'000;

// --- Events -------------------------------------------------------------------------------

struct StockReceived {
  static constexpr std::string_view kTypeName = "shop.StockReceived";
  static constexpr int kSchemaVersion = 1;
  std::int64_t quantity = 0;
  friend bool operator==(const StockReceived&, const StockReceived&) = default;
};

struct StockReserved {
  static constexpr std::string_view kTypeName = "shop.StockReserved";
  static constexpr int kSchemaVersion = 1;
  std::string order_id;
  std::int64_t quantity = 0;
  friend bool operator==(const StockReserved&, const StockReserved&) = default;
};

struct StockReleased {
  static constexpr std::string_view kTypeName = "shop.StockReleased";
  static constexpr int kSchemaVersion = 1;
  std::string order_id;
  std::int64_t quantity = 0;
  friend bool operator==(const StockReleased&, const StockReleased&) = default;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StockReceived, quantity)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StockReserved, order_id, quantity)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StockReleased, order_id, quantity)

// --- Commands -----------------------------------------------------------------------------

struct ReceiveStock {
  std::string sku;
  std::int64_t quantity = 0;
};
struct ReserveStock {
  std::string sku;
  std::string order_id;
  std::int64_t quantity = 0;
};
struct ReleaseStock {
  std::string sku;
  std::string order_id;
};

// --- Domain errors ------------------------------------------------------------------------

/// A quantity outside 1..kMaxQuantity.
class InvalidQuantity : public annals::DomainError {
 public:
  explicit InvalidQuantity(std::int64_t quantity);
  [[nodiscard]] std::int64_t quantity() const noexcept { return quantity_; }

 private:
  std::int64_t quantity_;
};

/// Receiving stock that would take the SKU above kMaxStock units.
class StockLimitExceeded : public annals::DomainError {
 public:
  StockLimitExceeded(const std::string& sku, std::int64_t held, std::int64_t quantity);
};

/// A reservation larger than the available stock.
class InsufficientStock : public annals::DomainError {
 public:
  InsufficientStock(const std::string& sku, std::int64_t requested, std::int64_t available);
  [[nodiscard]] const std::string& sku() const noexcept { return sku_; }
  [[nodiscard]] std::int64_t requested() const noexcept { return requested_; }
  [[nodiscard]] std::int64_t available() const noexcept { return available_; }

 private:
  std::string sku_;
  std::int64_t requested_;
  std::int64_t available_;
};

// --- The decider --------------------------------------------------------------------------

struct Inventory {
  struct State {
    std::int64_t available = 0;                        // free to reserve
    std::map<std::string, std::int64_t> reservations;  // order id -> units held for it
    std::set<std::string> released;                    // orders whose reservation ended
    friend bool operator==(const State&, const State&) = default;

    /// Units held by reservations.
    [[nodiscard]] std::int64_t reserved() const noexcept;
  };
  using Event = std::variant<StockReceived, StockReserved, StockReleased>;
  static constexpr std::string_view kCategory = "inventory";  // streams "inventory-<sku>"

  static State evolve(State s, const StockReceived& e);
  static State evolve(State s, const StockReserved& e);
  static State evolve(State s, const StockReleased& e);

  static StockReceived decide(const State& s, const ReceiveStock& c);
  // Idempotent per order id: an order that holds (or held) a reservation gets nothing more.
  static std::vector<Event> decide(const State& s, const ReserveStock& c);
  // Releasing what the order does not hold is a no-op.
  static std::vector<Event> decide(const State& s, const ReleaseStock& c);
};

// Snapshots store the state as JSON.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Inventory::State, available, reservations, released)

}  // namespace shop
