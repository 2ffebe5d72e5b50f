#include "change_signal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <exception>
#include <limits>
#include <string>
#include <utility>

#include "annals/eventstore/detail/backoff.hpp"
#include "annals/eventstore/detail/outage.hpp"
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
// follows a read can be missed.
//
// No call on the connection waits forever for a server that stopped answering: LISTEN and the
// horizon query run under the store's call bound (watchdog.hpp), connecting under the connect
// timeout; a call cut short is a lost connection like any other.
//
// If the connection breaks, wait() reconnects with capped exponential backoff and jitter, for
// as long as it takes, without ever busy-looping: between attempts it sleeps on the wake-up
// pipe, and it returns false at its timeout, so the reader falls back to its poll interval.
// The wait that re-establishes LISTEN returns true: notifications sent while it was down were
// lost, so the reader must read again (it does before its next wait), and every append after
// that read is notified on the new connection. An outage is logged twice: a warning when the
// connection is lost, an info line with its length once LISTEN is back.
class PostgresChangeSignal final : public ChangeSignal {
 public:
  PostgresChangeSignal(std::string connection_string, std::chrono::milliseconds warn_after,
                       ReconnectBackoff backoff, CallBound bound, StandbyWait standby)
      : connection_string_(std::move(connection_string)),
        warn_after_(warn_after),
        bound_(std::move(bound)),
        standby_(std::move(standby)),
        backoff_(backoff.initial, backoff.max) {
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
    const auto deadline = Clock::now() + timeout;
    if (!connection_) return reconnect_until(deadline);
    pollfd fds[2] = {{pipe_[0], POLLIN, 0}, {connection_->socket(), POLLIN, 0}};
    ::poll(fds, 2, poll_timeout(timeout));
    drain_pipe();
    try {
      bool notified = connection_->take_notifications() > 0;
      if (check_horizon()) {
        // A NOTIFY that arrived during the horizon query was read into libpq's queue with its
        // result: the socket will not show it to the next poll, so take it now.
        notified = connection_->take_notifications() > 0 || notified;
      }
      if (notified && !standby_.connection_string.empty()) await_standby();
      return notified;
    } catch (const std::exception& e) {
      lost(e);
      return true;  // whatever was signalled before the loss may not have been seen
    }
  }

  void interrupt() override {
    const char byte = 1;
    [[maybe_unused]] const auto n = ::write(pipe_[1], &byte, 1);
  }

