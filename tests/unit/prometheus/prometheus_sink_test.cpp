// annals::prometheus (annals/prometheus/prometheus_sink.hpp): the in-memory store's metrics as
// prometheus-cpp exposes them, the series cap, and bad arguments. No server needed.
#include <memory>
#include <regex>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/prometheus/prometheus_sink.hpp"

namespace annals::prometheus {
namespace {

using ::testing::HasSubstr;

std::string scrape(const ::prometheus::Registry& registry) {
  std::ostringstream out;
  ::prometheus::TextSerializer().Serialize(out, registry.Collect());
  return out.str();
}

// Series lines (not comments) of `metric` (its name followed by '{' or ' ').
int series_of(const std::string& text, const std::string& metric) {
  std::istringstream lines(text);
  int n = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(metric + "{", 0) == 0 || line.rfind(metric + " ", 0) == 0) ++n;
  }
  return n;
}

// The code of docs/observability.md, "The Prometheus adapter".
TEST(PrometheusSinkTest, ServesTheRegistryThroughAnOwnRoute) {
  // docs:begin prometheus-sink
  auto registry = std::make_shared<::prometheus::Registry>();
  auto sink = annals::prometheus::make_prometheus_sink(registry);
  auto store = annals::make_in_memory_event_store({.metrics = sink});
  store->append(annals::StreamId("account-1"), annals::ExpectedVersion::any(),
                {annals::NewEvent{.type = "Opened"}});
  // GET /metrics: prometheus-cpp's Exposer (prometheus-cpp::pull), or a route of your server:
  std::ostringstream text;
  ::prometheus::TextSerializer().Serialize(text, registry->Collect());
  // docs:end
  EXPECT_THAT(text.str(), HasSubstr("# TYPE annals_appends_total counter\n"));
}

TEST(PrometheusSinkTest, ExposesTheStoresMetrics) {
  auto registry = std::make_shared<::prometheus::Registry>();
  auto store = make_in_memory_event_store({.metrics = make_prometheus_sink(registry)});
  const StreamId stream("account-1");
  store->append(stream, ExpectedVersion::no_stream(), {NewEvent{.type = "Opened"}});
  store->append(stream, ExpectedVersion::exact(1),
                {NewEvent{.type = "Deposited"}, NewEvent{.type = "Deposited"}});
  EXPECT_THROW(store->append(stream, ExpectedVersion::no_stream(), {NewEvent{.type = "Opened"}}),
               ConcurrencyError);
  (void)store->read_stream(stream);

  const std::string text = scrape(*registry);
  EXPECT_THAT(text, HasSubstr("# TYPE annals_appends_total counter\n"));
  EXPECT_THAT(text, HasSubstr("annals_appends_total{outcome=\"ok\",store=\"memory\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("annals_appends_total{outcome=\"conflict\",store=\"memory\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("annals_appended_events_total{store=\"memory\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE annals_append_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("annals_append_duration_seconds_count{store=\"memory\"} 3\n"));
  EXPECT_THAT(text,
              HasSubstr("annals_append_duration_seconds_bucket{store=\"memory\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("annals_reads_total{kind=\"stream\",store=\"memory\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("annals_read_events_total{kind=\"stream\",store=\"memory\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("# HELP annals_appends_total Appends"));
}

// Attack: an application that names projections (or subscriptions) from data would create a
// series per name; the sink caps them, and the rest is counted as "_other".
TEST(PrometheusSinkTest, CapsTheSeriesOfAMetric) {
  auto registry = std::make_shared<::prometheus::Registry>();
  auto sink = make_prometheus_sink(registry, {.max_series_per_metric = 5});
  for (int i = 0; i < 1000; ++i) {
    const std::string name = "projection-" + std::to_string(i);
    sink->add(CounterId::kProjectionEvents, {.projection = name}, 1);
    sink->set(GaugeId::kProjectionLagEvents, {.projection = name}, i);
    sink->observe(HistogramId::kProjectionBatchDuration, {.projection = name}, 0.001, "");
  }
  const std::string text = scrape(*registry);
  EXPECT_EQ(series_of(text, "annals_projection_events_applied_total"), 5);
  EXPECT_EQ(series_of(text, "annals_projection_lag_events"), 5);
  EXPECT_EQ(series_of(text, "annals_projection_batch_duration_seconds_count"), 5);
  EXPECT_THAT(text,
              HasSubstr("annals_projection_events_applied_total{projection=\"_other\"} 996\n"));
  EXPECT_THAT(text,
              HasSubstr("annals_projection_events_applied_total{projection=\"projection-0\"} 1\n"));
}

// Label values are escaped by prometheus-cpp: a hostile projection name cannot forge a series.
TEST(PrometheusSinkTest, EscapesLabelValues) {
  auto registry = std::make_shared<::prometheus::Registry>();
  auto sink = make_prometheus_sink(registry);
  sink->add(CounterId::kProjectionEvents, {.projection = "a\"} 1\nfake_total{x=\"y"}, 7);
  const std::string text = scrape(*registry);
  EXPECT_EQ(series_of(text, "fake_total"), 0) << text;
  EXPECT_EQ(series_of(text, "annals_projection_events_applied_total"), 1) << text;
}

TEST(PrometheusSinkTest, RejectsBadArguments) {
  EXPECT_THROW((void)make_prometheus_sink(nullptr), InvalidArgumentError);
  EXPECT_THROW((void)make_prometheus_sink(std::make_shared<::prometheus::Registry>(),
                                          {.max_series_per_metric = 0}),
               InvalidArgumentError);
}

}  // namespace
}  // namespace annals::prometheus
