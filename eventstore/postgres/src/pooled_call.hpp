// Internal: running one statement on a pooled connection, with the store's retry rules.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

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

/// Runs `f(connection)` on a pooled connection. A broken connection is discarded and the call
/// retried on a new one, up to `max_broken_retries` times; transient failures (a raced unique
/// key, serialization failure, deadlock) are retried up to 8 times. Everything else is
/// translated once, by SQLSTATE. `write` marks calls whose outcome is unknown when the
/// connection breaks while they are in flight (appends; they are retried with the same event
/// ids, which makes the retry an exact re-send).
template <typename Connection, typename F>
auto run_pooled(ConnectionPool<Connection>& pool, const std::string& what, bool write,
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
        if (broken++ < max_broken_retries) {
          logger()->warn("annals: {}: {} ({}); retrying on a new connection", what,
                         in_flight ? "connection lost" : "cannot connect", e.what());
          continue;
        }
      } else if (failure == Failure::kRetry && transient++ < 8) {
        logger()->debug("annals: {}: transient failure ({}); retrying", what, e.what());
        continue;
      }
      rethrow_translated(e, what, write && in_flight);
    }
  }
}

}  // namespace annals::postgres::detail
