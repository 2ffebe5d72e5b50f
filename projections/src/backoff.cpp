// Backoff between attempts (see backoff.hpp).
#include "backoff.hpp"

#include <algorithm>

namespace annals::projections::detail {

using std::chrono::milliseconds;

Backoff::Backoff(milliseconds initial, milliseconds max)
    : initial_(initial), max_(max), rng_(std::random_device{}()) {}

milliseconds Backoff::after(int failures) {
  auto wait = initial_;
  for (int i = 0; i < failures && wait < max_; ++i) wait *= 2;
  wait = std::min(wait, max_);
  if (wait.count() <= 1) return wait;
  std::uniform_int_distribution<milliseconds::rep> jitter(wait.count() / 2, wait.count());
  return milliseconds(jitter(rng_));
}

}  // namespace annals::projections::detail
