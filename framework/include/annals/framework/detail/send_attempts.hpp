// The write attempts of one command sent through the command bus: how many, how long to wait
// between them, and when to give up. Internal to annals::framework (CommandBus); not part of
// the public API.
#pragma once

#include <chrono>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"

namespace annals::detail {

/// CommandBusOptions' retry fields (see there).
struct RetrySchedule {
  /// Most write attempts, the first included; >= 1.
  int max_attempts = 1;
  std::chrono::milliseconds retry_backoff{0};
  std::chrono::milliseconds max_retry_backoff{0};
};

/// Counts the write attempts of one command. Conflicts are retried by deciding again on newer
/// events, an unavailable store by appending the same events again; before each retry it logs
/// and sleeps a random time with full jitter (`retry_backoff * 2^(retry-1)`, capped).
/// Thread safety: belongs to one send() call.
class SendAttempts {
 public:
  explicit SendAttempts(RetrySchedule schedule) noexcept : schedule_(schedule) {}

  /// After an append refused with `conflict`: false when no attempt is left (the caller
  /// rethrows); else logs at debug, sleeps and returns true.
  [[nodiscard]] bool retry_after_conflict(const ConcurrencyError& conflict);

  /// After an append to `stream` that failed with `error`: false when no attempt is left (the
  /// caller rethrows); else logs at warn, sleeps and returns true.
  /// Throws: OutcomeUnknownError instead of returning false when an earlier attempt's outcome
  /// was unknown and no later one got an authoritative answer: the command may be written, so
  /// giving up must not say "nothing written".
  [[nodiscard]] bool retry_after_unavailable(const StreamId& stream, const UnavailableError& error);

 private:
  // Sleeps before the next attempt and counts it.
  void wait_before_retry();

  RetrySchedule schedule_;
  int attempt_ = 1;
  // An attempt ended in OutcomeUnknownError and no later one got an authoritative answer.
  bool in_doubt_ = false;
};

}  // namespace annals::detail
