// Internal: the NOTIFY that wakes subscribers after appends committed (ARCHITECTURE
// decision 6), sent from a thread and connection of its own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "annals/eventstore/detail/backoff.hpp"
#include "annals/eventstore/detail/outage.hpp"
#include "change_signal.hpp"
#include "libpq_connection.hpp"
#include "watchdog.hpp"

namespace annals::postgres::detail {

/// Sends NOTIFY annals_events after appends committed, from one connection of its own, so that
/// appends do not take the database-wide lock PostgreSQL holds from a notifying transaction's
/// commit until its WAL flush (that lock serialized concurrent appends to one per disk flush:
/// docs/performance.md). Appends made while a notification is in flight or within kMinInterval
/// of the last one are coalesced into the next one. The thread and its connection start with
/// the first append; the destructor sends a pending notification before it returns.
///
/// Outages: a notification that cannot be sent (after one retry on a fresh connection) stays
/// owed and is retried with `backoff`, forever, coalescing the appends made meanwhile;
/// subscribers poll until it goes out. An outage is logged once when it starts and once when
/// it ends. No attempt waits forever: connecting is bounded by the connection string's
/// connect_timeout, and the session setup and the NOTIFY by `bound` (the store's watchdog and
/// call timeout), so a server that stops answering without closing the connection (a hung
/// proxy) fails the attempt like a lost connection.
///
/// The destructor does not wait out an outage: it gives up a notification still owed. A
/// pending or in-flight notification gets at most kStopGrace to go out; then its socket is
/// shut down. So destruction takes at most kStopGrace, or the connect timeout when the thread
/// is opening a connection then.
/// Thread safety: notify() may be called from any thread.
class AfterCommitNotifier {
 public:
  /// How long the destructor lets a notification in flight finish before it cuts it.
  static constexpr std::chrono::milliseconds kStopGrace{1000};

  AfterCommitNotifier(std::string connection_string, ReconnectBackoff backoff, CallBound bound);
  AfterCommitNotifier(const AfterCommitNotifier&) = delete;
  AfterCommitNotifier& operator=(const AfterCommitNotifier&) = delete;
  ~AfterCommitNotifier();

  /// Asks for a notification soon. Cheap; never blocks on the database. Only the request that
  /// finds none pending wakes the thread: under load the appends of one interval share one
  /// wake-up (waking a thread costs a system call and a context switch, which on two cores
  /// came to a third of a single-event append's client CPU).
  void notify();

 private:
  // At most one notification per kMinInterval: the first after a quiet period goes out at
  // once; under load, the appends of the interval share one. Each notification is a
  // transaction that takes PostgreSQL's notify lock, and one per append cost 0.70 against
  // 0.92 of the ceiling at 16 writers (docs/performance.md).
  static constexpr std::chrono::milliseconds kMinInterval{5};

  void run();
  /// One notification; false when it could not be sent.
  bool send() noexcept;
  void send_once();
  // Records (or, with -1, clears) the socket of the connection in use, for the destructor.
  void set_in_flight(int socket) noexcept;
  // Closes the connection, first clearing its socket for the destructor.
  void close_connection() noexcept;
  [[nodiscard]] bool stopping();
  static void log_warn(const char* error) noexcept;
  static void log_recovered(std::chrono::milliseconds duration, int failed_attempts) noexcept;

  std::string connection_string_;
  CallBound bound_;
  // Used by the thread only.
  std::unique_ptr<LibpqConnection> connection_;
  annals::detail::Backoff backoff_;
  annals::detail::Outage outage_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool pending_ = false;
  bool stopping_ = false;
  // The socket of the connection while the thread uses it (-1: none); changed under mutex_,
  // so the destructor may shut it down while it is open.
  int in_flight_ = -1;
  bool cut_ = false;           // the destructor's grace ran out: cut every connection at once
  bool thread_ended_ = false;  // run() returned
  std::condition_variable ended_;
  std::thread thread_;
};

}  // namespace annals::postgres::detail
