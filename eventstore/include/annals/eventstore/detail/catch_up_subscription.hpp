// Internal: the one subscription engine both stores use. It reads the global log in batches
// from a position, delivers each event, and when a read comes back short waits on a
// ChangeSignal (or the poll interval) before reading again. Because every read continues
// strictly after the last delivered position and read_all only returns settled events, the
// hand-over from catch-up to live can neither lose nor repeat an event.
// Not part of the public API.
#pragma once

#include <memory>

#include "annals/eventstore/event_store.hpp"

namespace annals::detail {

/// Starts the subscription thread. `reader` must outlive the subscription.
[[nodiscard]] std::unique_ptr<Subscription> make_catch_up_subscription(
    EventReader& reader, std::unique_ptr<ChangeSignal> signal, SubscriptionOptions options,
    EventHandler handler);

}  // namespace annals::detail