 private:
  // Warns when a long-running transaction holds back the global log's readers (decision 5).
  // True when it queried the server.
  bool check_horizon() {
    if (warn_after_.count() <= 0) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_horizon_check_ < std::chrono::seconds(10)) return false;
    last_horizon_check_ = now;
    const auto horizon = run_bounded(bound_, connection_->socket(), "read horizon",
                                     [&] { return query_read_horizon(*connection_); });
    if (horizon.oldest && horizon.oldest->transaction_age > warn_after_) {
      const auto& b = *horizon.oldest;
      logger()->warn(
          "annals: readers of the global log are held back by transaction of pid {} (database "
          "\"{}\", {}, open for {} s): events committed after it are not delivered until it "
          "ends. Last statement: {}",
          b.pid, b.database, b.state, b.transaction_age.count() / 1000, b.query);
    }
    return true;
  }

  using Clock = std::chrono::steady_clock;

  // Waits until the standby has replayed the primary's WAL as flushed now, which includes the
  // commits just notified (an append's commit is flushed before its notification is sent).
  // Polls the standby, first at once and then backing off to every 10 ms, for at most
  // standby_.timeout; interrupt() ends the wait early. A standby that cannot be reached
  // or answered ends it too (logged at debug): the reader then reads what the standby has, and
  // its reads report the failure. Throws what the primary's query threw (a lost LISTEN
  // connection, handled by wait()).
  void await_standby() {
    const auto rows = run_bounded(bound_, connection_->socket(), "WAL position",
                                  [&] { return connection_->exec(sql::kFlushLsn); });
    if (rows.empty()) return;
    const std::string lsn(rows.text(0, 0));
    const std::array<const char*, 1> values{lsn.c_str()};
    const auto deadline = Clock::now() + standby_.timeout;
    auto pause = std::chrono::microseconds(50);
    try {
      if (!standby_connection_) {
        auto connection = std::make_unique<LibpqConnection>(standby_.connection_string);
        // Unnamed: nothing kept in the session, whatever sits between us and the standby.
        connection->use_unnamed_statements();
        connection->prepare(sql::kReplayedName, sql::kReplayed);
        standby_connection_ = std::move(connection);
      }
      for (;;) {
        const auto replayed = run_bounded(
            bound_, standby_connection_->socket(), "standby replay",
            [&] { return standby_connection_->exec_prepared(sql::kReplayedName, values); });
        if (!replayed.empty() && replayed.text(0, 0) == "t") return;
        const auto now = Clock::now();
        if (now >= deadline) {
          logger()->debug("annals: the standby has not replayed {} after {} ms; reading anyway",
                          lsn, standby_.timeout.count());
          return;
        }
        pollfd fd{pipe_[0], POLLIN, 0};
        // ppoll: the first pauses are well below poll()'s millisecond resolution.
        const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::min<Clock::duration>(pause, deadline - now));
        const timespec pause_spec{.tv_sec = static_cast<time_t>(wait.count() / 1'000'000'000),
                                  .tv_nsec = static_cast<long>(wait.count() % 1'000'000'000)};
        if (::ppoll(&fd, 1, &pause_spec, nullptr) > 0) {
          // Interrupted: leave the byte for the next wait(), which must return at once.
          return;
        }
        pause = std::min(pause * 2, std::chrono::microseconds(10'000));
      }
    } catch (const std::exception& e) {
      standby_connection_.reset();
      logger()->debug("annals: waiting for the standby's replay failed ({}); reading anyway",
                      e.what());
    }
  }

  static int poll_timeout(Clock::duration timeout) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
    return static_cast<int>(
        std::clamp<std::chrono::milliseconds::rep>(ms, 0, std::numeric_limits<int>::max()));
  }

  void drain_pipe() {
    char drain[64];
    while (::read(pipe_[0], drain, sizeof drain) > 0) {
    }
  }

  // The LISTEN connection broke: the outage starts; the first reconnect is tried at once.
  void lost(const std::exception& error) {
    connection_.reset();
    if (outage_.fail()) {
      logger()->warn(
          "annals: LISTEN connection lost ({}); reconnecting with backoff, polling "
          "meanwhile",
          error.what());
    }
    next_attempt_ = Clock::now();
  }

  // Without a connection: attempts to reconnect when the backoff allows, sleeping on the pipe
  // in between. True once LISTEN is back; false at `deadline` or on interrupt().
  bool reconnect_until(Clock::time_point deadline) {
    for (;;) {
      if (Clock::now() >= next_attempt_ && try_reconnect()) return true;
      const auto now = Clock::now();
      if (now >= deadline) return false;
      pollfd fd{pipe_[0], POLLIN, 0};
      const int ready = ::poll(&fd, 1, poll_timeout(std::min(deadline, next_attempt_) - now));
      if (ready > 0) {
        drain_pipe();
        return false;  // interrupted
      }
    }
  }

  bool try_reconnect() {
    try {
      connect();
    } catch (const std::exception& e) {
      if (outage_.fail()) {
        logger()->warn(
            "annals: cannot open the LISTEN connection ({}); retrying with backoff, "
            "polling meanwhile",
            e.what());
      }
      next_attempt_ = Clock::now() + backoff_.after(outage_.failures() - 1);
      return false;
    }
    if (const auto ended = outage_.end()) {
      // The outage's first failure is the loss itself, not a reconnect attempt.
      logger()->info(
          "annals: LISTEN connection re-established after {} ms ({} failed reconnect attempts)",
          ended->duration.count(), ended->failed_attempts - 1);
    }
    return true;
  }

  // Opening the connection is bounded by its connect_timeout, LISTEN by the call bound.
  void connect() {
    auto connection = std::make_unique<LibpqConnection>(connection_string_);
    run_bounded(bound_, connection->socket(), "LISTEN",
                [&] { return connection->exec(sql::kListenStatement); });
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
  CallBound bound_;
  StandbyWait standby_;
  std::unique_ptr<LibpqConnection> standby_connection_;  // opened by the first await_standby()
  std::chrono::steady_clock::time_point last_horizon_check_{};
  std::unique_ptr<LibpqConnection> connection_;
  int pipe_[2] = {-1, -1};
  annals::detail::Backoff backoff_;
  annals::detail::Outage outage_;
  Clock::time_point next_attempt_{};
};

}  // namespace

std::unique_ptr<ChangeSignal> make_change_signal(std::string connection_string,
                                                 std::chrono::milliseconds warn_after,
                                                 ReconnectBackoff backoff, CallBound bound,
                                                 StandbyWait standby) {
  return std::make_unique<PostgresChangeSignal>(std::move(connection_string), warn_after, backoff,
                                                std::move(bound), std::move(standby));
}

}  // namespace annals::postgres::detail
