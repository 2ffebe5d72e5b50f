#include "after_commit_notifier.hpp"

#include <exception>
#include <utility>

#include "logger.hpp"
#include "sql.hpp"

namespace annals::postgres::detail {

AfterCommitNotifier::AfterCommitNotifier(std::string connection_string)
    : connection_string_(std::move(connection_string)) {}

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
    send();
    lock.lock();
    last_sent = std::chrono::steady_clock::now();
  }
}

void AfterCommitNotifier::send() noexcept {
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (!connection_) {
        connection_ = std::make_unique<LibpqConnection>(connection_string_);
        connection_->exec(sql::kNotifierSession);
        connection_->prepare(sql::kNotifyName, sql::kNotify);
      }
      connection_->exec_prepared(sql::kNotifyName, {});
      return;
    } catch (const std::exception& e) {
      connection_.reset();
      if (attempt == 1) {
        logger()->warn("annals: cannot notify subscribers ({}); they will poll", e.what());
      }
    }
  }
}

}  // namespace annals::postgres::detail
