// Internal: the one subscription engine both stores use. It reads the global log in batches
// from a position, delivers each event, and when a read comes back short waits on a
// ChangeSignal (or the poll interval) before reading again. Because every read continues
// strictly after the last delivered position and read_all only returns settled events, the
// hand-over from catch-up to live can neither lose nor repeat an event.
// Not part of the public API.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "annals/eventstore/event_store.hpp"

namespace annals::detail {

/// Tells a subscription that the log may have grown.
///
/// Thread safety: observe() and wait() are called from the subscription's thread only;
/// interrupt() from any thread.
class ChangeSignal {
 public:
  ChangeSignal() = default;
  ChangeSignal(const ChangeSignal&) = delete;
  ChangeSignal& operator=(const ChangeSignal&) = delete;
  virtual ~ChangeSignal() = default;

  /// Called before each read; returns a token for wait(). A change signalled after
  /// observe() returned must make the following wait() return promptly.
  virtual std::uint64_t observe() = 0;
  /// Returns when a change after `token` was signalled, `timeout` elapsed or interrupt() was
  /// called: true when a change was signalled (or may have been missed, e.g. after a
  /// reconnection), false on timeout or interrupt. Spurious returns are allowed.
  virtual bool wait(std::uint64_t token, std::chrono::milliseconds timeout) = 0;
  /// Wakes a pending or the next wait(); used by stop().
  virtual void interrupt() = 0;
};

/// Starts the subscription thread. `reader` must outlive the subscription.
[[nodiscard]] std::unique_ptr<Subscription> make_catch_up_subscription(
    EventReader& reader, std::unique_ptr<ChangeSignal> signal, SubscriptionOptions options,
    EventHandler handler);

}  // namespace annals::detail
