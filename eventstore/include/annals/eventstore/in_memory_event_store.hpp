// An EventStore held in process memory, for users' fast unit tests and for samples run
// without a server. It passes the same contract suite as the PostgreSQL store: same
// expected-version rules, idempotency, limits, errors and ordering.
//
//   auto store = annals::make_in_memory_event_store();
//
// Thread safety: fully thread-safe (one mutex; appends are atomic).
#pragma once

#include <memory>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/metrics.hpp"

namespace annals {

struct InMemoryEventStoreOptions {
  /// Limits on appends, the same as the PostgreSQL store's defaults.
  AppendLimits limits;
  /// Where appends, reads and subscriptions report their metrics (label store="memory"; see
  /// metrics.hpp). Default null: no metrics, no cost.
  std::shared_ptr<MetricsSink> metrics;
};

/// Creates an empty in-memory store.
[[nodiscard]] std::unique_ptr<EventStore> make_in_memory_event_store(
    InMemoryEventStoreOptions options = {});

}  // namespace annals
