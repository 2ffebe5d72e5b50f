// Internal: the PostgreSQL projection store's Batch (ProjectionStore::begin): the projection's
// writes, dead-letter changes and the fenced checkpoint UPDATE in one transaction on one pooled
// session (ARCHITECTURE decision 7).
#pragma once

#include <chrono>
#include <memory>

#include <pqxx/pqxx>

#include "annals/projections/projection_store.hpp"
#include "postgres_batch.hpp"
#include "watchdog.hpp"

namespace annals::projections::detail {

/// A batch over `tx` (open on `session`) for the holder of `lease`, whose stored checkpoint is
/// `checkpoint`. Each of its statements, ROLLBACK and COMMIT included, gets `statement_timeout`
/// on `watchdog`. Destroying it uncommitted rolls back.
std::unique_ptr<Batch> make_batch(Lease lease, Position checkpoint, SessionPool::Lease session,
                                  std::unique_ptr<pqxx::work> tx,
                                  postgres::detail::Watchdog& watchdog,
                                  std::chrono::milliseconds statement_timeout);

}  // namespace annals::projections::detail
