// App: the parts of a service made together (app.hpp), and its in-memory form.
#include "annals/projections/app.hpp"

#include <memory>
#include <utility>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"

namespace annals {

App::App(AppParts parts)
    : events_(std::move(parts.events)),
      snapshots_(std::move(parts.snapshots)),
      projection_store_(std::move(parts.projections)) {
  if (!events_ || !snapshots_ || !projection_store_ || !parts.make_reader) {
    throw InvalidArgumentError(
        "App needs an event store, a snapshot store, a projection store and make_reader");
  }
  registry_ = std::make_unique<EventRegistry>();
  parts.bus.snapshots = snapshots_.get();
  bus_ = std::make_unique<CommandBus>(*events_, *registry_, std::move(parts.bus));
  runner_ = std::make_unique<projections::ProjectionRunner>(*events_, *projection_store_,
                                                            std::move(parts.runner));
  reader_ = parts.make_reader(*projection_store_);
  if (!reader_) throw InvalidArgumentError("App: make_reader returned no reader");
}

App::~App() {
  if (runner_) runner_->stop();
}

std::unique_ptr<App> open_in_memory(InMemoryAppOptions options) {
  AppParts parts;
  parts.events = make_in_memory_event_store({.metrics = options.metrics});
  parts.snapshots = make_in_memory_snapshot_store();
  parts.projections = projections::make_in_memory_projection_store();
  parts.make_reader = [](projections::ProjectionStore& store) {
    return projections::make_in_memory_document_reader(store);
  };
  parts.bus = std::move(options.bus);
  parts.runner = std::move(options.runner);
  if (!parts.runner.metrics) parts.runner.metrics = options.metrics;
  return std::make_unique<App>(std::move(parts));
}

}  // namespace annals
