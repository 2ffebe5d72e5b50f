// Internal: running calls on connections with the driver layer's retry rules: run_pooled, the
// one retry loop of every pooled caller (event store, snapshot store, projection store), and
// with_connection for one-off calls on a connection of their own. Calls have a deadline
// (RetryPolicy::call_timeout) that the store's watchdog enforces (watchdog.hpp).
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <pqxx/connection>

#include "annals/eventstore/detail/metrics_recorder.hpp"
#include "annals/eventstore/error.hpp"
#include "connection_pool.hpp"
#include "connection_string.hpp"
#include "db_error.hpp"
#include "error_translation.hpp"
#include "libpq_connection.hpp"
#include "logger.hpp"
#include "watchdog.hpp"

namespace annals::postgres::detail {

/// What a write knows about its own earlier attempts, across every statement it sends (an
/// append may send the single-event statement, alone or in a group, then annals.append_events).
/// Once one of its statements was sent and the connection broke before the answer arrived, the
/// write may have committed, and no later failure of the same write may report "nothing
/// written": it ends in OutcomeUnknownError unless a later attempt gets the database's
/// authoritative answer.
struct WriteState {
  bool in_doubt = false;  ///< a statement was sent and its connection broke before the answer
  /// When the whole write must be over, across every statement it sends; unset (the epoch)
  /// until the caller or the first run_pooled call of the write sets it.
  std::chrono::steady_clock::time_point deadline{};
};

/// How run_pooled repeats a call, and how long it may take.
struct RetryPolicy {
  /// Retries on a new connection after the connection broke (or could not be opened).
  int max_broken_retries = 0;
  /// Retries after a transient failure (a raced unique key, serialization failure, deadlock).
  int max_transient_retries = 8;
  /// When true, both limits cap the retries made so far of either kind (the projection store's
  /// rule: one attempt counter); otherwise each kind is counted on its own.
  bool one_count = false;
  /// When set, a broken-connection warning names this component instead of the call
  /// ("annals: projection store: connection lost (...); retrying on a new one") and transient
  /// retries are not logged; otherwise warnings name the call and transient retries are logged
  /// at debug level.
  std::string_view component;
  /// The longest the whole call may take, every attempt included; zero: no limit. No retry
  /// starts after it, and with `watchdog` an attempt still waiting for the server then has its
  /// socket shut down, so it fails as a broken connection (UnavailableError, or
  /// OutcomeUnknownError for a write that was sent).
  std::chrono::milliseconds call_timeout{0};
  /// The store's watchdog (watchdog.hpp); null: the call timeout only stops retries.
  Watchdog* watchdog = nullptr;
  /// Where the retries of writes (calls with a WriteState) are counted
  /// (annals_append_retries_total with `retry_labels`); null: not counted.
  const annals::detail::MetricsRecorder* metrics = nullptr;
  annals::MetricLabels retry_labels;
};

/// The socket a connection waits on, for the watchdog (a projection store Session has its own
/// overload, found by argument-dependent lookup).
inline int socket_of(LibpqConnection& connection) noexcept { return connection.socket(); }
inline int socket_of(pqxx::connection& connection) noexcept { return connection.sock(); }

namespace pooled_call_internal {

// The socket of `connection` for the watchdog; -1 (nothing to watch) for a connection type
// without a socket_of overload (test doubles).
template <typename Connection>
int watched_socket(Connection& connection) {
  if constexpr (requires { socket_of(connection); }) {
    return socket_of(connection);
  } else {
    return -1;
  }
}

}  // namespace pooled_call_internal

namespace pooled_call_internal {

using Clock = std::chrono::steady_clock;

// Calls `f` with the lease when it takes one (to keep the connection beyond the call or to
// discard it), otherwise with the connection.
template <typename Connection, typename F>
auto call(typename ConnectionPool<Connection>::Lease& lease, F& f) {
  if constexpr (std::is_invocable_v<F&, typename ConnectionPool<Connection>::Lease&>) {
    return f(lease);
  } else {
    return f(*lease);
  }
}

// When the call must be over: the write's deadline when it has one (set here otherwise), or
// now + the call timeout; the far future without a call timeout.
inline Clock::time_point deadline_of(const RetryPolicy& policy, WriteState* write) {
  if (write != nullptr && write->deadline != Clock::time_point{}) return write->deadline;
  const auto deadline = policy.call_timeout.count() > 0 ? Clock::now() + policy.call_timeout
                                                        : Clock::time_point::max();
  if (write != nullptr) write->deadline = deadline;
  return deadline;
}

// Disarms the watchdog when an attempt ends, however it ends; a connection whose socket the
// watchdog shut down is discarded even when the call returned in time to succeed.
template <typename Lease>
class Disarm {
 public:
  Disarm(Watchdog::Call& armed, Lease& lease, bool& fired) noexcept
      : armed_(armed), lease_(lease), fired_(fired) {}
  Disarm(const Disarm&) = delete;
  Disarm& operator=(const Disarm&) = delete;
  ~Disarm() {
    if (!armed_.disarm()) return;
    fired_ = true;
    if (lease_.has_connection()) lease_.discard();
  }

