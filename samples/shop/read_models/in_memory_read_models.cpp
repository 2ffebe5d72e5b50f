#include "in_memory_read_models.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <variant>

namespace shop {
namespace {

using annals::projections::InProcessProjection;

// What both projections share: the maps, one lock, and the last position applied by each.
struct Tables {
  std::mutex mutex;
  std::map<std::string, OrderSummary> orders;
  std::map<std::string, StockLevel> stock;
};

class OrderSummaries final : public InProcessProjection {
 public:
  OrderSummaries(const annals::EventRegistry& registry, std::shared_ptr<Tables> tables)
      : registry_(registry), tables_(std::move(tables)) {}

  std::string name() const override { return std::string(kOrderSummariesProjection); }
  annals::EventFilter filter() const override { return order_events(); }

  void handle(const annals::RecordedEvent& event) override {
    std::lock_guard lock(tables_->mutex);
    if (event.position <= applied_) return;  // delivered again
    const std::string order_id = id_of(event.stream_id);
    for (const auto& decoded : registry_.decode<Order::Event>(event)) {
      OrderSummary& row = tables_->orders[order_id];
      row.order_id = order_id;
      row.version = event.version;
      if (const auto* placed = std::get_if<OrderPlaced>(&decoded)) {
        row.status = to_string(Order::Status::kPlaced);
        row.lines = placed->lines;
      } else if (std::holds_alternative<OrderLineReserved>(decoded)) {
        ++row.reserved_lines;
      } else if (std::holds_alternative<OrderConfirmed>(decoded)) {
        row.status = to_string(Order::Status::kConfirmed);
      } else if (const auto* rejected = std::get_if<OrderRejected>(&decoded)) {
        row.status = to_string(Order::Status::kRejected);
        row.reason = rejected->reason;
      }
    }
    applied_ = event.position;
  }

  void clear() override {
    std::lock_guard lock(tables_->mutex);
    tables_->orders.clear();
    applied_ = annals::Position::start();
  }

 private:
  const annals::EventRegistry& registry_;
  std::shared_ptr<Tables> tables_;
  annals::Position applied_;
};

class StockLevels final : public InProcessProjection {
 public:
  StockLevels(const annals::EventRegistry& registry, std::shared_ptr<Tables> tables)
      : registry_(registry), tables_(std::move(tables)) {}

  std::string name() const override { return std::string(kStockLevelsProjection); }
  annals::EventFilter filter() const override { return inventory_events(); }

  void handle(const annals::RecordedEvent& event) override {
    std::lock_guard lock(tables_->mutex);
    if (event.position <= applied_) return;
    const std::string sku = id_of(event.stream_id);
    for (const auto& decoded : registry_.decode<Inventory::Event>(event)) {
      StockLevel& row = tables_->stock[sku];
      row.sku = sku;
      if (const auto* received = std::get_if<StockReceived>(&decoded)) {
        row.available += received->quantity;
      } else if (const auto* reserved = std::get_if<StockReserved>(&decoded)) {
        row.available -= reserved->quantity;
        row.reserved += reserved->quantity;
      } else if (const auto* released = std::get_if<StockReleased>(&decoded)) {
        row.available += released->quantity;
        row.reserved -= released->quantity;
      }
    }
    applied_ = event.position;
  }

  void clear() override {
    std::lock_guard lock(tables_->mutex);
    tables_->stock.clear();
    applied_ = annals::Position::start();
  }

 private:
  const annals::EventRegistry& registry_;
  std::shared_ptr<Tables> tables_;
  annals::Position applied_;
};

class InMemoryQueries final : public ShopQueries {
 public:
  explicit InMemoryQueries(std::shared_ptr<Tables> tables) : tables_(std::move(tables)) {}

  std::optional<OrderSummary> order(const std::string& order_id) override {
    std::lock_guard lock(tables_->mutex);
    const auto found = tables_->orders.find(order_id);
    if (found == tables_->orders.end()) return std::nullopt;
    return found->second;
  }
  std::optional<StockLevel> stock(const std::string& sku) override {
    std::lock_guard lock(tables_->mutex);
    const auto found = tables_->stock.find(sku);
    if (found == tables_->stock.end()) return std::nullopt;
    return found->second;
  }
  std::vector<StockLevel> stock_levels() override {
    std::lock_guard lock(tables_->mutex);
    std::vector<StockLevel> levels;
    for (const auto& [sku, level] : tables_->stock) levels.push_back(level);
    return levels;
  }

 private:
  std::shared_ptr<Tables> tables_;
};

}  // namespace

ShopReadModels make_in_memory_read_models(const annals::EventRegistry& registry) {
  auto tables = std::make_shared<Tables>();
  ShopReadModels models;
  models.projections.push_back(std::make_shared<OrderSummaries>(registry, tables));
  models.projections.push_back(std::make_shared<StockLevels>(registry, tables));
  models.queries = std::make_unique<InMemoryQueries>(tables);
  return models;
}

}  // namespace shop
