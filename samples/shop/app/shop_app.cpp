#include "shop_app.hpp"

#include <algorithm>
#include <mutex>
#include <optional>
#include <utility>

#include "annals/eventstore/error.hpp"
#include "annals/projections/postgres/open.hpp"
#include "shop_domain.hpp"

namespace shop {
namespace {

// docs:begin shop-open
// Every part of the service from one call: on PostgreSQL (migrated first, so a fresh database
// works) or in memory. The read side needs nothing more: the App's document reader queries the
// collections the projections keep, on either store.
std::unique_ptr<annals::App> open_app(const ShopAppOptions& options) {
  if (options.memory) return annals::open_in_memory({.runner = options.runner});
  if (options.database_url.empty()) {
    throw annals::InvalidArgumentError(
        "shop: no database: pass --db URL, set ANNALS_DATABASE_URL, or use --memory");
  }
  return annals::postgres::open(options.database_url, {.migrate = true, .runner = options.runner});
}
// docs:end

}  // namespace

// Forwards to the App's store and remembers the newest position appended through it, so that
// settle() knows what the saga's commands wrote without relying on the global log's head: on
// PostgreSQL the head only shows events below the oldest running transaction of the cluster,
// so a fresh append may not be part of it yet (ARCHITECTURE decision 5).
class ShopApp::TrackingStore final : public annals::EventStore {
 public:
  explicit TrackingStore(annals::EventStore& inner) : inner_(inner) {}

  std::vector<annals::RecordedEvent> read_stream(
      const annals::StreamId& stream, const annals::ReadStreamOptions& options) override {
    return inner_.read_stream(stream, options);
  }
  std::vector<annals::RecordedEvent> read_all(const annals::ReadAllOptions& options) override {
    return inner_.read_all(options);
  }
  std::optional<annals::StreamVersion> stream_version(const annals::StreamId& stream) override {
    return inner_.stream_version(stream);
  }
  annals::Position head_position() override { return inner_.head_position(); }
  annals::StreamState stream_state(const annals::StreamId& stream) override {
    return inner_.stream_state(stream);
  }
  void set_stream_metadata(const annals::StreamId& stream,
                           const annals::StreamMetadata& metadata) override {
    inner_.set_stream_metadata(stream, metadata);
  }
  annals::AppendResult append(const annals::StreamId& stream,
                              const annals::ExpectedVersion& expected,
                              std::vector<annals::NewEvent> events) override {
    auto result = inner_.append(stream, expected, std::move(events));
    note(result.position);
    return result;
  }
  std::vector<annals::AppendResult> append_multi(
      std::vector<annals::StreamAppend> appends) override {
    auto results = inner_.append_multi(std::move(appends));
    for (const auto& result : results) note(result.position);
    return results;
  }
  std::unique_ptr<annals::ChangeSignal> watch() override { return inner_.watch(); }
  std::unique_ptr<annals::Subscription> subscribe(annals::SubscriptionOptions options,
                                                  annals::EventHandler handler) override {
    return inner_.subscribe(std::move(options), std::move(handler));
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

  annals::EventStore& inner_;
  mutable std::mutex mutex_;
  annals::Position newest_;
};

ShopApp::ShopApp(ShopAppOptions options)
    : options_(std::move(options)),
      app_(open_app(options_)),
      store_(std::make_unique<TrackingStore>(app_->events())),
      queries_(app_->documents()) {
  register_events(app_->registry());
  // The shop's own bus rather than the App's: it appends through the TrackingStore, so that
  // settle() knows what this process (its fronts and its saga) appended.
  bus_ = std::make_unique<annals::CommandBus>(*store_, app_->registry());
  register_handlers(*bus_);

  projections_.push_back(std::make_shared<OrderSaga>(*bus_, *store_, app_->registry()));
  for (auto& projection : make_read_models(app_->registry())) {
    projections_.push_back(std::move(projection));
  }
  for (const auto& projection : projections_) {
    // The saga's commands are idempotent, so retrying an event is safe; one that keeps failing
    // stops the saga (an operator looks) rather than being skipped, which would strand an
    // order half-reserved.
    app_->runner().add(projection, {.on_failure = annals::projections::OnFailure::kStop});
  }
}

ShopApp::~ShopApp() { stop(); }

annals::EventStore& ShopApp::store() noexcept { return *store_; }

void ShopApp::start() {
  if (options_.run_projections) app_->runner().start();
}

void ShopApp::stop() { app_->runner().stop(); }

void ShopApp::run_until_signal() { app_->runner().run_until_signal(); }

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
      const bool reached = options_.run_projections
                               ? app_->runner().wait_for(name, target, left())
                               : annals::projections::wait_for_checkpoint(app_->projection_store(),
                                                                          name, target, left());
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
