// Internal to the annals libraries: the waits between attempts of a loop that retries after a
// failure (a subscription or a LISTEN connection whose server went away, a projection worker).
// Capped exponential backoff with "equal jitter": many clients that lost the same server do
// not come back in lock step, and none waits longer than the cap. Not part of the public API.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace annals::detail {

/// Capped exponential backoff with "equal jitter": after `failures` failures in a row the wait
/// is drawn uniformly from [c / 2, c], where c = min(initial * 2^failures, max). Waits of a
/// millisecond or less have no jitter.
///
/// The random source is seeded by the constructor, so that tests can fix the sequence.
/// Cost: O(log(max / initial)) per wait; no allocation.
/// Thread safety: none (one per retrying thread).
class Backoff {
 public:
  /// `initial` and `max` must be >= 0 (callers validate their options). `seed` fixes the
  /// jitter; by default it comes from std::random_device.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
          std::uint64_t seed = std::random_device{}())
      : initial_(initial), max_(max), rng_(seed) {}

  /// The ceiling of the wait after `failures` failures: min(initial * 2^failures, max).
  [[nodiscard]] static std::chrono::milliseconds ceiling(std::chrono::milliseconds initial,
                                                         std::chrono::milliseconds max,
                                                         int failures) noexcept {
    auto wait = initial;
    // Doubling stops at the cap, so it cannot overflow.
    for (int i = 0; i < failures && wait < max; ++i) wait *= 2;
    return std::min(wait, max);
  }

  /// The wait after `failures` failures in a row (0 before the second attempt).
  [[nodiscard]] std::chrono::milliseconds after(int failures) {
    const auto wait = ceiling(initial_, max_, failures);
    if (wait.count() <= 1) return wait;
    std::uniform_int_distribution<std::chrono::milliseconds::rep> jitter(wait.count() / 2,
                                                                         wait.count());
    return std::chrono::milliseconds(jitter(rng_));
  }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::mt19937_64 rng_;
};

}  // namespace annals::detail
