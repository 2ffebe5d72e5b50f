// A MetricsSink that records everything, for tests of what a store, subscription or runner
// reports (annals/eventstore/metrics.hpp): counters summed, gauges' last values, every
// histogram observation with its trace id, each under its series name
// `metric{label="value",...}` (the metric's own labels, in describe() order).
//
//   auto metrics = std::make_shared<annals::testkit::RecordingMetricsSink>();
//   auto store = annals::make_in_memory_event_store({.metrics = metrics});
//   ...
//   EXPECT_EQ(metrics->counter(annals::CounterId::kAppends,
//                              {.store = "memory", .outcome = "ok"}), 3u);
//
// Thread safety: every method from any thread (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "annals/eventstore/metrics.hpp"

namespace annals::testkit {

class RecordingMetricsSink final : public MetricsSink {
 public:
  /// One histogram observation.
  struct Observation {
    double value = 0;
    std::string trace_id;  ///< empty when none was given
  };

  void add(CounterId counter, const MetricLabels& labels, std::uint64_t amount) override {
    std::lock_guard lock(mutex_);
    counters_[series_name(describe(counter), labels)] += amount;
  }

  void set(GaugeId gauge, const MetricLabels& labels, double value) override {
    std::lock_guard lock(mutex_);
    gauges_[series_name(describe(gauge), labels)] = value;
  }

  void observe(HistogramId histogram, const MetricLabels& labels, double value,
               std::string_view trace_id) override {
    std::lock_guard lock(mutex_);
    histograms_[series_name(describe(histogram), labels)].push_back(
        Observation{value, std::string(trace_id)});
  }

  /// The sum added to a counter series; 0 when never added to.
  [[nodiscard]] std::uint64_t counter(CounterId id, const MetricLabels& labels) const {
    std::lock_guard lock(mutex_);
    const auto found = counters_.find(series_name(describe(id), labels));
    return found == counters_.end() ? 0 : found->second;
  }

  /// The last value a gauge series was set to; empty when never set.
  [[nodiscard]] std::optional<double> gauge(GaugeId id, const MetricLabels& labels) const {
    std::lock_guard lock(mutex_);
    const auto found = gauges_.find(series_name(describe(id), labels));
    if (found == gauges_.end()) return std::nullopt;
    return found->second;
  }

  /// Every observation of a histogram series, in order.
  [[nodiscard]] std::vector<Observation> observations(HistogramId id,
                                                      const MetricLabels& labels) const {
    std::lock_guard lock(mutex_);
    const auto found = histograms_.find(series_name(describe(id), labels));
    return found == histograms_.end() ? std::vector<Observation>() : found->second;
  }

  /// The name of every series recorded so far, e.g. `annals_appends_total{store="memory",
  /// outcome="ok"}`: how many series a scrape would show.
  [[nodiscard]] std::set<std::string> series() const {
    std::lock_guard lock(mutex_);
    std::set<std::string> out;
    for (const auto& entry : counters_) out.insert(entry.first);
    for (const auto& entry : gauges_) out.insert(entry.first);
    for (const auto& entry : histograms_) out.insert(entry.first);
    return out;
  }

  /// Forgets everything recorded.
  void clear() {
    std::lock_guard lock(mutex_);
    counters_.clear();
    gauges_.clear();
    histograms_.clear();
  }

  /// `metric{label="value",...}` with the metric's own labels.
  [[nodiscard]] static std::string series_name(const MetricInfo& info, const MetricLabels& labels) {
    std::string name(info.name);
    name += '{';
    bool first = true;
    for (const MetricLabel label : info.labels) {
      if (!first) name += ',';
      first = false;
      name += to_string(label);
      name += "=\"";
      name += labels.value(label);
      name += '"';
    }
    name += '}';
    return name;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> counters_;
  std::map<std::string, double> gauges_;
  std::map<std::string, std::vector<Observation>> histograms_;
};

}  // namespace annals::testkit
