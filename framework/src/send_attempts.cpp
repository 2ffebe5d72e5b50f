// The command bus's retries: backoff with full jitter, retry logging, giving up.
#include "annals/framework/detail/send_attempts.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "annals/eventstore/detail/logger.hpp"

namespace annals::detail {
namespace {

template <typename... Args>
void log_at(spdlog::level::level_enum level, spdlog::format_string_t<Args...> format,
            Args&&... args) noexcept {
  try {
    if (auto log = logger()) log->log(level, format, std::forward<Args>(args)...);
  } catch (...) {  // NOLINT(bugprone-empty-catch): logging must not turn into a failure
  }
}

// Sleeps before retry `retry` (1 = the first retry) with full jitter.
void backoff(int retry, std::chrono::milliseconds base, std::chrono::milliseconds cap) {
  if (retry < 1 || base.count() <= 0 || cap.count() <= 0) return;
  // Full jitter (uniform in [0, min(cap, base * 2^(retry-1))]): writers that conflicted at
  // once spread out instead of colliding again in lockstep.
  const auto shift = std::min(retry - 1, 20);
  const auto ceiling_us =
      std::min<std::int64_t>(std::chrono::microseconds(cap).count(),
                             std::chrono::microseconds(base).count() * (std::int64_t{1} << shift));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> pick(0, ceiling_us);
  std::this_thread::sleep_for(std::chrono::microseconds(pick(rng)));
}

}  // namespace

bool SendAttempts::retry_after_conflict(const ConcurrencyError& conflict) {
  in_doubt_ = false;  // the store saw the ids and none were stored
  if (attempt_ >= schedule_.max_attempts) return false;
  // Conflicts are business as usual on a busy aggregate: debug, not warn. Giving up is not
  // logged: the caller gets the error (log or throw, never both).
  log_at(spdlog::level::debug,
         "annals: command on stream \"{}\" conflicted (expected {}, actual {}); attempt {} of {}, "
         "reloading and deciding again",
         conflict.stream(), conflict.expected(),
         conflict.actual() ? std::to_string(*conflict.actual()) : std::string("none"), attempt_,
         schedule_.max_attempts);
  wait_before_retry();
  return true;
}

bool SendAttempts::retry_after_unavailable(const StreamId& stream, const UnavailableError& error) {
  const bool unknown = dynamic_cast<const OutcomeUnknownError*>(&error) != nullptr;
  in_doubt_ = in_doubt_ || unknown;
  if (attempt_ >= schedule_.max_attempts) {
    if (in_doubt_ && !unknown) {
      throw OutcomeUnknownError("command on stream \"" + stream.value() +
                                "\": an earlier attempt may have been written; send the same "
                                "command id again to find out (last attempt: " +
                                std::string(error.what()) + ")");
    }
    return false;
  }
  log_at(spdlog::level::warn,
         "annals: command on stream \"{}\": store unavailable ({}); attempt {} of {}, sending the "
         "same events again",
         stream.value(), error.what(), attempt_, schedule_.max_attempts);
  wait_before_retry();
  return true;
}

void SendAttempts::wait_before_retry() {
  backoff(attempt_, schedule_.retry_backoff, schedule_.max_retry_backoff);
  ++attempt_;
}

}  // namespace annals::detail
