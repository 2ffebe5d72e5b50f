// Internal: the ChangeSignal of PostgreSQL subscriptions, woken by NOTIFY annals_events
// (ARCHITECTURE decision 6).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "annals/eventstore/event_store.hpp"
#include "watchdog.hpp"

namespace annals::postgres::detail {

/// The waits between attempts to re-open a lost LISTEN connection (or the after-commit
/// notifier's connection): capped exponential backoff with jitter. The store fills it from
/// its options (PostgresEventStoreOptions, SubscriptionOptions), which are validated there.
struct ReconnectBackoff {
  /// Before the second attempt (the first is made at once). Default 100 ms.
  std::chrono::milliseconds initial{100};
  /// Longest wait between attempts. Default 5 s.
  std::chrono::milliseconds max{5000};
};

/// Reads go to a hot standby, which receives no notifications: after one arrives on the
/// primary, wait() asks the primary for its flushed WAL position and waits (polling, at most
/// `timeout`) until the standby has replayed that far, so the read it wakes finds the events
/// notified. An empty `connection_string`: no standby, no wait.
struct StandbyWait {
  std::string connection_string;
  std::chrono::milliseconds timeout{5000};
};

/// A ChangeSignal on a dedicated LISTEN connection (see change_signal.cpp). `warn_after`: warn
/// when a transaction older than this holds back the global log's readers (0: never). A lost
/// connection is re-opened with `backoff`, forever; meanwhile wait() sleeps until its timeout.
/// `bound` (the store's watchdog and call timeout) bounds LISTEN and the horizon query; a call
/// cut by it counts as a lost connection. Connecting is bounded by the connection string's
/// connect_timeout. So no wait() and no construction waits longer than the connect timeout or
/// the call timeout (plus its own timeout) for a server that stopped answering.
/// Throws: the translated error when the LISTEN connection cannot be opened at first.
/// Thread safety: as ChangeSignal (one waiting thread; interrupt() from any).
[[nodiscard]] std::unique_ptr<ChangeSignal> make_change_signal(std::string connection_string,
                                                               std::chrono::milliseconds warn_after,
                                                               ReconnectBackoff backoff = {},
                                                               CallBound bound = {},
                                                               StandbyWait standby = {});

}  // namespace annals::postgres::detail
