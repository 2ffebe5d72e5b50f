// One object for a whole service: the event store, the snapshot store, the event registry, the
// command bus, the projection store, a projection runner and the document reader, made
// together so that they share one set of options. annals::postgres::open()
// (annals/projections/postgres/open.hpp) makes it on PostgreSQL; annals::open_in_memory()
// (below) makes the same shape in memory, for tests and for services run without a server.
//
//   auto app = annals::postgres::open(url, {.max_connections = 24});
//   app->registry().register_events<Account>();
//   app->bus().handle<Account>(&Deposit::account_id);
//   app->runner().add(std::make_shared<Accounts>(app->registry()));
//   app->runner().start();
//   auto sent = app->bus().send(Deposit{"42", 100});
//   auto account = app->collection<AccountView>("accounts").after(sent.position).get("42");
//
// The separate factories (make_postgres_event_store(), ...) remain for users who want parts.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/metrics.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/projections/document_reader.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"

namespace annals {

/// The stores an App is made of, and the options of the parts it makes itself.
struct AppParts {
  std::unique_ptr<EventStore> events;
  std::unique_ptr<SnapshotStore> snapshots;
  std::unique_ptr<projections::ProjectionStore> projections;
  /// Makes the document reader over `projections` (called once, by the App's constructor).
  std::function<std::unique_ptr<projections::DocumentReader>(projections::ProjectionStore&)>
      make_reader;
  /// Options of the command bus; its `snapshots` is set to the App's snapshot store.
  CommandBusOptions bus;
  projections::RunnerOptions runner;
};

/// A service's event store, snapshot store, registry, command bus, projection store, runner and
/// document reader. Register events and handlers and add projections before
/// runner().start() and the first send() (as for each part on its own).
///
/// Destruction stops the runner first, then releases the parts in reverse order of their
/// dependencies. Thread safety: as each part (the accessors themselves are const and free).
class App {
 public:
  /// Throws InvalidArgumentError when a store or make_reader is missing.
  explicit App(AppParts parts);
  App(const App&) = delete;
  App& operator=(const App&) = delete;
  ~App();

  [[nodiscard]] EventStore& events() const noexcept { return *events_; }
  [[nodiscard]] SnapshotStore& snapshots() const noexcept { return *snapshots_; }
  [[nodiscard]] EventRegistry& registry() const noexcept { return *registry_; }
  [[nodiscard]] CommandBus& bus() const noexcept { return *bus_; }
  [[nodiscard]] projections::ProjectionStore& projection_store() const noexcept {
    return *projection_store_;
  }
  [[nodiscard]] projections::ProjectionRunner& runner() const noexcept { return *runner_; }
  [[nodiscard]] projections::DocumentReader& documents() const noexcept { return *reader_; }

  /// The typed view of a document collection (DocumentReader::collection()).
  template <typename T>
  [[nodiscard]] projections::TypedCollection<T> collection(std::string name) const {
    return reader_->collection<T>(std::move(name));
  }

 private:
  // Declared in the order of construction; destroyed in reverse.
  std::unique_ptr<EventStore> events_;
  std::unique_ptr<SnapshotStore> snapshots_;
  std::unique_ptr<projections::ProjectionStore> projection_store_;
  std::unique_ptr<EventRegistry> registry_;
  std::unique_ptr<CommandBus> bus_;
  std::unique_ptr<projections::ProjectionRunner> runner_;
  std::unique_ptr<projections::DocumentReader> reader_;
};

/// Options of open_in_memory().
struct InMemoryAppOptions {
  /// Metrics of the event store and (unless `runner.metrics` is set) the runner, as
  /// annals::postgres::OpenOptions::metrics. Default none.
  std::shared_ptr<MetricsSink> metrics;
  CommandBusOptions bus;
  projections::RunnerOptions runner;
};

/// An App on the in-memory stores (make_in_memory_event_store(), ..._snapshot_store(),
/// ..._projection_store(), make_in_memory_document_reader()): the same shape as
/// annals::postgres::open(), for unit tests of a whole service. Throws: nothing but bad_alloc.
[[nodiscard]] std::unique_ptr<App> open_in_memory(InMemoryAppOptions options = {});

}  // namespace annals
