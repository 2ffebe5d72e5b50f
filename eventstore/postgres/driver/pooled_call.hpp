// Internal: running calls on connections with the driver layer's retry rules: run_pooled, the
// one retry loop of every pooled caller (event store, snapshot store, projection store), and
// with_connection for one-off calls on a connection of their own.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <pqxx/connection>

#include "annals/eventstore/error.hpp"
#include "connection_pool.hpp"
#include "db_error.hpp"
#include "error_translation.hpp"
#include "logger.hpp"

namespace annals::postgres::detail {

/// What a write knows about its own earlier attempts, across every statement it sends (an
/// append may send the single-event statement, alone or in a group, then annals.append_events).
/// Once one of its statements was sent and the connection broke before the answer arrived, the
/// write may have committed, and no later failure of the same write may report "nothing
/// written": it ends in OutcomeUnknownError unless a later attempt gets the database's
/// authoritative answer.
struct WriteState {
  bool in_doubt = false;  ///< a statement was sent and its connection broke before the answer
};

/// How run_pooled repeats a call.
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
};

namespace pooled_call_internal {

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
    logger()->warn("annals: {}: {} ({}); retrying on a new connection", what,
                   in_flight ? "connection lost" : "cannot connect", error.what());
  } else {
    logger()->warn("annals: {}: connection lost ({}); retrying on a new one", policy.component,
                   error.what());
  }
}

}  // namespace pooled_call_internal

/// Runs `f` on a pooled connection: `f(connection)`, or `f(lease)` when `f` takes the pool's
/// Lease (a call that keeps the connection, or discards it itself). A broken connection is
/// discarded and the call retried on a new one, and transient failures are retried, as
/// `policy` says. Everything else is translated once, by SQLSTATE (error_translation.hpp);
/// annals errors thrown by `f` pass unchanged. `write` (null for reads) is the state of a write
/// whose outcome is unknown once a connection broke while one of its statements was in flight
/// (appends; they are retried with the same event ids, which makes the retry an exact
/// re-send): a write in doubt that then fails as unavailable (every reconnect refused, the
/// server shutting down) throws OutcomeUnknownError, never UnavailableError.
template <typename Connection, typename F>
auto run_pooled(ConnectionPool<Connection>& pool, const std::string& what, WriteState* write,
                const RetryPolicy& policy, F&& f) {
  int broken = 0;
  int transient = 0;
  for (;;) {
    bool in_flight = false;
    std::optional<typename ConnectionPool<Connection>::Lease> lease;
    try {
      lease.emplace(pool.acquire());
      in_flight = true;
      return pooled_call_internal::call<Connection>(*lease, f);
    } catch (const annals::Error&) {
      throw;
    } catch (const std::exception& e) {
      const DbError error = to_db_error(e);
      const auto failure = classify(error);
      const int retries = broken + transient;
      if (failure == Failure::kBrokenConnection) {
        if (lease) lease->discard();
        if (write != nullptr && in_flight) write->in_doubt = true;
        if ((policy.one_count ? retries : broken) < policy.max_broken_retries) {
          ++broken;
          pooled_call_internal::log_retry(policy, what, failure, in_flight, error);
          continue;
        }
      } else if (failure == Failure::kRetry &&
                 (policy.one_count ? retries : transient) < policy.max_transient_retries) {
        ++transient;
        pooled_call_internal::log_retry(policy, what, failure, in_flight, error);
        continue;
      }
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

/// Opens a connection of its own (a `Connection`, constructed from the connection string),
/// runs `f(connection)` and translates any driver failure (for one-off administrative calls:
/// migrations, verify, anchors, diagnostics).
template <typename Connection = pqxx::connection, typename F>
auto with_connection(const std::string& connection_string, const std::string& what, F&& f) {
  try {
    Connection connection(connection_string);
    return f(connection);
  } catch (const annals::Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_translated(to_db_error(e), what, false);
  }
}

}  // namespace annals::postgres::detail
