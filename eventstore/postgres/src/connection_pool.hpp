// Internal: thread-safe pools of database connections that share one limit.
//
// Connections are opened lazily up to the limit, prepared once (the `on_connect` hook), and
// lent out one thread at a time. A lease whose connection broke is discarded instead of
// returned, so the next acquire() opens a fresh one (ECOSYSTEM 3: pqxx 6.4 reconnects
// unreliably by itself, so we never reuse a broken connection).
//
// The store keeps two kinds of connection: libpqxx ones for appends and small queries, and raw
// libpq ones for reads that stream their rows (libpqxx 6.4 offers neither single-row mode nor
// its PGconn). Both pools draw on one PoolBudget, so `pool_size` stays the most connections
// the store opens: when the budget is spent, a pool that needs a connection closes an idle
// one of the other pool, or waits for one to come back.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/connection>

namespace annals::postgres::detail {

class PoolBudget;

/// What a PoolBudget needs of each of its pools.
class BudgetedPool {
 public:
  BudgetedPool(const BudgetedPool&) = delete;
  BudgetedPool& operator=(const BudgetedPool&) = delete;
  virtual ~BudgetedPool() = default;

 protected:
  BudgetedPool() = default;

 private:
  friend class PoolBudget;
  /// Closes one idle connection and returns true, or returns false when none is idle. Called
  /// with the budget's mutex held.
  virtual bool close_one_idle_locked() noexcept = 0;
};

/// The most connections a set of pools may have open together.
class PoolBudget {
 public:
  explicit PoolBudget(std::size_t max_open) : max_open_(max_open == 0 ? 1 : max_open) {}

 private:
  template <typename>
  friend class ConnectionPool;

  /// Waits until `pool` may open one more connection and counts it as open, or returns false
  /// when `has_idle` (checked under the lock) says the pool has an idle one to lend instead.
  template <typename HasIdle>
  bool reserve(std::unique_lock<std::mutex>& lock, BudgetedPool* pool, HasIdle has_idle) {
    for (;;) {
      if (has_idle()) return false;
      if (open_ < max_open_) {
        ++open_;
        return true;
      }
      const bool closed = std::any_of(pools_.begin(), pools_.end(), [&](BudgetedPool* other) {
        return other != pool && other->close_one_idle_locked();
      });
      if (!closed) changed_.wait(lock);
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t max_open_;
  std::size_t open_ = 0;  // over all pools, including connections being opened
  std::vector<BudgetedPool*> pools_;
};

/// A pool of `Connection`s (constructible from a connection string), drawing on a budget.
template <typename Connection>
class ConnectionPool final : public BudgetedPool {
 public:
  using OnConnect = std::function<void(Connection&)>;

  /// A pool with a budget of its own.
  ConnectionPool(std::string connection_string, std::size_t max_size, OnConnect on_connect)
      : ConnectionPool(std::move(connection_string), std::make_shared<PoolBudget>(max_size),
                       std::move(on_connect)) {}

  /// A pool that shares `budget` with other pools.
  ConnectionPool(std::string connection_string, std::shared_ptr<PoolBudget> budget,
                 OnConnect on_connect)
      : connection_string_(std::move(connection_string)),
        budget_(std::move(budget)),
        on_connect_(std::move(on_connect)) {
    std::lock_guard lock(budget_->mutex_);
    budget_->pools_.push_back(this);
  }

  ~ConnectionPool() override {
    std::lock_guard lock(budget_->mutex_);
    auto& pools = budget_->pools_;
    pools.erase(std::remove(pools.begin(), pools.end(), this), pools.end());
    budget_->open_ -= idle_.size();
    idle_.clear();
    budget_->changed_.notify_all();
  }

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

  /// Borrows an idle connection, opens a new one when the budget allows (closing an idle
  /// connection of another pool if need be), or waits.
  /// Throws: whatever opening a connection or `on_connect` throws (pqxx::broken_connection
  /// when the server cannot be reached).
  Lease acquire() {
    {
      std::unique_lock lock(budget_->mutex_);
      if (!budget_->reserve(lock, this, [&] { return !idle_.empty(); })) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(connection));
      }
    }
    try {  // open outside the lock; the slot is reserved
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
      std::lock_guard lock(budget_->mutex_);
      idle_.push_back(std::move(connection));
    }
    budget_->changed_.notify_all();
  }

  void forget() noexcept {
    {
      std::lock_guard lock(budget_->mutex_);
      --budget_->open_;
    }
    budget_->changed_.notify_all();
  }

  bool close_one_idle_locked() noexcept override {
    if (idle_.empty()) return false;
    idle_.erase(idle_.begin());  // the least recently used
    --budget_->open_;
    return true;
  }

  std::string connection_string_;
  std::shared_ptr<PoolBudget> budget_;
  OnConnect on_connect_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by budget_->mutex_
};

}  // namespace annals::postgres::detail
