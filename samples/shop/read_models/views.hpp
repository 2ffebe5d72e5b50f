// The shop's read side: order summaries and stock levels, and the ShopQueries interface that
// both read-model families answer (PostgreSQL tables, or in-memory maps for --memory), so the
// two give the same answers.
//
// Thread safety: views are values; ShopQueries implementations may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/event_store.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/projections/projection.hpp"
#include "inventory.hpp"
#include "order.hpp"

namespace shop {

/// Projection names: the keys of their checkpoints, leases and dead letters.
inline constexpr std::string_view kOrderSummariesProjection = "shop.order_summaries";
inline constexpr std::string_view kStockLevelsProjection = "shop.stock_levels";

/// One order as a customer sees it.
struct OrderSummary {
  std::string order_id;
  std::string status;  // "placed", "confirmed" or "rejected"
  std::vector<OrderLine> lines;
  std::int64_t reserved_lines = 0;
  std::string reason;  // why it was rejected; empty otherwise
  /// The stream version of the last event applied.
  std::int64_t version = 0;
  friend bool operator==(const OrderSummary&, const OrderSummary&) = default;
};

/// One SKU's stock.
struct StockLevel {
  std::string sku;
  std::int64_t available = 0;  // free to reserve
  std::int64_t reserved = 0;   // held for orders
  friend bool operator==(const StockLevel&, const StockLevel&) = default;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OrderSummary, order_id, status, lines, reserved_lines, reason,
                                   version)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(StockLevel, sku, available, reserved)

/// Reads the shop's read models.
class ShopQueries {
 public:
  ShopQueries() = default;
  ShopQueries(const ShopQueries&) = delete;
  ShopQueries& operator=(const ShopQueries&) = delete;
  virtual ~ShopQueries() = default;

  /// The order's summary, or empty when the read model has not seen it.
  /// Throws: UnavailableError (database unreachable).
  [[nodiscard]] virtual std::optional<OrderSummary> order(const std::string& order_id) = 0;
  /// The SKU's stock, or empty when the read model has not seen it. Throws: as order().
  [[nodiscard]] virtual std::optional<StockLevel> stock(const std::string& sku) = 0;
  /// Every SKU's stock, by SKU. Throws: as order().
  [[nodiscard]] virtual std::vector<StockLevel> stock_levels() = 0;
};

/// The two projections and the queries over what they write.
struct ShopReadModels {
  std::vector<std::shared_ptr<annals::projections::Projection>> projections;
  std::unique_ptr<ShopQueries> queries;
};

/// The id part of a stream id ("order-o1" -> "o1", "inventory-apple" -> "apple").
/// Throws: InvalidArgumentError when the stream has no '-'.
[[nodiscard]] std::string id_of(const annals::StreamId& stream);

/// The filters of the two projections: order streams, inventory streams.
[[nodiscard]] annals::EventFilter order_events();
[[nodiscard]] annals::EventFilter inventory_events();

}  // namespace shop
