// The per-call deadline thread (watchdog.hpp).
#include "watchdog.hpp"

#include <sys/socket.h>

#include <algorithm>

namespace annals::postgres::detail {

Watchdog::Watchdog(std::chrono::milliseconds shortest_timeout)
    : idle_wait_(std::max(shortest_timeout, std::chrono::milliseconds(1))),
      thread_([this] { run(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

Watchdog::Call::Call(Watchdog* watchdog, int socket, Clock::time_point deadline)
    : watchdog_(watchdog), socket_(socket), deadline_(deadline) {
  if (watchdog_ != nullptr && socket_ >= 0) watchdog_->link(*this);
}

bool Watchdog::Call::disarm() noexcept {
  if (armed_) watchdog_->unlink(*this);
  return fired_;
}

void Watchdog::link(Call& call) {
  bool sooner = false;
  {
    std::lock_guard lock(mutex_);
    call.next_ = head_;
    if (head_ != nullptr) head_->previous_ = &call;
    head_ = &call;
    call.armed_ = true;
    sooner = call.deadline_ < next_wake_;
  }
  if (sooner) wake_.notify_one();
}

void Watchdog::unlink(Call& call) noexcept {
  // Under the mutex: once this returns, the thread no longer touches the call or its socket.
  std::lock_guard lock(mutex_);
  if (call.previous_ != nullptr) {
    call.previous_->next_ = call.next_;
  } else {
    head_ = call.next_;
  }
  if (call.next_ != nullptr) call.next_->previous_ = call.previous_;
  call.previous_ = call.next_ = nullptr;
  call.armed_ = false;
}

void Watchdog::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto now = Clock::now();
    auto next = now + idle_wait_;
    for (Call* call = head_; call != nullptr; call = call->next_) {
      if (call->fired_) continue;
      if (call->deadline_ <= now) {
        call->fired_ = true;
        // Wakes the blocked call: its next read sees end of file, its next write EPIPE.
        ::shutdown(call->socket_, SHUT_RDWR);
      } else {
        next = std::min(next, call->deadline_);
      }
    }
    next_wake_ = next;
    wake_.wait_until(lock, next);
  }
}

}  // namespace annals::postgres::detail
