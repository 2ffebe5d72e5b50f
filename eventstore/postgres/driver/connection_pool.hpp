// Internal: a thread-safe pool of database connections.
//
// Connections are opened lazily up to a maximum, prepared once (the `on_connect` hook), and
// lent out one thread at a time. A lease whose connection broke is discarded instead of
// returned, so the next acquire() opens a fresh one (ECOSYSTEM 3: pqxx 6.4 reconnects
// unreliably by itself, so we never reuse a broken connection). `Connection` is constructed
// from the connection string: the event store pools detail::LibpqConnection, the snapshot
// store pqxx::connection, the projection store its sessions; run_pooled (pooled_call.hpp) is
// the one retry loop over it. An acquire that finds every connection lent out waits at most the
// pool's acquire timeout, then fails with UnavailableError.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"

namespace annals::postgres::detail {

template <typename Connection>
class ConnectionPool {
 public:
  using OnConnect = std::function<void(Connection&)>;

  /// `acquire_timeout`: the longest acquire() waits for a connection to come back when all
  /// `max_size` are lent out; zero waits without limit.
  ConnectionPool(std::string connection_string, std::size_t max_size,
                 OnConnect on_connect = nullptr,
                 std::chrono::milliseconds acquire_timeout = std::chrono::milliseconds(0))
      : connection_string_(std::move(connection_string)),
        max_size_(max_size == 0 ? 1 : max_size),
        on_connect_(std::move(on_connect)),
        acquire_timeout_(acquire_timeout) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  ~ConnectionPool() = default;

  /// A borrowed connection; returned to the pool on destruction unless discard()ed.
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection, bool fresh) noexcept
        : pool_(pool), connection_(std::move(connection)), fresh_(fresh) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          connection_(std::move(other.connection_)),
          fresh_(std::exchange(other.fresh_, false)) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (pool_ == nullptr) return;
      if (connection_) {
        pool_->release(std::move(connection_));
      } else {
        pool_->forget();
      }
    }

    Connection& operator*() const noexcept { return *connection_; }
    Connection* operator->() const noexcept { return connection_.get(); }
    /// False once the lease was moved from or discard()ed.
    [[nodiscard]] bool has_connection() const noexcept { return connection_ != nullptr; }
    /// Drops the connection instead of returning it (it broke).
    void discard() noexcept { connection_.reset(); }

    /// Runs the pool's `on_connect` hook on a connection acquire_unprepared() just opened;
    /// does nothing otherwise. Throws: what the hook throws; the connection is then discarded.
    void prepare() {
      if (!fresh_) return;
      fresh_ = false;
      if (!pool_->on_connect_) return;
      try {
        pool_->on_connect_(*connection_);
      } catch (...) {
        discard();
        throw;
      }
    }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
    bool fresh_ = false;
  };

  /// Borrows an idle connection, opens a new one when under the maximum, or waits (at most
  /// the acquire timeout).
  /// Throws: UnavailableError when no connection came back within the acquire timeout;
  /// whatever opening a connection or `on_connect` throws (a broken DbError, or
  /// pqxx::broken_connection for libpqxx connections, when the server cannot be reached); the
  /// slot is then free again.
  Lease acquire() {
    auto lease = acquire_unprepared();
    lease.prepare();
    return lease;
  }

  /// acquire(), except that a newly opened connection is not yet prepared: the caller calls
  /// Lease::prepare() (run_pooled does, under the call's deadline). Throws as acquire().
  Lease acquire_unprepared() {
    {
      std::unique_lock lock(mutex_);
      const auto ready = [&] { return !idle_.empty() || open_ < max_size_; };
      if (acquire_timeout_.count() <= 0) {
        available_.wait(lock, ready);
      } else if (!available_.wait_for(lock, acquire_timeout_, ready)) {
        throw UnavailableError("no database connection came back to the pool within " +
                               std::to_string(acquire_timeout_.count()) + " ms (all " +
                               std::to_string(max_size_) + " are in use)");
      }
      if (!idle_.empty()) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(connection), false);
      }
      ++open_;  // reserve a slot; open outside the lock
    }
    try {
      return Lease(this, std::make_unique<Connection>(connection_string_), true);
    } catch (...) {
      forget();
      throw;
    }
  }

 private:
  void release(std::unique_ptr<Connection> connection) {
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(std::move(connection));
    }
    available_.notify_one();
  }

  void forget() noexcept {
    {
      std::lock_guard lock(mutex_);
      --open_;
    }
    available_.notify_one();
  }

  std::string connection_string_;
  std::size_t max_size_;
  OnConnect on_connect_;
  std::chrono::milliseconds acquire_timeout_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;
};

}  // namespace annals::postgres::detail
