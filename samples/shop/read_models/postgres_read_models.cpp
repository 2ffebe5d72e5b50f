#include "postgres_read_models.hpp"

#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/projections/postgres/read_model.hpp"

namespace shop {
namespace {

using annals::projections::ReadModel;
using annals::projections::ReadModelMigration;
using annals::projections::ReadModelProjection;

// docs:begin shop-order-summaries
class OrderSummariesTable final : public ReadModelProjection {
 public:
  explicit OrderSummariesTable(const annals::EventRegistry& registry) : registry_(registry) {}

  std::string name() const override { return std::string(kOrderSummariesProjection); }
  annals::EventFilter filter() const override { return order_events(); }
  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create_shop_order_summaries",
             "CREATE TABLE IF NOT EXISTS shop_order_summaries ("
             " order_id text PRIMARY KEY, status text NOT NULL, lines jsonb NOT NULL,"
             " reserved_lines bigint NOT NULL DEFAULT 0, reason text NOT NULL DEFAULT '',"
             " version bigint NOT NULL)"}};
  }
  std::vector<std::string> tables() const override { return {"shop_order_summaries"}; }

  void handle(const annals::RecordedEvent& event, ReadModel& db) override {
    const std::string order_id = id_of(event.stream_id);
    for (const auto& decoded : registry_.decode<Order::Event>(event)) {
      if (const auto* placed = std::get_if<OrderPlaced>(&decoded)) {
        db.upsert("shop_order_summaries", {{"order_id", order_id}},
                  {{"status", "placed"},
                   {"lines", nlohmann::json(placed->lines)},
                   {"reserved_lines", 0},
                   {"reason", ""},
                   {"version", event.version}});
      } else if (std::holds_alternative<OrderLineReserved>(decoded)) {
        db.exec(kLineReserved, {order_id, event.version});
      } else if (std::holds_alternative<OrderConfirmed>(decoded)) {
        db.exec(kStatus, {order_id, "confirmed", "", event.version});
      } else if (const auto* rejected = std::get_if<OrderRejected>(&decoded)) {
        db.exec(kStatus, {order_id, "rejected", rejected->reason, event.version});
      } else {
        db.exec(kVersion, {order_id, event.version});
      }
    }
  }

 private:
  static constexpr std::string_view kLineReserved =
      "UPDATE shop_order_summaries SET reserved_lines = reserved_lines + 1,"
      " version = $2::bigint WHERE order_id = $1";
  static constexpr std::string_view kStatus =
      "UPDATE shop_order_summaries SET status = $2, reason = $3, version = $4::bigint"
      " WHERE order_id = $1";
  static constexpr std::string_view kVersion =
      "UPDATE shop_order_summaries SET version = $2::bigint WHERE order_id = $1";
  const annals::EventRegistry& registry_;
};
// docs:end

// Typed handlers (docs/read-models.md, "Typed handlers"): each gets the upcast, decoded event.
class StockLevelsTable final : public ReadModelProjection {
 public:
  explicit StockLevelsTable(const annals::EventRegistry& registry) : ReadModelProjection(registry) {
    using annals::EventContext;
    on<StockReceived>([](const StockReceived& e, const EventContext& c, ReadModel& db) {
      db.increment("shop_stock_levels", {{"sku", id_of(c.stream_id())}}, "available", e.quantity);
    });
    on<StockReserved>([](const StockReserved& e, const EventContext& c, ReadModel& db) {
      db.exec(kMove, {id_of(c.stream_id()), e.quantity});
    });
    on<StockReleased>([](const StockReleased& e, const EventContext& c, ReadModel& db) {
      db.exec(kMove, {id_of(c.stream_id()), -e.quantity});
    });
  }

