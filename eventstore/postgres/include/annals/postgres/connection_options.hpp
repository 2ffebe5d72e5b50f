// How long the library waits on the network: the connection-level settings every connection
// it opens carries (connect timeout, TCP keepalives, TCP_USER_TIMEOUT), shared by the options
// of the event store, the snapshot store and the projection store (docs/operations.md,
// "Timeouts").
//
// Each setting is added to the connection string as a libpq keyword unless the string already
// sets that keyword: a user's own `connect_timeout=...`, `keepalives_idle=...` and so on win.
// Zero leaves the keyword out (libpq's and the operating system's defaults then apply).
//
// These settings detect a peer that is really gone (a dead host, a cut cable: no TCP
// acknowledgements come back). A peer that acknowledges but never answers (a hung proxy or
// pooler in between) is caught by the stores' per-call deadline (`call_timeout`) instead.
#pragma once

#include <chrono>

namespace annals::postgres {

struct ConnectionTimeouts {
  /// libpq `connect_timeout`: the longest a connection attempt (TCP connect, TLS, startup and
  /// authentication) may take before it fails with UnavailableError. Whole seconds; libpq
  /// treats 1 as 2. Default 5 s: a healthy server answers in milliseconds, and a caller
  /// retrying on a fresh connection should not wait much longer than a human would.
  std::chrono::seconds connect_timeout{5};
  /// libpq `keepalives_idle`: idle time before the first TCP keepalive probe. Default 10 s.
  std::chrono::seconds keepalives_idle{10};
  /// libpq `keepalives_interval`: time between unanswered probes. Default 5 s.
  std::chrono::seconds keepalives_interval{5};
  /// libpq `keepalives_count`: unanswered probes before the connection is declared dead.
  /// Default 3, so an idle connection to a vanished peer is dropped after 10 + 3 x 5 = 25 s.
  int keepalives_count = 3;
  /// libpq `tcp_user_timeout` (Linux TCP_USER_TIMEOUT): how long sent data may stay
  /// unacknowledged before the kernel drops the connection; covers a busy connection that
  /// keepalives (which only probe idle ones) do not. Milliseconds. Default 15 s: longer than
  /// any retransmission pause of a healthy network, and a dead peer is noticed within it.
  std::chrono::milliseconds tcp_user_timeout{15'000};

  friend bool operator==(const ConnectionTimeouts&, const ConnectionTimeouts&) = default;
};

}  // namespace annals::postgres
