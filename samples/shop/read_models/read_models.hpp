// The shop's read models: two DocumentProjections (annals/projections/documents.hpp) that keep
// one OrderSummary per order and one StockLevel per SKU, and ShopQueries, the typed queries a
// front reads them with (annals/projections/document_reader.hpp). One implementation for both
// stores: on PostgreSQL each collection is a jsonb table the projection creates, written in the
// transaction of its checkpoint; in memory the documents change atomically with the checkpoint.
// Either way every event counts exactly once, and the front contains no SQL.
//
//   for (auto& projection : shop::make_read_models(app->registry())) runner.add(projection);
//   shop::ShopQueries queries(app->documents());
//   queries.order("o1");   // std::optional<OrderSummary>
//
// Thread safety: the projections run on a runner's thread; ShopQueries may be called from any
// thread (as the DocumentReader).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annals/framework/event_registry.hpp"
#include "annals/projections/document_reader.hpp"
#include "annals/projections/projection.hpp"
#include "views.hpp"

namespace shop {

/// The two read-model projections: order summaries (collection kOrderSummaries) and stock
/// levels (kStockLevels). `registry` knows the shop's events and must outlive them.
[[nodiscard]] std::vector<std::shared_ptr<annals::projections::Projection>> make_read_models(
    const annals::EventRegistry& registry);

/// Reads the shop's read models. Without a position, a query answers what the projections had
/// committed when it ran (ShopApp::settle() waits for them first).
class ShopQueries {
 public:
  /// `reader` must outlive the queries.
  explicit ShopQueries(annals::projections::DocumentReader& reader) : reader_(reader) {}

  /// The order's summary, or empty when the read model has not seen it (or its projection has
  /// never run on this store). Throws: UnavailableError (database unreachable),
  /// DocumentDecodeError (a stored document is not an OrderSummary). Cost: one round trip.
  [[nodiscard]] std::optional<OrderSummary> order(const std::string& order_id) const;
  /// The SKU's stock, or empty when the read model has not seen it. Throws: as order().
  [[nodiscard]] std::optional<StockLevel> stock(const std::string& sku) const;
  /// Every SKU's stock, by SKU (bytewise). Throws: as order(). Cost: one round trip per 1,000
  /// SKUs (keyset pages).
  [[nodiscard]] std::vector<StockLevel> stock_levels() const;

 private:
  annals::projections::DocumentReader& reader_;
};

}  // namespace shop