  std::string name() const override { return std::string(kStockLevelsProjection); }
  // The handlers' stored type names, in inventory streams.
  annals::EventFilter filter() const override {
    auto filter = ReadModelProjection::filter();
    filter.category = inventory_events().category;
    return filter;
  }
  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create_shop_stock_levels",
             "CREATE TABLE IF NOT EXISTS shop_stock_levels ("
             " sku text PRIMARY KEY, available bigint NOT NULL DEFAULT 0,"
             " reserved bigint NOT NULL DEFAULT 0)"}};
  }
  std::vector<std::string> tables() const override { return {"shop_stock_levels"}; }

 private:
  // Moves units from available to reserved (negative: back).
  static constexpr std::string_view kMove =
      "UPDATE shop_stock_levels SET available = available - $2::bigint,"
      " reserved = reserved + $2::bigint WHERE sku = $1";
};

class PostgresQueries final : public ShopQueries {
 public:
  explicit PostgresQueries(std::string connection_string)
      : connection_string_(std::move(connection_string)) {}

  std::optional<OrderSummary> order(const std::string& order_id) override {
    const auto rows = query(
        "SELECT order_id, status, lines::text, reserved_lines, reason, version"
        " FROM shop_order_summaries WHERE order_id = $1",
        order_id);
    if (rows.empty()) return std::nullopt;
    const auto row = rows[0];
    return OrderSummary{
        .order_id = row[0].as<std::string>(),
        .status = row[1].as<std::string>(),
        .lines = nlohmann::json::parse(row[2].as<std::string>()).get<std::vector<OrderLine>>(),
        .reserved_lines = row[3].as<std::int64_t>(),
        .reason = row[4].as<std::string>(),
        .version = row[5].as<std::int64_t>()};
  }

  std::optional<StockLevel> stock(const std::string& sku) override {
    const auto rows =
        query("SELECT sku, available, reserved FROM shop_stock_levels WHERE sku = $1", sku);
    if (rows.empty()) return std::nullopt;
    return level_of(rows[0]);
  }

  std::vector<StockLevel> stock_levels() override {
    const auto rows =
        query("SELECT sku, available, reserved FROM shop_stock_levels ORDER BY sku", std::nullopt);
    std::vector<StockLevel> levels;
    for (const auto& row : rows) levels.push_back(level_of(row));
    return levels;
  }

 private:
  static StockLevel level_of(const pqxx::row& row) {
    return {row[0].as<std::string>(), row[1].as<std::int64_t>(), row[2].as<std::int64_t>()};
  }

  // One statement on the queries' connection (opened on first use, replaced when broken).
  // libpqxx errors are translated here, for the read side, into annals errors.
  pqxx::result query(const char* statement, const std::optional<std::string>& arg) {
    std::lock_guard lock(mutex_);
    try {
      if (!connection_ || !connection_->is_open()) {
        connection_ = std::make_unique<pqxx::connection>(connection_string_);
      }
      pqxx::read_transaction tx(*connection_);
      return arg ? tx.exec_params(statement, *arg) : tx.exec(statement);
    } catch (const pqxx::undefined_table&) {
      return {};  // the projections have not created their tables yet: nothing seen
    } catch (const pqxx::broken_connection& e) {
      connection_.reset();
      throw annals::UnavailableError(std::string("shop read models: cannot reach PostgreSQL: ") +
                                     e.what());
    } catch (const pqxx::failure& e) {
      connection_.reset();
      throw annals::UnavailableError(std::string("shop read models: ") + e.what());
    }
  }

  std::string connection_string_;
  std::mutex mutex_;
  std::unique_ptr<pqxx::connection> connection_;
};

}  // namespace

ShopReadModels make_postgres_read_models(const annals::EventRegistry& registry,
                                         const std::string& connection_string) {
  ShopReadModels models;
  models.projections.push_back(std::make_shared<OrderSummariesTable>(registry));
  models.projections.push_back(std::make_shared<StockLevelsTable>(registry));
  models.queries = std::make_unique<PostgresQueries>(connection_string);
  return models;
}

}  // namespace shop
