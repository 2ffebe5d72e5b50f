// A projection worker's reports to the store (see status_reporter.hpp).
#include "status_reporter.hpp"

#include <chrono>
#include <utility>

namespace annals::projections::detail {
namespace {

/// Reports that only update the applied count are sent at most this often.
constexpr std::chrono::milliseconds kReportInterval{1000};

}  // namespace

StatusReporter::StatusReporter(ProjectionStore& store, std::string name, const LeaseKeeper& lease,
                               const WorkerStatus& status)
    : store_(store), name_(std::move(name)), lease_(lease), status_(status) {}

void StatusReporter::count_from_record() {
  applied_base_ = 0;
  for (const auto& record : store_.list()) {
    if (record.name == name_) applied_base_ = record.events_applied;
  }
  applied_since_acquire_ = 0;
}

void StatusReporter::count_from_zero() {
  applied_base_ = 0;
  applied_since_acquire_ = 0;
}

void StatusReporter::count_applied(std::size_t applied) {
  applied_since_acquire_ += static_cast<std::int64_t>(applied);
}

std::int64_t StatusReporter::events_applied() const {
  return applied_base_ + applied_since_acquire_;
}

void StatusReporter::report(bool force) {
  if (!lease_.held()) return;
  ProjectionReport now = status_.report();
  now.events_applied = events_applied();
  const bool changed = !last_report_ || now.state != last_report_->state ||
                       now.last_error != last_report_->last_error;
  const bool counted = last_report_ && now.events_applied != last_report_->events_applied &&
                       Clock::now() >= last_report_at_ + kReportInterval;
  if (!force && !changed && !counted) return;
  store_.report(lease_.lease(), now);
  last_report_ = now;
  last_report_at_ = Clock::now();
}

void StatusReporter::report_failed(const std::string& error) {
  store_.report(lease_.lease(), ProjectionReport{.state = to_string(ProjectionState::kFailed),
                                                 .last_error = error,
                                                 .events_applied = events_applied()});
}

}  // namespace annals::projections::detail
