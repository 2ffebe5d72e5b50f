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
/// it ends. The destructor does not wait out an outage: it gives up a notification still owed.
/// Thread safety: notify() may be called from any thread.
class AfterCommitNotifier {
 public:
  explicit AfterCommitNotifier(std::string connection_string, ReconnectBackoff backoff = {});
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
  static void log_warn(const char* error) noexcept;
  static void log_recovered(std::chrono::milliseconds duration, int failed_attempts) noexcept;

  std::string connection_string_;
  // Used by the thread only.
  std::unique_ptr<LibpqConnection> connection_;
  annals::detail::Backoff backoff_;
  annals::detail::Outage outage_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool pending_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace annals::postgres::detail