 private:
  Watchdog::Call& armed_;
  Lease& lease_;
  bool& fired_;
};

// Borrows a connection, unprepared when new (run_pooled prepares it under the deadline); a
// pool that stays exhausted past its acquire timeout fails the call
// with UnavailableError, or OutcomeUnknownError for a write already in doubt.
template <typename Connection>
typename ConnectionPool<Connection>::Lease acquire(ConnectionPool<Connection>& pool,
                                                   const std::string& what,
                                                   const WriteState* write) {
  try {
    return pool.acquire_unprepared();
  } catch (const UnavailableError& e) {
    if (write != nullptr && write->in_doubt) {
      throw OutcomeUnknownError(what +
                                ": an earlier attempt was sent before its connection broke, so "
                                "the write may have committed; retry with the same event ids. (" +
                                std::string(e.what()) + ")");
    }
    throw UnavailableError(what + ": " + e.what());
  }
}

// Counts a retry of a write (annals_append_retries_total) when the policy has a sink.
inline void count_retry(const RetryPolicy& policy, const WriteState* write) noexcept {
  if (write != nullptr && policy.metrics != nullptr) {
    policy.metrics->add(annals::CounterId::kAppendRetries, policy.retry_labels);
  }
}

// Logs a retry that run_pooled is about to make.
inline void log_retry(const RetryPolicy& policy, const std::string& what, Failure failure,
                      bool in_flight, const DbError& error) {
  if (failure != Failure::kBrokenConnection) {
    if (policy.component.empty()) {
      logger()->debug("annals: {}: transient failure ({}); retrying", what, error.what());
    }
    return;
  }
  if (policy.component.empty()) {
    // A connection lost under a call is news; failing to open one means the server is down,
    // which the caller hears as UnavailableError and (a subscription, a runner) logs once per
    // outage: a warning per retry would flood the log for as long as the outage lasts.
    if (in_flight) {
      logger()->warn("annals: {}: connection lost ({}); retrying on a new connection", what,
                     error.what());
    } else {
      logger()->debug("annals: {}: cannot connect ({}); retrying on a new connection", what,
                      error.what());
    }
  } else {
    logger()->warn("annals: {}: connection lost ({}); retrying on a new one", policy.component,
                   error.what());
  }
}

// Throws the final error of a call: translated once; for a write in doubt, never as
// "unavailable" (nothing written) but as OutcomeUnknownError.
[[noreturn]] inline void give_up(const DbError& error, const std::string& what,
                                 const WriteState* write) {
  if (write == nullptr || !write->in_doubt) rethrow_translated(error, what, false);
  try {
    rethrow_translated(error, what, true);
  } catch (const OutcomeUnknownError&) {
    throw;
  } catch (const UnavailableError& unavailable) {
    // An earlier attempt of this write was sent and may have committed.
    throw OutcomeUnknownError(what +
                              ": an earlier attempt was sent before its connection "
                              "broke, so the write may have committed; retry with the "
                              "same event ids. (" +
                              std::string(unavailable.what()) + ")");
  }
}

// The failure of an attempt the watchdog cut short, in words that say so.
inline DbError timed_out(const RetryPolicy& policy, const DbError& error) {
  return DbError::broken("no answer within the call timeout of " +
                             std::to_string(policy.call_timeout.count()) +
                             " ms; the connection was abandoned (" + error.what() + ")",
                         true);
}

}  // namespace pooled_call_internal

/// Runs `f` on a pooled connection: `f(connection)`, or `f(lease)` when `f` takes the pool's
/// Lease (a call that keeps the connection, or discards it itself). A broken connection is
/// discarded and the call retried on a new one, and transient failures are retried, as
/// `policy` says, while the call's deadline (policy.call_timeout from the start, or the
/// write's deadline) has not passed; an attempt still running at the deadline is cut short by
/// the watchdog. Everything else is translated once, by SQLSTATE (error_translation.hpp);
/// annals errors thrown by `f` pass unchanged. `write` (null for reads) is the state of a
/// write whose outcome is unknown once a connection broke while one of its statements was in
/// flight (appends; they are retried with the same event ids, which makes the retry an exact
/// re-send): a write in doubt that then fails as unavailable (every reconnect refused, the
/// server shutting down, the deadline passed, the pool exhausted) throws OutcomeUnknownError,
/// never UnavailableError.
template <typename Connection, typename F>
auto run_pooled(ConnectionPool<Connection>& pool, const std::string& what, WriteState* write,
                const RetryPolicy& policy, F&& f) {
  using Lease = typename ConnectionPool<Connection>::Lease;
  const auto deadline = pooled_call_internal::deadline_of(policy, write);
  Watchdog* const watchdog =
      deadline == Watchdog::Clock::time_point::max() ? nullptr : policy.watchdog;
  int broken = 0;
  int transient = 0;
  for (;;) {
    if (Watchdog::Clock::now() >= deadline) {
      pooled_call_internal::give_up(
          DbError::broken("the call timeout of " + std::to_string(policy.call_timeout.count()) +
                              " ms passed before the call could be sent",
                          false),
          what, write);
    }
    bool in_flight = false;
    bool fired = false;
    std::optional<Lease> lease;
    try {
      lease.emplace(pooled_call_internal::acquire(pool, what, write));
      Watchdog::Call armed(watchdog, pooled_call_internal::watched_socket(**lease), deadline);
      const pooled_call_internal::Disarm<Lease> disarm{armed, *lease, fired};
      lease->prepare();
      in_flight = true;
      return pooled_call_internal::call<Connection>(*lease, f);
    } catch (const annals::Error&) {
      throw;
    } catch (const std::exception& e) {
      const DbError error =
          fired ? pooled_call_internal::timed_out(policy, to_db_error(e)) : to_db_error(e);
      const auto failure = classify(error);
      const int retries = broken + transient;
      const bool time_left = Watchdog::Clock::now() < deadline;
      if (failure == Failure::kBrokenConnection) {
        if (lease && lease->has_connection()) lease->discard();
        if (write != nullptr && in_flight) write->in_doubt = true;
        if (time_left && (policy.one_count ? retries : broken) < policy.max_broken_retries) {
          ++broken;
          pooled_call_internal::log_retry(policy, what, failure, in_flight, error);
          pooled_call_internal::count_retry(policy, write);
          continue;
        }
      } else if (failure == Failure::kRetry && time_left &&
                 (policy.one_count ? retries : transient) < policy.max_transient_retries) {
        ++transient;
        pooled_call_internal::log_retry(policy, what, failure, in_flight, error);
        pooled_call_internal::count_retry(policy, write);
        continue;
      }
      pooled_call_internal::give_up(error, what, write);
    }
  }
}

/// The same, for a call that is a write (`write` true: in doubt once its connection breaks
/// while it is in flight) or a read, with no state shared with other calls.
template <typename Connection, typename F>
auto run_pooled(ConnectionPool<Connection>& pool, const std::string& what, bool write,
                const RetryPolicy& policy, F&& f) {
  WriteState state;
  return run_pooled(pool, what, write ? &state : nullptr, policy, std::forward<F>(f));
}

/// Opens a connection of its own (a `Connection`, constructed from the connection string with
/// the default ConnectionTimeouts added where the string sets none), runs `f(connection)` and
/// translates any driver failure (for one-off administrative calls: migrations, verify,
/// anchors, diagnostics). No call deadline: these calls may legitimately run long; the
/// connection timeouts still end them when the server's host stops answering (verify and
/// anchors bound their progress too: with_progress_bounded_connection).
template <typename Connection = pqxx::connection, typename F>
auto with_connection(const std::string& connection_string, const std::string& what, F&& f) {
  try {
    Connection connection(with_timeouts(connection_string, ConnectionTimeouts{}));
    return f(connection);
  } catch (const annals::Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_translated(to_db_error(e), what, false);
  }
}

/// The same on a LibpqConnection whose waits for the server are bounded by `progress_timeout`
/// (LibpqConnection::set_progress_timeout; zero: unbounded), enforced by a watchdog thread of
/// the call's own: for one-off calls that may legitimately run long but must not hang
/// (verify, anchors), cut when the server sends nothing for that long.
template <typename F>
auto with_progress_bounded_connection(const std::string& connection_string, const std::string& what,
                                      std::chrono::milliseconds progress_timeout, F&& f) {
  std::optional<Watchdog> watchdog;
  if (progress_timeout.count() > 0) watchdog.emplace(progress_timeout);
  return with_connection<LibpqConnection>(connection_string, what, [&](LibpqConnection& c) {
    if (watchdog) c.set_progress_timeout(&*watchdog, progress_timeout);
    return f(c);
  });
}

}  // namespace annals::postgres::detail
