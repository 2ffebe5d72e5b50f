#include "connection_pool.hpp"

#include <utility>

namespace annals::postgres::detail {

ConnectionPool::ConnectionPool(std::string connection_string, std::size_t max_size,
                               OnConnect on_connect)
    : connection_string_(std::move(connection_string)),
      max_size_(max_size == 0 ? 1 : max_size),
      on_connect_(std::move(on_connect)) {}

ConnectionPool::~ConnectionPool() = default;

ConnectionPool::Lease::Lease(ConnectionPool* pool,
                             std::unique_ptr<pqxx::connection> connection) noexcept
    : pool_(pool), connection_(std::move(connection)) {}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), connection_(std::move(other.connection_)) {}

ConnectionPool::Lease::~Lease() {
  if (pool_ == nullptr) return;
  if (connection_) {
    pool_->release(std::move(connection_));
  } else {
    pool_->forget();
  }
}

void ConnectionPool::Lease::discard() noexcept { connection_.reset(); }

ConnectionPool::Lease ConnectionPool::acquire() {
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
    auto connection = std::make_unique<pqxx::connection>(connection_string_);
    if (on_connect_) on_connect_(*connection);
    return Lease(this, std::move(connection));
  } catch (...) {
    forget();
    throw;
  }
}

void ConnectionPool::release(std::unique_ptr<pqxx::connection> connection) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
  }
  available_.notify_one();
}

void ConnectionPool::forget() noexcept {
  {
    std::lock_guard lock(mutex_);
    --open_;
  }
  available_.notify_one();
}

}  // namespace annals::postgres::detail
