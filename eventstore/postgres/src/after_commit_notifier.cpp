#include "after_commit_notifier.hpp"

#include <sys/socket.h>

#include <exception>
#include <utility>

#include "logger.hpp"
#include "sql.hpp"

namespace annals::postgres::detail {

AfterCommitNotifier::AfterCommitNotifier(std::string connection_string, ReconnectBackoff backoff,
                                         CallBound bound)
    : connection_string_(std::move(connection_string)),
      bound_(std::move(bound)),
      backoff_(backoff.initial, backoff.max) {}

AfterCommitNotifier::~AfterCommitNotifier() {
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
    // A pending notification goes out in milliseconds on a healthy connection; one stuck
    // behind a server that stopped answering is cut (and a connection the thread opens later
    // is cut at once), so that destruction cannot hang on it.
    if (thread_.joinable() && !ended_.wait_for(lock, kStopGrace, [&] { return thread_ended_; })) {
      cut_ = true;
      if (in_flight_ >= 0) ::shutdown(in_flight_, SHUT_RDWR);
    }
  }
  if (thread_.joinable()) thread_.join();
}

void AfterCommitNotifier::notify() {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (!pending_) {
      pending_ = true;
      wake = true;
    }
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  if (wake) wake_.notify_one();
}

void AfterCommitNotifier::run() {
  std::unique_lock lock(mutex_);
  const auto end = [&] {
    thread_ended_ = true;
    ended_.notify_all();
  };
  auto last_sent = std::chrono::steady_clock::time_point{};
  for (;;) {
    wake_.wait(lock, [&] { return pending_ || stopping_; });
    if (!pending_) return end();  // stopping, nothing left to send
    wake_.wait_until(lock, last_sent + kMinInterval, [&] { return stopping_; });
    pending_ = false;
    lock.unlock();
    const bool sent = send();
    lock.lock();
    last_sent = std::chrono::steady_clock::now();
    if (sent) continue;
    // Still owed: try again after the backoff wait, unless the store is being destroyed (its
    // subscribers then fall back to their poll interval).
    pending_ = true;
    const auto wait = backoff_.after(outage_.failures() - 1);
    if (wake_.wait_for(lock, wait, [&] { return stopping_; })) return end();
  }
}

bool AfterCommitNotifier::send() noexcept {
  try {
    try {
      send_once();
    } catch (const std::exception&) {
      // A connection broken since the last notification (a server restart, an idle timeout):
      // one fresh connection is not an outage yet. (Not while stopping: the destructor may
      // have cut this one.)
      close_connection();
      if (stopping()) return false;
      send_once();
    }
  } catch (const std::exception& e) {
    close_connection();
    if (outage_.fail()) {
      log_warn(e.what());
    }
    return false;
  }
  set_in_flight(-1);
  if (const auto ended = outage_.end()) {
    log_recovered(ended->duration, ended->failed_attempts);
  }
  return true;
}

void AfterCommitNotifier::send_once() {
  if (!connection_) {
    // Bounded by the connection string's connect_timeout.
    connection_ = std::make_unique<LibpqConnection>(connection_string_);
    set_in_flight(connection_->socket());
    run_bounded(bound_, connection_->socket(), "after-commit notifier: session setup", [&] {
      connection_->exec(sql::kNotifierSession);
      connection_->prepare(sql::kNotifyName, sql::kNotify);
    });
  }
  set_in_flight(connection_->socket());
  run_bounded(bound_, connection_->socket(), "after-commit notifier: NOTIFY",
              [&] { return connection_->exec_prepared(sql::kNotifyName, {}); });
}

void AfterCommitNotifier::set_in_flight(int socket) noexcept {
  std::lock_guard lock(mutex_);
  in_flight_ = socket;
  if (cut_ && socket >= 0) ::shutdown(socket, SHUT_RDWR);  // opened after the grace ran out
}

void AfterCommitNotifier::close_connection() noexcept {
  set_in_flight(-1);  // before the socket closes: the destructor no longer touches it
  connection_.reset();
}

bool AfterCommitNotifier::stopping() {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void AfterCommitNotifier::log_warn(const char* error) noexcept {
  try {
    logger()->warn(
        "annals: cannot notify subscribers ({}); retrying with backoff, they poll meanwhile",
        error);
  } catch (...) {
  }
}

void AfterCommitNotifier::log_recovered(std::chrono::milliseconds duration,
                                        int failed_attempts) noexcept {
  try {
    logger()->info("annals: notifying subscribers again after {} ms ({} failed attempts)",
                   duration.count(), failed_attempts);
  } catch (...) {
  }
}

}  // namespace annals::postgres::detail
