// A store's presence connection (see presence.hpp).
//
// A fresh key for every connection: a key then names exactly one session, so a lease recorded
// under a session that ended can never look alive again because a later session of the same
// process happened to reuse it. A key another session holds (a collision of two random 64-bit
// keys, or some application's own advisory lock) is not taken: another key is drawn.
#include "presence.hpp"

#include <exception>
#include <utility>

#include "annals/eventstore/detail/logger.hpp"
#include "sql.hpp"

namespace annals::projections::detail {

using annals::detail::logger;

Presence::Presence(std::string connection_string)
    : connection_string_(std::move(connection_string)), rng_(std::random_device{}()) {}

Presence::~Presence() = default;  // closing the connection releases the lock

std::optional<std::int64_t> Presence::key() {
  std::lock_guard lock(mutex_);
  if (key_) return key_;
  if (Clock::now() < next_attempt_) return std::nullopt;
  return connect();
}

void Presence::lost(std::int64_t key) {
  std::lock_guard lock(mutex_);
  if (key_ != key) return;
  logger()->warn(
      "annals: projection store: presence session lost (lock key {}); reconnecting, leases rely "
      "on their expiry meanwhile",
      key);
  key_.reset();
  try {
    connection_.reset();
  } catch (...) {  // closing a broken connection cannot fail in a way that matters here
  }
  next_attempt_ = Clock::time_point{};
}

std::optional<std::int64_t> Presence::connect() {
  try {
    connection_.reset();
    connection_ = std::make_unique<pqxx::connection>(connection_string_);
    key_ = lock_new_key();
  } catch (const std::exception& e) {
    connection_.reset();
    key_.reset();
    if (!warned_) {
      logger()->warn(
          "annals: projection store: cannot open the presence session ({}); leases rely on "
          "their expiry until it is back",
          e.what());
      warned_ = true;
    }
  }
  if (key_) {
    warned_ = false;
  } else {
    next_attempt_ = Clock::now() + kRetryInterval;
  }
  return key_;
}

std::optional<std::int64_t> Presence::lock_new_key() {
  for (int attempt = 0; attempt < 4; ++attempt) {
    const auto candidate = static_cast<std::int64_t>(rng_());
    pqxx::nontransaction tx(*connection_);
    if (tx.exec_params(sql::kPresenceLock, candidate)[0][0].as<bool>()) return candidate;
  }
  return std::nullopt;
}

}  // namespace annals::projections::detail
