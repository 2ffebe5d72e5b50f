// Internal to the annals libraries: one outage as a retrying loop sees it, so that the loop
// logs it once when it starts and once when it ends (not once per attempt: a five-minute
// outage retried every few seconds must not bury the log). Not part of the public API.
#pragma once

#include <chrono>
#include <optional>

namespace annals::detail {

/// Counts the failed attempts of the current outage and times it.
///
///   if (outage.fail()) log->warn("... unavailable; reconnecting");  // first failure only
///   ...
///   if (const auto ended = outage.end()) log->info("... back after {} ms", ended->duration);
///
/// Cost: a clock read per call. Thread safety: none (one per retrying thread).
class Outage {
 public:
  /// What an outage that ended lasted.
  struct Ended {
    /// From the first failure to the end.
    std::chrono::milliseconds duration;
    /// Attempts that failed during it (the one that succeeded is not counted).
    int failed_attempts;
  };

  /// Records a failed attempt. True when it starts an outage (the caller logs a warning then).
  bool fail() {
    if (failures_++ > 0) return false;
    started_ = std::chrono::steady_clock::now();
    return true;
  }

  /// True between the first failure and end().
  [[nodiscard]] bool active() const noexcept { return failures_ > 0; }

  /// Failed attempts in the current outage (0 when there is none).
  [[nodiscard]] int failures() const noexcept { return failures_; }

  /// Ends the current outage: what it lasted, or nothing when there was none.
  std::optional<Ended> end() {
    if (failures_ == 0) return std::nullopt;
    const Ended ended{.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - started_),
                      .failed_attempts = failures_};
    failures_ = 0;
    return ended;
  }

 private:
  int failures_ = 0;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace annals::detail
