// The shop assembled: one annals::App (event store, snapshot store, registry, projection store,
// runner and document reader, from annals::postgres::open() or annals::open_in_memory() with
// `--memory`), the shop's command bus, the order process manager and the two document read
// models, all run by the App's ProjectionRunner.
//
//   shop::ShopApp app({.database_url = url});   // or {.memory = true}
//   app.start();
//   app.bus().send(shop::ReceiveStock{"apple", 10});
//   app.bus().send(shop::PlaceOrder{"o1", {{"apple", 3}}});
//   app.settle(std::chrono::seconds(5));         // the saga and read models are done
//   app.queries().order("o1")->status;           // "confirmed"
//
// Thread safety: construction, start() and stop() from one thread; bus(), queries() and
// settle() from any thread once started.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "annals/eventstore/event_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/projections/app.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "order_saga.hpp"
#include "read_models.hpp"
#include "views.hpp"

namespace shop {

struct ShopAppOptions {
  /// PostgreSQL connection string; required unless `memory`. annals::postgres::open() migrates
  /// the schema first, so a fresh database works.
  std::string database_url;
  /// Everything in process memory (annals::open_in_memory(): events, checkpoints, documents);
  /// lost at exit. Default false.
  bool memory = false;
  /// Whether this process runs the saga and the read models. Off, another process (`shop
  /// run`) does, and settle() follows their stored checkpoints. Default true.
  bool run_projections = true;
  /// Passed to the runner. Defaults as RunnerOptions, except a 5 s lease (a command-line
  /// process that dies holding leases delays the next one by at most that).
  annals::projections::RunnerOptions runner = {.lease_ttl = std::chrono::seconds(5)};
};

/// The shop. See the header comment.
class ShopApp {
 public:
  /// Opens the App (migrating PostgreSQL) and wires everything; runs nothing yet.
  /// Throws: InvalidArgumentError (no database_url without memory), UnavailableError,
  /// InternalError (a migration failed).
  explicit ShopApp(ShopAppOptions options);
  ShopApp(const ShopApp&) = delete;
  ShopApp& operator=(const ShopApp&) = delete;
  /// Stops the runner.
  ~ShopApp();

  /// Starts the saga and the read models (unless run_projections is off). Idempotent.
  void start();
  /// Stops them: current batches finish, leases are released. Idempotent.
  void stop();
  /// Starts, blocks until SIGINT or SIGTERM, stops (`shop run`).
  void run_until_signal();

  [[nodiscard]] annals::CommandBus& bus() noexcept { return *bus_; }
  [[nodiscard]] annals::EventStore& store() noexcept;
  [[nodiscard]] const annals::EventRegistry& registry() const noexcept { return app_->registry(); }
  [[nodiscard]] const ShopQueries& queries() const noexcept { return queries_; }
  [[nodiscard]] annals::projections::ProjectionRunner& runner() noexcept { return app_->runner(); }
  [[nodiscard]] annals::projections::ProjectionStore& projection_store() noexcept {
    return app_->projection_store();
  }
  /// The App's document reader (the read models' typed queries, with read-your-writes).
  [[nodiscard]] annals::projections::DocumentReader& documents() noexcept {
    return app_->documents();
  }
  /// The names of the saga and the read-model projections.
  [[nodiscard]] std::vector<std::string> projection_names() const;

  /// Waits until the saga and both read models have processed the log up to `at_least` and
  /// every event this process appended, and the saga's commands wrote nothing more
  /// meanwhile: every such order is confirmed or rejected, and the read models show it.
  /// Events other processes appended count once settled (the log's head): on PostgreSQL a
  /// transaction held open anywhere in the cluster holds the head back, so pass their
  /// position (an AppendResult's) as `at_least` to wait for them.
  /// Returns false when `timeout` elapsed first (or a projection failed).
  /// Cost: a head read and a wait per projection, per round.
  bool settle(std::chrono::milliseconds timeout,
              annals::Position at_least = annals::Position::start());

 private:
  class TrackingStore;

  // Declared in the order of construction; destroyed in reverse (the runner is stopped first).
  ShopAppOptions options_;
  std::unique_ptr<annals::App> app_;
  std::unique_ptr<TrackingStore> store_;  // forwards to app_->events()
  std::unique_ptr<annals::CommandBus> bus_;
  std::vector<std::shared_ptr<annals::projections::Projection>> projections_;
  ShopQueries queries_;
};

}  // namespace shop
