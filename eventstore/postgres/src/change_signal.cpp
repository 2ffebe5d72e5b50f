#include "change_signal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <utility>

#include "annals/eventstore/error.hpp"
#include "error_translation.hpp"
#include "libpq_connection.hpp"
#include "logger.hpp"
#include "read_horizon.hpp"
#include "sql.hpp"

namespace annals::postgres::detail {
namespace {

// Wakes a subscription on NOTIFY annals_events (sent by every append at commit; decision 6).
// It owns a dedicated LISTEN connection, used only from the subscription's thread. LISTEN is
// issued in the constructor, before the subscription's first read, so no notification that
// follows a read can be missed. If the connection breaks, waits fall back to the poll interval
// and the next wait reconnects.
class PostgresChangeSignal final : public ChangeSignal {
 public:
  PostgresChangeSignal(std::string connection_string, std::chrono::milliseconds warn_after)
      : connection_string_(std::move(connection_string)), warn_after_(warn_after) {
    if (::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
      throw InternalError("subscription: cannot create a wake-up pipe");
    }
    try {
      connect();
    } catch (const std::exception& e) {
      close_pipe();
      rethrow_translated(e, "subscribe", false);
    }
  }
  ~PostgresChangeSignal() override {
    connection_.reset();
    close_pipe();
  }

  std::uint64_t observe() override { return 0; }

  bool wait(std::uint64_t /*token*/, std::chrono::milliseconds timeout) override {
    if (!connection_) {
      try {
        connect();
        return true;  // notifications may have been lost while disconnected: read again now
      } catch (const std::exception& e) {
        logger()->warn("annals subscription: cannot reconnect the LISTEN connection: {}", e.what());
      }
    }
    pollfd fds[2] = {{pipe_[0], POLLIN, 0}, {connection_ ? connection_->socket() : -1, POLLIN, 0}};
    const auto ms = static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(
        timeout.count(), 0, std::numeric_limits<int>::max()));
    ::poll(fds, connection_ ? 2 : 1, ms);
    char drain[64];
    while (::read(pipe_[0], drain, sizeof drain) > 0) {
    }
    if (!connection_) return false;
    try {
      const bool notified = connection_->take_notifications() > 0;
      check_horizon();
      return notified;
    } catch (const std::exception& e) {
      logger()->warn("annals subscription: LISTEN connection lost ({}); reconnecting", e.what());
      connection_.reset();
      return true;
    }
  }

  void interrupt() override {
    const char byte = 1;
    [[maybe_unused]] const auto n = ::write(pipe_[1], &byte, 1);
  }

 private:
  // Warns when a long-running transaction holds back the global log's readers (decision 5).
  void check_horizon() {
    if (warn_after_.count() <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_horizon_check_ < std::chrono::seconds(10)) return;
    last_horizon_check_ = now;
    const auto horizon = query_read_horizon(*connection_);
    if (horizon.oldest && horizon.oldest->transaction_age > warn_after_) {
      const auto& b = *horizon.oldest;
      logger()->warn(
          "annals: readers of the global log are held back by transaction of pid {} (database "
          "\"{}\", {}, open for {} s): events committed after it are not delivered until it "
          "ends. Last statement: {}",
          b.pid, b.database, b.state, b.transaction_age.count() / 1000, b.query);
    }
  }

  void connect() {
    auto connection = std::make_unique<LibpqConnection>(connection_string_);
    connection->exec(sql::kListenStatement);
    connection_ = std::move(connection);
  }
  void close_pipe() noexcept {
    for (int& fd : pipe_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }

  std::string connection_string_;
  std::chrono::milliseconds warn_after_;
  std::chrono::steady_clock::time_point last_horizon_check_{};
  std::unique_ptr<LibpqConnection> connection_;
  int pipe_[2] = {-1, -1};
};

}  // namespace

std::unique_ptr<ChangeSignal> make_change_signal(std::string connection_string,
                                                 std::chrono::milliseconds warn_after) {
  return std::make_unique<PostgresChangeSignal>(std::move(connection_string), warn_after);
}

}  // namespace annals::postgres::detail
