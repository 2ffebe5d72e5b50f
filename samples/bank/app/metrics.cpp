#include "metrics.hpp"

#include <cstdio>
#include <sstream>

namespace bank {
namespace {

constexpr std::array<std::string_view, 4> kCommandNames{"open", "deposit", "withdraw", "close"};
constexpr std::array<std::string_view, 4> kOutcomeNames{"ok", "rejected", "invalid", "failed"};

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

// Label values are projection names ([A-Za-z0-9_.-]) and fixed words: nothing to escape.
std::string label(std::string_view name, std::string_view value) {
  return std::string(name) + "=\"" + std::string(value) + "\"";
}

}  // namespace

void Metrics::record(CommandKind command, Outcome outcome,
                     std::chrono::nanoseconds latency) noexcept {
  const auto c = static_cast<std::size_t>(command);
  commands_[c][static_cast<std::size_t>(outcome)].fetch_add(1, std::memory_order_relaxed);
  auto& histogram = latency_[c];
  const double seconds = std::chrono::duration<double>(latency).count();
  std::size_t bucket = 0;
  while (bucket < kBuckets.size() && seconds > kBuckets[bucket]) ++bucket;
  histogram.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  histogram.count.fetch_add(1, std::memory_order_relaxed);
  histogram.sum_nanos.fetch_add(static_cast<std::uint64_t>(latency.count()),
                                std::memory_order_relaxed);
}

std::uint64_t Metrics::count(CommandKind command, Outcome outcome) const noexcept {
  return commands_[static_cast<std::size_t>(command)][static_cast<std::size_t>(outcome)].load(
      std::memory_order_relaxed);
}

void Metrics::count_rejected_request() noexcept {
  rejected_requests_.fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::render(const std::vector<ProjectionProgress>& projections) const {
  std::ostringstream out;
  out << "# HELP bank_commands_total Commands handled, by command and outcome.\n"
         "# TYPE bank_commands_total counter\n";
  for (std::size_t c = 0; c < kCommands; ++c) {
    for (std::size_t o = 0; o < kOutcomes; ++o) {
      out << "bank_commands_total{" << label("command", kCommandNames[c]) << ","
          << label("outcome", kOutcomeNames[o]) << "} "
          << commands_[c][o].load(std::memory_order_relaxed) << "\n";
    }
  }

  out << "# HELP bank_command_duration_seconds Time to handle a command, from parsed request to "
         "response.\n"
         "# TYPE bank_command_duration_seconds histogram\n";
  for (std::size_t c = 0; c < kCommands; ++c) {
    const auto& histogram = latency_[c];
    const std::string command = label("command", kCommandNames[c]);
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= kBuckets.size(); ++b) {
      cumulative += histogram.buckets[b].load(std::memory_order_relaxed);
      const std::string le = b < kBuckets.size() ? number(kBuckets[b]) : "+Inf";
      out << "bank_command_duration_seconds_bucket{" << command << "," << label("le", le) << "} "
          << cumulative << "\n";
    }
    const double sum =
        static_cast<double>(histogram.sum_nanos.load(std::memory_order_relaxed)) / 1e9;
    out << "bank_command_duration_seconds_sum{" << command << "} " << number(sum) << "\n";
    out << "bank_command_duration_seconds_count{" << command << "} "
        << histogram.count.load(std::memory_order_relaxed) << "\n";
  }

  out << "# HELP bank_http_requests_rejected_total Requests answered 503 at once because every "
         "worker was busy and the queue was full.\n"
         "# TYPE bank_http_requests_rejected_total counter\n"
         "bank_http_requests_rejected_total "
      << rejected_requests_.load(std::memory_order_relaxed) << "\n";

  out << "# HELP annals_projection_lag_events Events between the projection's checkpoint and the "
         "head of the log.\n"
         "# TYPE annals_projection_lag_events gauge\n";
  for (const auto& p : projections) {
    out << "annals_projection_lag_events{" << label("projection", p.name) << "} " << p.lag_events
        << "\n";
  }
  out << "# HELP annals_projection_lag_seconds Age of the oldest event the projection has not "
         "applied (0 when live).\n"
         "# TYPE annals_projection_lag_seconds gauge\n";
  for (const auto& p : projections) {
    out << "annals_projection_lag_seconds{" << label("projection", p.name) << "} "
        << number(p.lag_seconds) << "\n";
  }
  out << "# HELP annals_projection_events_applied_total Events applied by this process.\n"
         "# TYPE annals_projection_events_applied_total counter\n";
  for (const auto& p : projections) {
    out << "annals_projection_events_applied_total{" << label("projection", p.name) << "} "
        << p.events_applied << "\n";
  }
  out << "# HELP annals_projection_errors_total Failed attempts at applying events.\n"
         "# TYPE annals_projection_errors_total counter\n";
  for (const auto& p : projections) {
    out << "annals_projection_errors_total{" << label("projection", p.name) << "} " << p.errors
        << "\n";
  }
  out << "# HELP annals_projection_state The projection's state (1 for the current one).\n"
         "# TYPE annals_projection_state gauge\n";
  for (const auto& p : projections) {
    out << "annals_projection_state{" << label("projection", p.name) << ","
        << label("state", p.state) << "} 1\n";
  }
  return out.str();
}

}  // namespace bank
