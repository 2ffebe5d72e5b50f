#include "recorded_subscription.hpp"

#include "annals/eventstore/error.hpp"

namespace annals::faults {

using namespace std::chrono_literals;

RecordedSubscription::RecordedSubscription(EventStore& store) : store_(store) {
  subscribe_after(Position::start());
  watcher_ = std::thread([this] { watch(); });
}

RecordedSubscription::~RecordedSubscription() {
  stop_ = true;
  if (watcher_.joinable()) watcher_.join();
  std::unique_ptr<Subscription> subscription;
  {
    std::lock_guard lock(mutex_);
    subscription = std::move(subscription_);
  }
  if (subscription) subscription->stop();
}

void RecordedSubscription::subscribe_after(Position after) {
  SubscriptionOptions options;
  options.after = after;
  options.batch_size = 500;
  options.poll_interval = 200ms;
  auto subscription = store_.subscribe(options, [this](const RecordedEvent& e) {
    std::lock_guard lock(mutex_);
    delivered_.push_back({e.position, e.id});
    delivered_changed_.notify_all();
  });
  std::lock_guard lock(mutex_);
  subscription_ = std::move(subscription);
}

// Every 50 ms: has the subscription stopped? Restart it after a retryable stop (the server
// may still be down: a failing subscribe() is tried again on the next round).
void RecordedSubscription::watch() {
  while (!stop_) {
    std::this_thread::sleep_for(50ms);  // polling period of the watcher
    std::unique_ptr<Subscription> stopped;
    Position after;
    {
      std::lock_guard lock(mutex_);
      if (failure_ || (subscription_ && subscription_->is_running())) continue;
      stopped = std::move(subscription_);
      after = delivered_.empty() ? Position::start() : delivered_.back().position;
    }
    // Joined outside the lock: its thread may be waiting for it in the handler.
    if (stopped && !restartable(*stopped)) continue;
    try {
      subscribe_after(after);
    } catch (const UnavailableError&) {
      // still down: next round
    }
  }
}

// Joins a subscription that stopped on its own; true when its stop reason is retryable
// (counted as a restart), false after recording any other reason as the failure.
bool RecordedSubscription::restartable(Subscription& stopped) {
  const auto reason = stopped.stop_reason();
  stopped.stop();
  try {
    if (reason) std::rethrow_exception(reason);
    std::lock_guard lock(mutex_);
    failure_ = "the subscription stopped without a reason";
  } catch (const UnavailableError&) {
    std::lock_guard lock(mutex_);
    ++restarts_;
    return true;
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    failure_ = e.what();
  }
  delivered_changed_.notify_all();
  return false;
}

bool RecordedSubscription::wait_for(Position position, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return delivered_changed_.wait_for(lock, timeout, [&] {
    return failure_ || (!delivered_.empty() && delivered_.back().position >= position);
  }) && !failure_;
}

std::vector<Delivered> RecordedSubscription::delivered() const {
  std::lock_guard lock(mutex_);
  return delivered_;
}

std::size_t RecordedSubscription::restarts() const {
  std::lock_guard lock(mutex_);
  return restarts_;
}

std::optional<std::string> RecordedSubscription::failure() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

}  // namespace annals::faults
