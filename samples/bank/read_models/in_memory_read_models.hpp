// The bank's read models in process memory, for `bank-service --memory`: the same three views
// as the PostgreSQL read models (same JSON), kept in maps by InProcessProjections. Delivery is
// at least once, so each projection remembers the position of the last event it applied and
// ignores anything at or before it (a batch that failed and is delivered again).
//
// Use with make_in_memory_projection_store(): the maps and their checkpoints live and die
// together.
#pragma once

#include "views.hpp"

namespace bank {

/// The three in-memory projections and queries over their maps. `registry` must outlive them.
[[nodiscard]] BankReadModels make_in_memory_read_models(const annals::EventRegistry& registry);

}  // namespace bank
