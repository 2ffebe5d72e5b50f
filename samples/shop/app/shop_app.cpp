#include "shop_app.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <utility>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "in_memory_read_models.hpp"
#include "postgres_read_models.hpp"
#include "shop_domain.hpp"

namespace shop {

// Forwards to the real store and remembers the newest position appended through it, so that
// settle() knows what the saga's commands wrote without relying on the global log's head: on
// PostgreSQL the head only shows events below the oldest running transaction of the cluster,
// so a fresh append may not be part of it yet (ARCHITECTURE decision 5).
class ShopApp::TrackingStore final : public annals::EventStore {
 public:
  explicit TrackingStore(std::unique_ptr<annals::EventStore> inner) : inner_(std::move(inner)) {}

  std::vector<annals::RecordedEvent> read_stream(
      const annals::StreamId& stream, const annals::ReadStreamOptions& options) override {
    return inner_->read_stream(stream, options);
  }
  std::vector<annals::RecordedEvent> read_all(const annals::ReadAllOptions& options) override {
    return inner_->read_all(options);
  }
  std::optional<annals::StreamVersion> stream_version(const annals::StreamId& stream) override {
    return inner_->stream_version(stream);
  }
  annals::Position head_position() override { return inner_->head_position(); }
  annals::StreamState stream_state(const annals::StreamId& stream) override {
    return inner_->stream_state(stream);
  }
  void set_stream_metadata(const annals::StreamId& stream,
                           const annals::StreamMetadata& metadata) override {
    inner_->set_stream_metadata(stream, metadata);
  }
  annals::AppendResult append(const annals::StreamId& stream,
                              const annals::ExpectedVersion& expected,
                              std::vector<annals::NewEvent> events) override {
    auto result = inner_->append(stream, expected, std::move(events));
    note(result.position);
    return result;
  }
  std::vector<annals::AppendResult> append_multi(
      std::vector<annals::StreamAppend> appends) override {
    auto results = inner_->append_multi(std::move(appends));
    for (const auto& result : results) note(result.position);
    return results;
  }
  std::unique_ptr<annals::ChangeSignal> watch() override { return inner_->watch(); }
  std::unique_ptr<annals::Subscription> subscribe(annals::SubscriptionOptions options,
                                                  annals::EventHandler handler) override {
    return inner_->subscribe(std::move(options), std::move(handler));
  }

  annals::Position newest() const {
    std::lock_guard lock(mutex_);
    return newest_;
  }

 private:
  void note(annals::Position position) {
    std::lock_guard lock(mutex_);
    newest_ = std::max(newest_, position);
  }

  std::unique_ptr<annals::EventStore> inner_;
  mutable std::mutex mutex_;
  annals::Position newest_;
};

ShopApp::ShopApp(ShopAppOptions options) : options_(std::move(options)) {
  register_events(registry_);
  ShopReadModels read_models;
  if (options_.memory) {
    store_ = std::make_unique<TrackingStore>(annals::make_in_memory_event_store());
    projection_store_ = annals::projections::make_in_memory_projection_store();
    read_models = make_in_memory_read_models(registry_);
  } else {
    if (options_.database_url.empty()) {
      throw annals::InvalidArgumentError(
          "shop: no database: pass --db URL, set ANNALS_DATABASE_URL, or use --memory");
    }
    annals::postgres::migrate(options_.database_url);
    store_ = std::make_unique<TrackingStore>(
        annals::postgres::make_postgres_event_store({.connection_string = options_.database_url}));
    projection_store_ = annals::projections::make_postgres_projection_store(
        {.connection_string = options_.database_url});
    read_models = make_postgres_read_models(registry_, options_.database_url);
  }
  bus_ = std::make_unique<annals::CommandBus>(*store_, registry_);
  register_handlers(*bus_);

  projections_.push_back(std::make_shared<OrderSaga>(*bus_, *store_, registry_));
  for (auto& projection : read_models.projections) projections_.push_back(std::move(projection));
  queries_ = std::move(read_models.queries);

  runner_ = std::make_unique<annals::projections::ProjectionRunner>(*store_, *projection_store_,
                                                                    options_.runner);
  for (const auto& projection : projections_) {
    // The saga's commands are idempotent, so retrying an event is safe; one that keeps failing
    // stops the saga (an operator looks) rather than being skipped, which would strand an
    // order half-reserved.
    runner_->add(projection, {.on_failure = annals::projections::OnFailure::kStop});
  }
}

ShopApp::~ShopApp() { stop(); }

annals::EventStore& ShopApp::store() noexcept { return *store_; }

void ShopApp::start() {
  if (options_.run_projections) runner_->start();
}

void ShopApp::stop() { runner_->stop(); }

void ShopApp::run_until_signal() { runner_->run_until_signal(); }

std::vector<std::string> ShopApp::projection_names() const {
  std::vector<std::string> names;
  for (const auto& projection : projections_) names.push_back(projection->name());
  return names;
}

// docs:begin shop-settle
bool ShopApp::settle(std::chrono::milliseconds timeout, annals::Position at_least) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()));
  };
  for (;;) {
    // Everything this process appended, what the caller knows of, and everything any process
    // had appended and settled.
    const annals::Position target = std::max({store_->head_position(), store_->newest(), at_least});
    for (const auto& name : projection_names()) {
      const bool reached = options_.run_projections ? runner_->wait_for(name, target, left())
                                                    : annals::projections::wait_for_checkpoint(
                                                          *projection_store_, name, target, left());
      if (!reached) return false;
    }
    // The saga sends its commands before its position moves past their trigger: if they
    // appended nothing beyond the target, there is nothing left to react to. (Commands sent by
    // a saga in another process are seen through the head only.)
    if (store_->newest() <= target) return true;
  }
}
// docs:end

}  // namespace shop
