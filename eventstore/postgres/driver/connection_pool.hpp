// Internal: a thread-safe pool of database connections.
//
// Connections are opened lazily up to a maximum, prepared once (the `on_connect` hook), and
// lent out one thread at a time. A lease whose connection broke is discarded instead of
// returned, so the next acquire() opens a fresh one (ECOSYSTEM 3: pqxx 6.4 reconnects
// unreliably by itself, so we never reuse a broken connection). `Connection` is constructed
// from the connection string: the event store pools detail::LibpqConnection, the snapshot
// store pqxx::connection, the projection store its sessions; run_pooled (pooled_call.hpp) is
// the one retry loop over it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace annals::postgres::detail {

template <typename Connection>
class ConnectionPool {
 public:
  using OnConnect = std::function<void(Connection&)>;

  ConnectionPool(std::string connection_string, std::size_t max_size,
                 OnConnect on_connect = nullptr)
      : connection_string_(std::move(connection_string)),
        max_size_(max_size == 0 ? 1 : max_size),
        on_connect_(std::move(on_connect)) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  ~ConnectionPool() = default;

  /// A borrowed connection; returned to the pool on destruction unless discard()ed.
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection) noexcept
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), connection_(std::move(other.connection_)) {}
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
    /// Drops the connection instead of returning it (it broke).
    void discard() noexcept { connection_.reset(); }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  /// Borrows an idle connection, opens a new one when under the maximum, or waits.
  /// Throws: whatever opening a connection or `on_connect` throws (a broken DbError, or
  /// pqxx::broken_connection for libpqxx connections, when the server cannot be reached); the
  /// slot is then free again.
  Lease acquire() {
    {
      std::unique_lock lock(mutex_);
      available_.wait(lock, [&] { return !idle_.empty() || open_ < max_size_; });
      if (!idle_.empty()) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(connection));
      }
      ++open_;  // reserve a slot; open outside the lock
    }
    try {
      auto connection = std::make_unique<Connection>(connection_string_);
      if (on_connect_) on_connect_(*connection);
      return Lease(this, std::move(connection));
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
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;
};

}  // namespace annals::postgres::detail
