// Names of the store's enums, and wait_for_checkpoint(), which works on any ProjectionStore.
#include "annals/projections/projection_store.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>

#include "annals/eventstore/error.hpp"

namespace annals::projections {

void Batch::commit_layout(const LayoutChange& change) {
  static_cast<void>(change);
  throw InvalidArgumentError("this projection store cannot change partition layouts");
}

const char* to_string(DeadLetterState state) noexcept {
  switch (state) {
    case DeadLetterState::kParked:
      return "parked";
    case DeadLetterState::kRetryRequested:
      return "retry-requested";
    case DeadLetterState::kResolved:
      return "resolved";
    case DeadLetterState::kSkipped:
      return "skipped";
  }
  return "unknown";
}

DeadLetterState parse_dead_letter_state(const std::string& text) {
  for (const auto state : {DeadLetterState::kParked, DeadLetterState::kRetryRequested,
                           DeadLetterState::kResolved, DeadLetterState::kSkipped}) {
    if (text == to_string(state)) return state;
  }
  throw InvalidArgumentError("unknown dead-letter state '" + text +
                             "': expected parked, retry-requested, resolved or skipped");
}

const char* to_string(RebuildState state) noexcept {
  switch (state) {
    case RebuildState::kRequested:
      return "requested";
    case RebuildState::kRunning:
      return "running";
    case RebuildState::kDone:
      return "done";
    case RebuildState::kFailed:
      return "failed";
  }
  return "unknown";
}

bool wait_for_checkpoint(ProjectionStore& store, const std::string& projection, Position position,
                         std::chrono::milliseconds timeout) {
  // A reader in another process has no wake-up from the owner, so this polls the stored
  // checkpoint: 1 ms at first (a projection that is live usually gets there within a few
  // milliseconds), doubling up to 50 ms, never past the deadline.
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (store.checkpoint(projection) >= position) return true;
    const auto now = Clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace annals::projections
