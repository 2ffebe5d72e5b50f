// A subscription of the fault-injection suite that records what it delivers (position and
// event id, in delivery order), to be compared with the log afterwards.
//
// Restarts: a subscription that stopped on its own with a retryable error (UnavailableError)
// is started again after the last delivered position, as an application would, and counted:
// with subscriptions that ride out outages themselves, that count must stay 0, which the
// tests check. Any other stop reason is kept (failure()) and not restarted.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "annals/eventstore/event_store.hpp"

namespace annals::faults {

struct Delivered {
  Position position;
  EventId id;
};

class RecordedSubscription {
 public:
  /// Subscribes to the whole log of `store` from the start.
  explicit RecordedSubscription(EventStore& store);
  RecordedSubscription(const RecordedSubscription&) = delete;
  RecordedSubscription& operator=(const RecordedSubscription&) = delete;
  /// Stops the subscription.
  ~RecordedSubscription();

  /// Waits until an event at or after `position` was delivered; false on timeout or when the
  /// subscription failed for good.
  bool wait_for(Position position, std::chrono::milliseconds timeout);
  /// Every event delivered so far, in delivery order.
  [[nodiscard]] std::vector<Delivered> delivered() const;
  /// How many times the subscription stopped on a retryable error and was started again.
  [[nodiscard]] std::size_t restarts() const;
  /// Why it stopped for good (a non-retryable error), if it did.
  [[nodiscard]] std::optional<std::string> failure() const;

 private:
  void subscribe_after(Position after);
  void watch();
  bool restartable(Subscription& stopped);

  EventStore& store_;
  mutable std::mutex mutex_;
  std::condition_variable delivered_changed_;
  std::vector<Delivered> delivered_;
  std::size_t restarts_ = 0;
  std::optional<std::string> failure_;
  std::unique_ptr<Subscription> subscription_;
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

}  // namespace annals::faults
