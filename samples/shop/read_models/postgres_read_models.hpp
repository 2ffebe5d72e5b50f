// The shop's read models in PostgreSQL tables, written by ReadModelProjections: each batch of
// events and the projection's checkpoint commit in one transaction, so after any crash the
// tables equal a replay of the log (exactly once; ARCHITECTURE decision 7).
//
//   shop_order_summaries  (order_id) -> status, lines (jsonb), reserved_lines, reason, version
//   shop_stock_levels     (sku) -> available, reserved
//
// Each projection owns its table and its migration. The queries read the tables over one
// connection of their own (the sample's read side may use libpqxx; its domain may not).
#pragma once

#include <string>

#include "views.hpp"

namespace shop {

/// The two read-model projections and queries over their tables. `registry` must outlive
/// them. Opens no connection until the first query.
[[nodiscard]] ShopReadModels make_postgres_read_models(const annals::EventRegistry& registry,
                                                       const std::string& connection_string);

}  // namespace shop
