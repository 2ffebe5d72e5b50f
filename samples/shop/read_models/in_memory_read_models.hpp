// The shop's read models in process memory, for `shop --memory`: the same views as the
// PostgreSQL read models, kept in maps by InProcessProjections. Delivery is at least once, so
// each projection remembers the position of the last event it applied and ignores anything
// at or before it (a batch that failed and is delivered again).
//
// Use with make_in_memory_projection_store(): the maps and their checkpoints live and die
// together.
#pragma once

#include "views.hpp"

namespace shop {

/// The two in-memory projections and queries over their maps. `registry` must outlive them.
[[nodiscard]] ShopReadModels make_in_memory_read_models(const annals::EventRegistry& registry);

}  // namespace shop
