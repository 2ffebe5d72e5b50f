// The bank service's metrics in the Prometheus text format (GET /metrics): commands by
// outcome, a command latency histogram, HTTP requests refused for room, and each projection's
// progress and lag.
//
// Thread safety: record() from any number of threads at once (atomic counters); render() too.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bank {

/// What became of a command.
enum class Outcome {
  kOk,        ///< events appended (or an idempotent re-send answered)
  kRejected,  ///< a business rule refused it (404, 409, 422)
  kInvalid,   ///< bad input (400)
  kFailed,    ///< a server fault (5xx)
};

/// The commands the service handles.
enum class CommandKind { kOpen, kDeposit, kWithdraw, kClose };

/// One projection's progress, as the runner (or, in another process, the store) reports it.
struct ProjectionProgress {
  std::string name;
  std::string state;
  std::string position;
  std::int64_t lag_events = 0;
  double lag_seconds = 0;
  std::uint64_t events_applied = 0;
  std::uint64_t errors = 0;
};

class Metrics {
 public:
  /// Upper bounds of the latency buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 12> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

  void record(CommandKind command, Outcome outcome, std::chrono::nanoseconds latency) noexcept;

  /// Counts one request answered 503 because every worker was busy and the queue was full.
  void count_rejected_request() noexcept;

  /// Commands of that kind and outcome so far.
  [[nodiscard]] std::uint64_t count(CommandKind command, Outcome outcome) const noexcept;

  /// The exposition text: bank_commands_total, bank_command_duration_seconds,
  /// bank_http_requests_rejected_total and, for each
  /// projection, annals_projection_* gauges.
  [[nodiscard]] std::string render(const std::vector<ProjectionProgress>& projections) const;

 private:
  static constexpr std::size_t kCommands = 4;
  static constexpr std::size_t kOutcomes = 4;
  struct Histogram {
    std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> buckets{};  // last: +Inf
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_nanos{0};
  };
  std::array<std::array<std::atomic<std::uint64_t>, kOutcomes>, kCommands> commands_{};
  std::array<Histogram, kCommands> latency_{};
  std::atomic<std::uint64_t> rejected_requests_{0};
};

}  // namespace bank
