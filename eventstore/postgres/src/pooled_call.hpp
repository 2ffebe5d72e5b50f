// Internal: running one statement on a pooled connection, with the store's retry rules.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "connection_pool.hpp"
#include "error_translation.hpp"

namespace annals::postgres::detail {

/// The "annals" logger, or spdlog's default one when the application registered none. The
/// library never sets sinks or levels.
inline std::shared_ptr<spdlog::logger> logger() {
  auto log = spdlog::get("annals");
  return log ? log : spdlog::default_logger();
}

/// What a write knows about its own earlier attempts, across every statement it sends (an
/// append may send the single-event statement, alone or in a group, then annals.append_events).
/// Once one of its statements was sent and the connection broke before the answer arrived, the
/// write may have committed, and no later failure of the same write may report "nothing
/// written": it ends in OutcomeUnknownError unless a later attempt gets the database's
/// authoritative answer (issue 11).
struct WriteState {
  bool in_doubt = false;  ///< a statement was sent and its connection broke before the answer
};

/// Runs `f(connection)` on a pooled connection. A broken connection is discarded and the call
/// retried on a new one, up to `max_broken_retries` times; transient failures (a raced unique
/// key, serialization failure, deadlock) are retried up to 8 times. Everything else is
/// translated once, by SQLSTATE. `write` (null for reads) is the state of a write whose outcome
/// is unknown once a connection broke while one of its statements was in flight (appends; they
/// are retried with the same event ids, which makes the retry an exact re-send): a write in
/// doubt that then fails as unavailable (every reconnect refused, the server shutting down)
/// throws OutcomeUnknownError, never UnavailableError.
template <typename Connection, typename F>
auto run_pooled(ConnectionPool<Connection>& pool, const std::string& what, WriteState* write,
                int max_broken_retries, F&& f) -> std::invoke_result_t<F&, Connection&> {
  int broken = 0;
  int transient = 0;
  for (;;) {
    bool in_flight = false;
    std::optional<typename ConnectionPool<Connection>::Lease> lease;
    try {
      lease.emplace(pool.acquire());
      in_flight = true;
      return f(**lease);
    } catch (const annals::Error&) {
      throw;
    } catch (const std::exception& e) {
      const auto failure = classify(e);
      if (failure == Failure::kBrokenConnection) {
        if (lease) lease->discard();
        if (write != nullptr && in_flight) write->in_doubt = true;
        if (broken++ < max_broken_retries) {
          logger()->warn("annals: {}: {} ({}); retrying on a new connection", what,
                         in_flight ? "connection lost" : "cannot connect", e.what());
          continue;
        }
      } else if (failure == Failure::kRetry && transient++ < 8) {
        logger()->debug("annals: {}: transient failure ({}); retrying", what, e.what());
        continue;
      }
      if (write == nullptr || !write->in_doubt) rethrow_translated(e, what, false);
      try {
        rethrow_translated(e, what, true);
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
                int max_broken_retries, F&& f) -> std::invoke_result_t<F&, Connection&> {
  WriteState state;
  return run_pooled(pool, what, write ? &state : nullptr, max_broken_retries, std::forward<F>(f));
}

}  // namespace annals::postgres::detail
