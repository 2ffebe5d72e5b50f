// The shop's read side: order summaries and stock levels, kept as JSON documents by two
// DocumentProjections (read_models.hpp) and read through typed queries (ShopQueries). The same
// code runs on PostgreSQL (a jsonb table per collection, written with the projection's
// checkpoint) and in memory (`--memory`, the in-memory projection store).
//
// Thread safety: views are values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/event_store.hpp"
#include "inventory.hpp"
#include "order.hpp"

namespace shop {

/// Projection names: the keys of their checkpoints, leases and dead letters. (They replaced
/// read models of SQL tables named "shop.order_summaries" and "shop.stock_levels"; new names
/// make a database that ran those replay the log into the documents from its start.)
inline constexpr std::string_view kOrderSummariesProjection = "shop.order_views";
inline constexpr std::string_view kStockLevelsProjection = "shop.stock_views";

/// Collection names: one document per order (id: the order id) and per SKU (id: the SKU).
inline constexpr std::string_view kOrderSummaries = "shop_order_summaries";
inline constexpr std::string_view kStockLevels = "shop_stock_levels";

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

/// The id part of a stream id ("order-o1" -> "o1", "inventory-apple" -> "apple").
/// Throws: InvalidArgumentError when the stream has no '-'.
[[nodiscard]] std::string id_of(const annals::StreamId& stream);

/// The filters of the two projections: order streams, inventory streams.
[[nodiscard]] annals::EventFilter order_events();
[[nodiscard]] annals::EventFilter inventory_events();

}  // namespace shop
