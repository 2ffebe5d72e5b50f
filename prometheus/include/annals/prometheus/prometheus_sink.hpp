// annals::prometheus: a MetricsSink (annals/eventstore/metrics.hpp) that writes every annals
// metric into a prometheus-cpp registry, for an application that already serves Prometheus
// (prometheus-cpp's Exposer, or its own HTTP route with prometheus::TextSerializer).
// An optional component: only built when prometheus-cpp is found (Debian: prometheus-cpp-dev);
// the other annals libraries never need it.
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   auto sink = annals::prometheus::make_prometheus_sink(registry);
//   auto store = annals::postgres::make_postgres_event_store({.connection_string = url,
//                                                            .metrics = sink});
//   ProjectionRunner runner(*store, projections, {.metrics = sink});
//
// Every metric family of describe() is registered at once (so a dashboard finds each name even
// before its first observation); a series (one combination of label values) is created on its
// first observation and cached, so that later observations of it allocate nothing.
// Exemplars: prometheus-cpp 1.0 cannot expose them, so the trace ids handed to observe() are
// dropped here (the projection runner names them in its debug log lines instead;
// docs/observability.md).
//
// Thread safety: the sink may be used from any number of threads at once.
#pragma once

#include <cstddef>
#include <memory>

#include "annals/eventstore/metrics.hpp"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace annals::prometheus {

struct PrometheusSinkOptions {
  /// Most series per metric family. Label values are the library's own words and names given
  /// in code, so a few dozen is plenty; should an application create more (thousands of
  /// projection or subscription names), further combinations are counted in one series whose
  /// label values are all "_other" rather than growing the exposition without bound. Must be
  /// positive. Default 200.
  std::size_t max_series_per_metric = 200;
};

/// Registers the annals metric families in `registry` and returns a sink writing to them. The
/// sink keeps the registry alive.
/// Throws: InvalidArgumentError (null registry, max_series_per_metric 0); what prometheus-cpp
/// throws when a family of the same name but another type is already registered.
/// Cost: one family per metric (17), registered now.
[[nodiscard]] std::shared_ptr<MetricsSink> make_prometheus_sink(
    std::shared_ptr<::prometheus::Registry> registry, PrometheusSinkOptions options = {});

}  // namespace annals::prometheus
