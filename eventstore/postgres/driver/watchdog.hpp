// Internal: the per-call deadline of blocking driver calls.
//
// A blocked libpq or libpqxx call waits on its socket; TCP keepalives and tcp_user_timeout end
// that wait only when the peer stops acknowledging. A peer that acknowledges but never answers
// (a hung proxy, pooler or server) would keep the call waiting forever. The watchdog bounds
// such calls: a caller arms a Call with its connection's socket and a deadline; if the call is
// still running at the deadline, the watchdog shuts the socket down (shutdown(SHUT_RDWR)), and
// the blocked call fails at once as a broken connection, which the driver's translation turns
// into UnavailableError, or OutcomeUnknownError for a write that may have reached the server.
//
// One thread per watchdog (one per store), not per call. Arming and disarming take one
// uncontended mutex and link or unlink a node that lives on the caller's stack: no allocation,
// no system call. The thread sleeps until the earliest armed deadline, and at most
// `shortest_timeout` when none is sooner; since a call armed with at least that timeout cannot
// expire sooner, arming never has to wake it (a retry armed with less time left does).
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "db_error.hpp"

namespace annals::postgres::detail {

class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;

  /// Starts the thread. `shortest_timeout`: the shortest timeout callers usually arm with
  /// (the store's call timeout); at least 1 ms is used.
  explicit Watchdog(std::chrono::milliseconds shortest_timeout);
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  /// Stops the thread. Requires: no Call armed.
  ~Watchdog();

  /// One armed call: from construction to disarm() (or destruction), the watchdog shuts
  /// `socket` down if `deadline` passes. Requires: the socket stays open while armed (disarm
  /// before closing the connection). Thread safety: one Call per calling thread; the
  /// watchdog may be shared by any number of threads.
  class Call {
   public:
    /// Arms. A null `watchdog` or a negative `socket` arms nothing.
    Call(Watchdog* watchdog, int socket, Clock::time_point deadline);
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;
    ~Call() { disarm(); }

    /// Disarms (idempotent). Returns true when the deadline passed and the socket was shut
    /// down: the connection is unusable even if the call itself succeeded.
    bool disarm() noexcept;

   private:
    friend class Watchdog;
    Watchdog* watchdog_;
    int socket_;
    Clock::time_point deadline_;
    bool armed_ = false;
    bool fired_ = false;
    Call* previous_ = nullptr;
    Call* next_ = nullptr;
  };

 private:
  void run();
  void link(Call& call);
  void unlink(Call& call) noexcept;

  const Clock::duration idle_wait_;
  std::mutex mutex_;
  std::condition_variable wake_;
  Call* head_ = nullptr;
  Clock::time_point next_wake_ = Clock::time_point::max();
  bool stopping_ = false;
  std::thread thread_;
};

/// The deadline of the calls a background connection of the store makes outside the pool (the
/// after-commit notifier's NOTIFY, a LISTEN connection's LISTEN and horizon query): the store's
/// watchdog, shared so that a ChangeSignal may outlive the store, and how long one call may
/// wait for the server. A null watchdog or a zero timeout bounds nothing.
struct CallBound {
  std::shared_ptr<Watchdog> watchdog;
  std::chrono::milliseconds timeout{0};
};

/// Runs `f()` with `socket` watched until `bound.timeout` from now, and returns what it
/// returns. When the watchdog shut the socket down (the connection is then unusable, even if
/// `f` returned in time), throws DbError (broken, may have reached the server) saying that no
/// answer came within the timeout, naming `what`.
/// Throws: that DbError (also in place of whatever `f` threw once the socket was shut down);
/// what `f` throws otherwise.
/// Thread safety: as Watchdog::Call. Cost: two uncontended mutex locks.
template <typename F>
auto run_bounded(const CallBound& bound, int socket, const char* what, F&& f) {
  const auto deadline = bound.timeout.count() > 0 ? Watchdog::Clock::now() + bound.timeout
                                                  : Watchdog::Clock::time_point::max();
  Watchdog::Call armed(
      deadline == Watchdog::Clock::time_point::max() ? nullptr : bound.watchdog.get(), socket,
      deadline);
  const auto timed_out = [&](const char* cause) {
    return DbError::broken(std::string(what) + ": no answer within " +
                               std::to_string(bound.timeout.count()) +
                               " ms; the connection was abandoned (" + cause + ")",
                           true);
  };
  using Result = decltype(std::forward<F>(f)());
  try {
    if constexpr (std::is_void_v<Result>) {
      std::forward<F>(f)();
      if (!armed.disarm()) return;
    } else {
      auto result = std::forward<F>(f)();
      if (!armed.disarm()) return result;
    }
  } catch (const std::exception& e) {
    // Cut short: whatever failed, failed because the socket was shut down.
    if (armed.disarm()) throw timed_out(e.what());
    throw;
  }
  throw timed_out("it returned after its socket was shut down");
}

}  // namespace annals::postgres::detail
