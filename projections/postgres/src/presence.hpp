// Internal: a PostgresProjectionStore's presence in the database, for session liveness
// (sql/0011_lease_owner_session.sql). One dedicated connection holds a session-level advisory
// lock on a random 64-bit key; leases this store takes or renews record the key, and other
// stores treat a lease whose key nobody holds any more as free. The server drops the lock when
// the session ends (the process died, the connection was cut), which is what lets a standby
// take over without waiting for the lease to expire.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include <pqxx/pqxx>

namespace annals::projections::detail {

/// The presence connection and its key.
/// Thread safety: every method from any thread (one mutex; key() may connect while holding it).
class Presence {
 public:
  explicit Presence(std::string connection_string);
  Presence(const Presence&) = delete;
  Presence& operator=(const Presence&) = delete;
  ~Presence();

  /// The key of this store's live presence lock. Connects and takes a lock on a new random key
  /// when there is none (not more than once per kRetryInterval after a failure). Empty when
  /// the connection cannot be made: leases then record no session, and only their expiry
  /// applies. Never throws.
  /// Cost: nothing while connected; otherwise one connection and one round trip.
  [[nodiscard]] std::optional<std::int64_t> key();

  /// The server no longer holds `key` (a lease statement found it free): closes that presence
  /// connection, so that the next key() opens a new one under a new key. A key that is not the
  /// current one is ignored. Never throws.
  void lost(std::int64_t key);

  /// How long after a failed attempt key() tries to connect again.
  static constexpr std::chrono::milliseconds kRetryInterval{1000};

 private:
  using Clock = std::chrono::steady_clock;

  [[nodiscard]] std::optional<std::int64_t> connect();
  [[nodiscard]] std::optional<std::int64_t> lock_new_key();

  const std::string connection_string_;
  std::mutex mutex_;
  std::unique_ptr<pqxx::connection> connection_;
  std::optional<std::int64_t> key_;
  Clock::time_point next_attempt_;
  std::mt19937_64 rng_;
  bool warned_ = false;  // one warning per outage, not per attempt
};

}  // namespace annals::projections::detail
