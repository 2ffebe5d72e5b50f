// Internal: a thread-safe pool of libpqxx connections.
//
// Connections are opened lazily up to a maximum, prepared once (the `on_connect` hook), and
// lent out one thread at a time. A lease whose connection broke is discarded instead of
// returned, so the next acquire() opens a fresh one (ECOSYSTEM 3: pqxx 6.4 reconnects
// unreliably by itself, so we never reuse a broken connection).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pqxx/connection>

namespace annals::postgres::detail {

class ConnectionPool {
 public:
  using OnConnect = std::function<void(pqxx::connection&)>;

  ConnectionPool(std::string connection_string, std::size_t max_size, OnConnect on_connect);
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  ~ConnectionPool();

  /// A borrowed connection; returned to the pool on destruction unless discard()ed.
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<pqxx::connection> connection) noexcept;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    pqxx::connection& operator*() const noexcept { return *connection_; }
    pqxx::connection* operator->() const noexcept { return connection_.get(); }
    /// Drops the connection instead of returning it (it broke).
    void discard() noexcept;

   private:
    ConnectionPool* pool_;
    std::unique_ptr<pqxx::connection> connection_;
  };

  /// Borrows an idle connection, opens a new one when under the maximum, or waits.
  /// Throws: pqxx::broken_connection when a new connection cannot be opened.
  Lease acquire();

 private:
  void release(std::unique_ptr<pqxx::connection> connection);
  void forget() noexcept;

  std::string connection_string_;
  std::size_t max_size_;
  OnConnect on_connect_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::size_t open_ = 0;
};

}  // namespace annals::postgres::detail
