// EventCollector: an EventHandler for tests that keeps everything a subscription delivers, in
// order of delivery, for the test's thread to read while the subscription runs. Header-only.
//
//   annals::testkit::EventCollector collector;
//   auto subscription = store.subscribe(options, collector.handler());
//   ASSERT_TRUE(subscription->wait_for(last, 30s));
//   EXPECT_EQ(collector.positions(), expected);
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

#include "annals/eventstore/event_store.hpp"

namespace annals::testkit {

/// Collects the events given to its handler().
///
/// Thread safety: the handler may be called from any thread (a subscription's own); events(),
/// positions() and size() may be called concurrently with it and see a consistent prefix of
/// the deliveries. The collector must outlive every handler it gave out.
class EventCollector {
 public:
  /// A handler that appends each event it is given. Cost: one copy of the event, under a lock.
  [[nodiscard]] EventHandler handler() {
    return [this](const RecordedEvent& event) {
      std::lock_guard lock(mutex_);
      events_.push_back(event);
    };
  }

  /// Every event delivered so far, in order of delivery. Cost: a copy of them all.
  [[nodiscard]] std::vector<RecordedEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

  /// The positions of events(), in the same order.
  [[nodiscard]] std::vector<Position> positions() const {
    std::lock_guard lock(mutex_);
    std::vector<Position> positions;
    positions.reserve(events_.size());
    for (const auto& event : events_) positions.push_back(event.position);
    return positions;
  }

  /// How many events were delivered so far.
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return events_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<RecordedEvent> events_;
};

}  // namespace annals::testkit
