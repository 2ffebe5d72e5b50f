// The non-template half of the command bus: backoff with jitter, retry logging, routing errors.
#include "annals/framework/command_bus.hpp"

#include <algorithm>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>
#include <boost/core/demangle.hpp>

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

}  // namespace

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

// Conflicts are business as usual on a busy aggregate: debug, not warn. Giving up is not
// logged: the caller gets the error (log or throw, never both).
void log_conflict_retry(const ConcurrencyError& error, int attempt, int max_attempts) noexcept {
  log_at(spdlog::level::debug,
         "annals: command on stream \"{}\" conflicted (expected {}, actual {}); attempt {} of {}, "
         "reloading and deciding again",
         error.stream(), error.expected(),
         error.actual() ? std::to_string(*error.actual()) : std::string("none"), attempt,
         max_attempts);
}

void log_unavailable_retry(const StreamId& stream, const UnavailableError& error, int attempt,
                           int max_attempts) noexcept {
  log_at(spdlog::level::warn,
         "annals: command on stream \"{}\": store unavailable ({}); attempt {} of {}, sending the "
         "same events again",
         stream.value(), error.what(), attempt, max_attempts);
}

void throw_outcome_unknown(const StreamId& stream, const UnavailableError& last) {
  throw OutcomeUnknownError("command on stream \"" + stream.value() +
                            "\": an earlier attempt may have been written; send the same "
                            "command id again to find out (last attempt: " +
                            std::string(last.what()) + ")");
}

void throw_no_handler(const std::type_info& command) {
  throw NotFoundError("command bus: no handler for command type " +
                      boost::core::demangle(command.name()) +
                      " (register one with bus.handle<Decider>(&Command::id))");
}

void throw_duplicate_handler(const std::type_info& command) {
  throw InvalidArgumentError("command bus: command type " + boost::core::demangle(command.name()) +
                             " already has a handler");
}
}  // namespace annals::detail
