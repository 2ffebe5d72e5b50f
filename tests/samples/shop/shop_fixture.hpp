// Shared pieces of the shop tests: a shop wired on the in-memory or the PostgreSQL stores,
// a store decorator that remembers the newest position appended, and a loop that feeds the
// order saga the log by hand (no runner, no threads), for exact and deterministic tests.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/testkit/fault_injection.hpp"
#include "order_saga.hpp"
#include "shop_domain.hpp"
#include "test_database.hpp"

namespace shop_test {

enum class StoreKind { kMemory, kPostgres };

inline std::string store_name(const ::testing::TestParamInfo<StoreKind>& info) {
  return info.param == StoreKind::kMemory ? "Memory" : "Postgres";
}

/// Forwards to a store and remembers the newest position its appends reached, so that a
/// reader can tell "nothing more to read" from "not visible yet" (PostgreSQL shows the global
/// log only below the oldest running transaction of the cluster).
class TrackingEventStore final : public annals::testkit::ForwardingEventStore {
 public:
  using ForwardingEventStore::ForwardingEventStore;

  annals::AppendResult append(const annals::StreamId& stream,
                              const annals::ExpectedVersion& expected,
                              std::vector<annals::NewEvent> events) override {
    auto result = ForwardingEventStore::append(stream, expected, std::move(events));
    std::lock_guard lock(mutex_);
    newest_ = std::max(newest_, result.position);
    return result;
  }

  annals::Position newest() const {
    std::lock_guard lock(mutex_);
    return newest_;
  }

 private:
  mutable std::mutex mutex_;
  annals::Position newest_;
};

/// One shop: store, registry, command bus.
struct Shop {
  explicit Shop(StoreKind kind) {
    if (kind == StoreKind::kMemory) {
      inner = annals::make_in_memory_event_store();
    } else {
      inner = annals::postgres::make_postgres_event_store(
          {.connection_string = annals::testing::test_database_url()});
    }
    store = std::make_unique<TrackingEventStore>(*inner);
    shop::register_events(registry);
    bus = make_bus();
  }

  /// Another bus on the same store (its own cache), as another process would have.
  std::unique_ptr<annals::CommandBus> make_bus() {
    auto made = std::make_unique<annals::CommandBus>(*store, registry);
    shop::register_handlers(*made);
    return made;
  }

  std::unique_ptr<annals::EventStore> inner;
  std::unique_ptr<TrackingEventStore> store;
  annals::EventRegistry registry;
  std::unique_ptr<annals::CommandBus> bus;
};

/// Feeds `saga` every event of its filter after `after`, in log order, until every event
/// appended so far through `store` (the saga's own commands included) has been read. Returns
/// the position of the last event read. Fails the test if the log does not settle in 10 s.
inline annals::Position drive(shop::OrderSaga& saga, TrackingEventStore& store,
                              annals::Position after = annals::Position::start()) {
  const auto signal = store.watch();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    const auto token = signal->observe();
    const annals::Position head = store.head_position();
    const auto batch = store.read_all({.after = after, .max_count = 100, .filter = saga.filter()});
    for (const auto& event : batch) {
      saga.handle(event);
      after = event.position;
    }
    if (!batch.empty()) continue;
    // The read saw everything up to the head; done once that covers every append.
    if (std::max(after, head) >= store.newest()) return after;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the log did not settle up to " << store.newest().to_string();
      return after;
    }
    signal->wait(token, std::chrono::milliseconds(100));
  }
}

/// The events of `stream`, decoded.
template <typename D>
std::vector<typename D::Event> events_of(Shop& shop, const std::string& id) {
  std::vector<typename D::Event> out;
  const annals::StreamId stream(std::string(D::kCategory) + "-" + id);
  for (const auto& recorded : shop.store->read_stream(stream, {})) {
    shop.registry.decode(recorded, out);
  }
  return out;
}

/// A fresh id (order or SKU) for this test, so that tests sharing a database never meet.
inline std::string unique_id(const std::string& prefix) {
  return annals::testing::unique_stream(prefix);
}

}  // namespace shop_test
