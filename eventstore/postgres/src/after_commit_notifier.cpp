#include "after_commit_notifier.hpp"

#include <exception>
#include <utility>

#include "logger.hpp"
#include "sql.hpp"

namespace annals::postgres::detail {

AfterCommitNotifier::AfterCommitNotifier(std::string connection_string, ReconnectBackoff backoff)
    : connection_string_(std::move(connection_string)), backoff_(backoff.initial, backoff.max) {}

AfterCommitNotifier::~AfterCommitNotifier() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
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
  auto last_sent = std::chrono::steady_clock::time_point{};
  for (;;) {
    wake_.wait(lock, [&] { return pending_ || stopping_; });
    if (!pending_) return;  // stopping, nothing left to send
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
    if (wake_.wait_for(lock, wait, [&] { return stopping_; })) return;
  }
}

bool AfterCommitNotifier::send() noexcept {
  try {
    try {
      send_once();
    } catch (const std::exception&) {
      // A connection broken since the last notification (a server restart, an idle timeout):
      // one fresh connection is not an outage yet.
      connection_.reset();
      send_once();
    }
  } catch (const std::exception& e) {
    connection_.reset();
    if (outage_.fail()) {
      log_warn(e.what());
    }
    return false;
  }
  if (const auto ended = outage_.end()) {
    log_recovered(ended->duration, ended->failed_attempts);
  }
  return true;
}

void AfterCommitNotifier::send_once() {
  if (!connection_) {
    auto connection = std::make_unique<LibpqConnection>(connection_string_);
    connection->exec(sql::kNotifierSession);
    connection->prepare(sql::kNotifyName, sql::kNotify);
    connection_ = std::move(connection);
  }
  connection_->exec_prepared(sql::kNotifyName, {});
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
