// What a projection worker shares with the runner's callers (see worker_status.hpp).
#include "worker_status.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace annals::projections::detail {

WorkerStatus::WorkerStatus(const std::string& name, std::shared_ptr<MetricsSink> metrics)
    : name_(name), metrics_(std::move(metrics)) {
  status_.name = name;
}

void WorkerStatus::count_ownership_change(std::string_view change) const noexcept {
  metrics_.add(CounterId::kProjectionOwnershipChanges, {.projection = name_, .change = change});
}

void WorkerStatus::report_lag(std::int64_t lag_events,
                              std::optional<double> lag_seconds) const noexcept {
  metrics_.set(GaugeId::kProjectionLagEvents, labels(), static_cast<double>(lag_events));
  if (lag_seconds) metrics_.set(GaugeId::kProjectionLagSeconds, labels(), *lag_seconds);
}

ProjectionStatus WorkerStatus::snapshot() const {
  std::lock_guard lock(mutex_);
  return status_;
}

ProjectionReport WorkerStatus::report() const {
  std::lock_guard lock(mutex_);
  return ProjectionReport{.state = to_string(status_.state), .last_error = status_.last_error};
}

bool WorkerStatus::wait_for(Position position, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] {
    return processed_ >= position || stopping_ || finished_ ||
           status_.state == ProjectionState::kFailed;
  });
  return processed_ >= position;
}

void WorkerStatus::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
}

bool WorkerStatus::is_stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

bool WorkerStatus::wait_until_stopping(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return cv_.wait_until(lock, deadline, [&] { return stopping_; });
}

void WorkerStatus::poke() {
  {
    std::lock_guard lock(mutex_);
    check_requests_now_ = true;
  }
  cv_.notify_all();
}

bool WorkerStatus::take_poke() {
  std::lock_guard lock(mutex_);
  return std::exchange(check_requests_now_, false);
}

void WorkerStatus::set_state(ProjectionState state) {
  {
    std::lock_guard lock(mutex_);
    if (status_.state == state || status_.state == ProjectionState::kFailed) return;
    status_.state = state;
  }
  cv_.notify_all();
}

void WorkerStatus::set_lease(std::optional<Lease> lease) {
  std::lock_guard lock(mutex_);
  status_.lease = std::move(lease);
}

void WorkerStatus::stand_by() {
  {
    std::lock_guard lock(mutex_);
    status_.lease.reset();
    if (status_.state != ProjectionState::kFailed) status_.state = ProjectionState::kStandby;
  }
  cv_.notify_all();
}

void WorkerStatus::set_head(Position head, double lag_seconds) {
  std::int64_t lag_events = 0;
  {
    std::lock_guard lock(mutex_);
    status_.head = head;
    status_.lag_events = std::max<std::int64_t>(0, head.sequence() - processed_.sequence());
    status_.lag_seconds = lag_seconds;
    lag_events = status_.lag_events;
  }
  report_lag(lag_events, lag_seconds);
}

void WorkerStatus::reset_position(Position position) {
  {
    std::lock_guard lock(mutex_);
    status_.position = position;
    processed_ = position;
  }
  cv_.notify_all();
}

void WorkerStatus::processed_through(Position position) {
  {
    std::lock_guard lock(mutex_);
    processed_ = std::max(processed_, position);
  }
  cv_.notify_all();
}

void WorkerStatus::committed(Position to, std::size_t applied) {
  {
    std::lock_guard lock(mutex_);
    status_.position = to;
    processed_ = std::max(processed_, to);
    status_.events_applied += applied;
    status_.lag_events = std::max<std::int64_t>(0, status_.head.sequence() - processed_.sequence());
    // Under the lock, so that whoever waited for this position sees the metrics of it (the
    // sink's calls are short and never call back).
    metrics_.add(CounterId::kProjectionEvents, labels(), applied);
    report_lag(status_.lag_events, std::nullopt);
  }
  cv_.notify_all();
}

void WorkerStatus::count_error(const std::string& error) {
  {
    std::lock_guard lock(mutex_);
    ++status_.errors;
    status_.last_error = error;
  }
  metrics_.add(CounterId::kProjectionErrors, labels());
}

void WorkerStatus::count_dead_letters(std::size_t count, const std::string& last_error) {
  {
    std::lock_guard lock(mutex_);
    status_.dead_letters += count;
    status_.last_error = last_error;
  }
  metrics_.add(CounterId::kProjectionDeadLetters, labels(), count);
}

void WorkerStatus::add_rate_sample(double events_per_second) {
  std::lock_guard lock(mutex_);
  // Exponential smoothing over windows of about a second.
  status_.events_per_second = 0.5 * status_.events_per_second + 0.5 * events_per_second;
}

void WorkerStatus::fail(const std::string& error) {
  {
    std::lock_guard lock(mutex_);
    status_.state = ProjectionState::kFailed;
    status_.last_error = error;
    status_.lease.reset();
  }
  cv_.notify_all();
}

void WorkerStatus::stop() {
  std::lock_guard lock(mutex_);
  if (status_.state != ProjectionState::kFailed) status_.state = ProjectionState::kStopped;
}

void WorkerStatus::finish() {
  {
    std::lock_guard lock(mutex_);
    status_.lease.reset();
    finished_ = true;
  }
  cv_.notify_all();
}

}  // namespace annals::projections::detail
