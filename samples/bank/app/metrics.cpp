#include "metrics.hpp"

#include <sstream>
#include <string_view>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "annals/prometheus/prometheus_sink.hpp"

namespace bank {
namespace {

constexpr std::array<std::string_view, 5> kCommandNames{"open", "deposit", "withdraw", "close",
                                                        "delete"};
constexpr std::array<std::string_view, 4> kOutcomeNames{"ok", "rejected", "invalid", "failed"};
// annals::projections::to_string(ProjectionState) of every state.
constexpr std::array<std::string_view, 8> kStates{"starting", "standby",    "catching-up",
                                                  "live",     "rebuilding", "reconnecting",
                                                  "stopped",  "failed"};

// Snapshots the store ignored on load because they no longer match the events: counters that
// the snapshot store keeps, exposed as they are at the scrape.
prometheus::MetricFamily snapshot_family(const annals::SnapshotStoreStats& stats) {
  prometheus::MetricFamily family{
      .name = "annals_snapshots_ignored_total",
      .help = "Snapshot loads that found a snapshot not matching the events, by reason.",
      .type = prometheus::MetricType::Counter,
      .metric = {}};
  const auto add = [&](annals::SnapshotIgnored reason, std::uint64_t count) {
    prometheus::ClientMetric metric;
    metric.label.push_back({.name = "reason", .value = annals::to_string(reason)});
    metric.counter.value = static_cast<double>(count);
    family.metric.push_back(std::move(metric));
  };
  add(annals::SnapshotIgnored::kUnbound, stats.ignored_unbound);
  add(annals::SnapshotIgnored::kHistoryDiffers, stats.ignored_history_differs);
  add(annals::SnapshotIgnored::kStateEdited, stats.ignored_state_edited);
  return family;
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      annals_sink_(annals::prometheus::make_prometheus_sink(registry_)) {
  auto& commands = prometheus::BuildCounter()
                       .Name("bank_commands_total")
                       .Help("Commands handled, by command and outcome.")
                       .Register(*registry_);
  auto& latency = prometheus::BuildHistogram()
                      .Name("bank_command_duration_seconds")
                      .Help("Time to handle a command, from parsed request to response.")
                      .Register(*registry_);
  const prometheus::Histogram::BucketBoundaries buckets(kBuckets.begin(), kBuckets.end());
  for (std::size_t c = 0; c < kCommands; ++c) {
    const std::string command(kCommandNames[c]);
    for (std::size_t o = 0; o < kOutcomes; ++o) {
      commands_[c][o] =
          &commands.Add({{"command", command}, {"outcome", std::string(kOutcomeNames[o])}});
    }
    latency_[c] = &latency.Add({{"command", command}}, buckets);
  }
  rejected_requests_ = &prometheus::BuildCounter()
                            .Name("bank_http_requests_rejected_total")
                            .Help(
                                "Requests answered 503 at once because every worker was busy "
                                "and the queue was full.")
                            .Register(*registry_)
                            .Add({});
  projection_state_ =
      &prometheus::BuildGauge()
           .Name("annals_projection_state")
           .Help("The projection's state (1 for the current one, 0 for the others).")
           .Register(*registry_);
}

Metrics::~Metrics() = default;

void Metrics::record(CommandKind command, Outcome outcome,
                     std::chrono::nanoseconds latency) noexcept {
  const auto c = static_cast<std::size_t>(command);
  commands_[c][static_cast<std::size_t>(outcome)]->Increment();
  latency_[c]->Observe(std::chrono::duration<double>(latency).count());
}

std::uint64_t Metrics::count(CommandKind command, Outcome outcome) const noexcept {
  return static_cast<std::uint64_t>(
      commands_[static_cast<std::size_t>(command)][static_cast<std::size_t>(outcome)]->Value());
}

void Metrics::count_rejected_request() noexcept { rejected_requests_->Increment(); }

std::string Metrics::render(const std::vector<ProjectionProgress>& projections,
                            bool from_checkpoints, const annals::SnapshotStoreStats* snapshots) {
  for (const auto& p : projections) {
    for (const std::string_view state : kStates) {
      projection_state_->Add({{"projection", p.name}, {"state", std::string(state)}})
          .Set(p.state == state ? 1 : 0);
    }
    if (from_checkpoints) {
      const annals::MetricLabels labels{.projection = p.name};
      annals_sink_->set(annals::GaugeId::kProjectionLagEvents, labels,
                        static_cast<double>(p.lag_events));
      annals_sink_->set(annals::GaugeId::kProjectionLagSeconds, labels, p.lag_seconds);
    }
  }
  auto families = registry_->Collect();
  if (snapshots != nullptr) families.push_back(snapshot_family(*snapshots));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace bank
