// Private: the waits between attempts of a projection worker (failed events, an unavailable
// store): exponential with "equal jitter".
#pragma once

#include <chrono>
#include <random>

namespace annals::projections::detail {

/// Exponential backoff with "equal jitter": after `failures` failures, between half and all of
/// initial * 2^failures, capped at max.
/// Thread safety: none (one per worker thread).
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  /// The wait after `failures` failures in a row (0 before the second attempt).
  std::chrono::milliseconds after(int failures);

 private:
  const std::chrono::milliseconds initial_;
  const std::chrono::milliseconds max_;
  std::mt19937 rng_;
};

}  // namespace annals::projections::detail
