// A ProjectionStore in memory: for tests and for services run without a database (e.g. the
// bank sample's --memory mode). Everything is lost with the process, which is right for
// in-memory read models: their state and checkpoint live and die together.
#pragma once

#include <memory>

#include "annals/projections/projection_store.hpp"

namespace annals::projections {

/// A new, empty in-memory projection store. Leases expire by the steady clock. It passes the
/// same contract suite as the PostgreSQL store (tests/support/projection_store_contract.hpp).
/// Thread safety: every method from any thread (one mutex; no user code runs under it).
[[nodiscard]] std::unique_ptr<ProjectionStore> make_in_memory_projection_store();

}  // namespace annals::projections
