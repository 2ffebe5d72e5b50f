// The prometheus-cpp adapter (see prometheus_sink.hpp).
//
// Each metric keeps its series in a map from the joined label values to the prometheus-cpp
// metric. A hit takes a shared lock and builds its key in a thread-local buffer, so the hot
// path allocates nothing once the series exists; a miss takes the exclusive lock and creates
// it through Family::Add, or, past max_series_per_metric, uses the "_other" series.
#include "annals/prometheus/prometheus_sink.hpp"

#include <array>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "annals/eventstore/error.hpp"

namespace annals::prometheus {
namespace {

constexpr std::string_view kOther = "_other";
constexpr char kSeparator = '\x1f';

std::string help_of(const MetricInfo& info) {
  return std::string(info.help) + " Unit: " + std::string(info.unit) + ".";
}

// The series of one metric family.
template <typename Metric>
class Series {
 public:
  using Create = std::function<Metric&(const ::prometheus::Labels&)>;

  Series(const MetricInfo& info, Create create, std::size_t max_series)
      : info_(info), create_(std::move(create)), max_series_(max_series) {}

  Metric& at(const MetricLabels& labels) {
    thread_local std::string key;
    key.clear();
    for (const MetricLabel label : info_.labels) {
      key.append(labels.value(label));
      key.push_back(kSeparator);
    }
    {
      std::shared_lock lock(mutex_);
      if (const auto found = series_.find(key); found != series_.end()) return *found->second;
    }
    std::unique_lock lock(mutex_);
    if (const auto found = series_.find(key); found != series_.end()) return *found->second;
    const bool overflow = series_.size() + 1 >= max_series_;  // one place kept for "_other"
    ::prometheus::Labels names;
    std::string stored_key;
    for (const MetricLabel label : info_.labels) {
      const std::string_view value = overflow ? kOther : labels.value(label);
      names.emplace(std::string(to_string(label)), std::string(value));
      stored_key.append(value);
      stored_key.push_back(kSeparator);
    }
    if (const auto found = series_.find(stored_key); found != series_.end()) {
      return *found->second;
    }
    Metric& metric = create_(names);
    series_.emplace(std::move(stored_key), &metric);
    return metric;
  }

 private:
  const MetricInfo& info_;
  const Create create_;
  const std::size_t max_series_;
  std::shared_mutex mutex_;
  std::map<std::string, Metric*, std::less<>> series_;
};

class PrometheusSink final : public MetricsSink {
 public:
  PrometheusSink(std::shared_ptr<::prometheus::Registry> registry, PrometheusSinkOptions options)
      : registry_(std::move(registry)) {
    counters_.reserve(kCounterCount);
    for (std::size_t i = 0; i < kCounterCount; ++i) {
      const MetricInfo& info = describe(static_cast<CounterId>(i));
      auto& family = ::prometheus::BuildCounter()
                         .Name(std::string(info.name))
                         .Help(help_of(info))
                         .Register(*registry_);
      counters_.emplace_back(std::make_unique<Series<::prometheus::Counter>>(
          info,
          [&family](const ::prometheus::Labels& labels) -> ::prometheus::Counter& {
            return family.Add(labels);
          },
          options.max_series_per_metric));
    }
    gauges_.reserve(kGaugeCount);
    for (std::size_t i = 0; i < kGaugeCount; ++i) {
      const MetricInfo& info = describe(static_cast<GaugeId>(i));
      auto& family = ::prometheus::BuildGauge()
                         .Name(std::string(info.name))
                         .Help(help_of(info))
                         .Register(*registry_);
      gauges_.emplace_back(std::make_unique<Series<::prometheus::Gauge>>(
          info,
          [&family](const ::prometheus::Labels& labels) -> ::prometheus::Gauge& {
            return family.Add(labels);
          },
          options.max_series_per_metric));
    }
    histograms_.reserve(kHistogramCount);
    for (std::size_t i = 0; i < kHistogramCount; ++i) {
      const MetricInfo& info = describe(static_cast<HistogramId>(i));
      auto& family = ::prometheus::BuildHistogram()
                         .Name(std::string(info.name))
                         .Help(help_of(info))
                         .Register(*registry_);
      ::prometheus::Histogram::BucketBoundaries buckets(info.buckets.begin(), info.buckets.end());
      histograms_.emplace_back(std::make_unique<Series<::prometheus::Histogram>>(
          info,
          [&family, buckets](const ::prometheus::Labels& labels) -> ::prometheus::Histogram& {
            return family.Add(labels, buckets);
          },
          options.max_series_per_metric));
    }
  }

  void add(CounterId counter, const MetricLabels& labels, std::uint64_t amount) override {
    counters_[static_cast<std::size_t>(counter)]->at(labels).Increment(static_cast<double>(amount));
  }

  void set(GaugeId gauge, const MetricLabels& labels, double value) override {
    gauges_[static_cast<std::size_t>(gauge)]->at(labels).Set(value);
  }

  void observe(HistogramId histogram, const MetricLabels& labels, double value,
               std::string_view /*trace_id: prometheus-cpp 1.0 has no exemplars*/) override {
    histograms_[static_cast<std::size_t>(histogram)]->at(labels).Observe(value);
  }

 private:
  std::shared_ptr<::prometheus::Registry> registry_;
  std::vector<std::unique_ptr<Series<::prometheus::Counter>>> counters_;
  std::vector<std::unique_ptr<Series<::prometheus::Gauge>>> gauges_;
  std::vector<std::unique_ptr<Series<::prometheus::Histogram>>> histograms_;
};

}  // namespace

std::shared_ptr<MetricsSink> make_prometheus_sink(std::shared_ptr<::prometheus::Registry> registry,
                                                  PrometheusSinkOptions options) {
  if (!registry) throw InvalidArgumentError("make_prometheus_sink: the registry is null");
  if (options.max_series_per_metric == 0) {
    throw InvalidArgumentError("PrometheusSinkOptions::max_series_per_metric must be positive");
  }
  return std::make_shared<PrometheusSink>(std::move(registry), options);
}

}  // namespace annals::prometheus
