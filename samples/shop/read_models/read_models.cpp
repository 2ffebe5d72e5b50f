#include "read_models.hpp"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/projections/documents.hpp"

namespace shop {
namespace {

using annals::EventContext;
using annals::projections::CollectionSpec;
using annals::projections::DocumentProjection;
using annals::projections::Documents;

// docs:begin shop-order-summaries
// One OrderSummary per order (document id: the order id). Each handler writes only what its
// event changes: the summary is stored whole when the order is placed, then patched.
class OrderSummaries final : public DocumentProjection {
 public:
  explicit OrderSummaries(const annals::EventRegistry& registry) : DocumentProjection(registry) {
    on<OrderPlaced>([](const OrderPlaced& e, const EventContext& c, Documents& docs) {
      const std::string id = id_of(c.stream_id());
      docs.collection(kOrderSummaries)
          .upsert(id, OrderSummary{.order_id = id,
                                   .status = to_string(Order::Status::kPlaced),
                                   .lines = e.lines,
                                   .version = c.version()});
    });
    on<OrderLineReserved>([](const OrderLineReserved&, const EventContext& c, Documents& docs) {
      const std::string id = id_of(c.stream_id());
      docs.collection(kOrderSummaries).increment(id, "reserved_lines", 1);
      docs.collection(kOrderSummaries).patch(id, {{"version", c.version()}});
    });
    on<OrderLineRefused>([](const OrderLineRefused&, const EventContext& c, Documents& docs) {
      docs.collection(kOrderSummaries).patch(id_of(c.stream_id()), {{"version", c.version()}});
    });
    on<OrderConfirmed>([](const OrderConfirmed&, const EventContext& c, Documents& docs) {
      docs.collection(kOrderSummaries)
          .patch(id_of(c.stream_id()), {{"status", to_string(Order::Status::kConfirmed)},
                                        {"reason", ""},
                                        {"version", c.version()}});
    });
    on<OrderRejected>([](const OrderRejected& e, const EventContext& c, Documents& docs) {
      docs.collection(kOrderSummaries)
          .patch(id_of(c.stream_id()), {{"status", to_string(Order::Status::kRejected)},
                                        {"reason", e.reason},
                                        {"version", c.version()}});
    });
  }

  std::string name() const override { return std::string(kOrderSummariesProjection); }
  // The handlers' stored type names, in order streams.
  annals::EventFilter filter() const override {
    auto filter = DocumentProjection::filter();
    filter.category = order_events().category;
    return filter;
  }
  std::vector<CollectionSpec> collections() const override {
    return {{std::string(kOrderSummaries), {}}};
  }
};
// docs:end

// docs:begin shop-stock-levels
// One StockLevel per SKU (document id: the SKU). add_to() adds to the counters without reading
// them back, and creates the document on the SKU's first delivery of stock.
class StockLevels final : public DocumentProjection {
 public:
  explicit StockLevels(const annals::EventRegistry& registry) : DocumentProjection(registry) {
    on<StockReceived>([](const StockReceived& e, const EventContext& c, Documents& docs) {
      const std::string sku = id_of(c.stream_id());
      docs.collection(kStockLevels).add_to(sku, {{"available", e.quantity}, {"reserved", 0}});
      docs.collection(kStockLevels).patch(sku, {{"sku", sku}});
    });
    on<StockReserved>([](const StockReserved& e, const EventContext& c, Documents& docs) {
      docs.collection(kStockLevels)
          .add_to(id_of(c.stream_id()), {{"available", -e.quantity}, {"reserved", e.quantity}});
    });
    on<StockReleased>([](const StockReleased& e, const EventContext& c, Documents& docs) {
      docs.collection(kStockLevels)
          .add_to(id_of(c.stream_id()), {{"available", e.quantity}, {"reserved", -e.quantity}});
    });
  }

  std::string name() const override { return std::string(kStockLevelsProjection); }
  annals::EventFilter filter() const override {
    auto filter = DocumentProjection::filter();
    filter.category = inventory_events().category;
    return filter;
  }
  std::vector<CollectionSpec> collections() const override {
    return {{std::string(kStockLevels), {}}};
  }
};
// docs:end

}  // namespace

std::vector<std::shared_ptr<annals::projections::Projection>> make_read_models(
    const annals::EventRegistry& registry) {
  return {std::make_shared<OrderSummaries>(registry), std::make_shared<StockLevels>(registry)};
}

// docs:begin shop-queries
std::optional<OrderSummary> ShopQueries::order(const std::string& order_id) const {
  if (!is_valid_id(order_id)) return std::nullopt;  // no order can have that id
  try {
    return reader_.collection<OrderSummary>(std::string(kOrderSummaries)).get(order_id);
  } catch (const annals::NotFoundError&) {
    return std::nullopt;  // the projection never ran on this store: it has seen nothing
  }
}

std::optional<StockLevel> ShopQueries::stock(const std::string& sku) const {
  if (!is_valid_id(sku)) return std::nullopt;
  try {
    return reader_.collection<StockLevel>(std::string(kStockLevels)).get(sku);
  } catch (const annals::NotFoundError&) {
    return std::nullopt;
  }
}

std::vector<StockLevel> ShopQueries::stock_levels() const {
  const auto stock = reader_.collection<StockLevel>(std::string(kStockLevels));
  std::vector<StockLevel> levels;
  annals::projections::DocumentQuery query{.limit = 1'000};  // ordered by id: the SKU
  try {
    for (;;) {
      auto page = stock.find(query);
      for (auto& level : page.items) levels.push_back(std::move(level));
      if (!page.next) return levels;
      query.after = std::move(page.next);  // the keyset cursor of the next page
    }
  } catch (const annals::NotFoundError&) {
    return {};
  }
}
// docs:end

}  // namespace shop
