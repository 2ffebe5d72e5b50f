// Metrics: what the stores, subscriptions and projection runners report, and the sink they
// report it to. The core has no metrics dependency: a sink is an interface; annals::prometheus
// adapts it to prometheus-cpp (annals/prometheus/prometheus_sink.hpp), and a test can record
// into its own.
//
//   auto sink = std::make_shared<MySink>();  // a MetricsSink
//   auto store = annals::postgres::make_postgres_event_store({.connection_string = url,
//                                                            .metrics = sink});
//   ProjectionRunner runner(*store, projections, {.metrics = sink});
//
// The metric names, types, units and labels are fixed (describe() lists them; the table is in
// docs/observability.md). Label values come from a closed set of words chosen by the library
// ("postgres", "ok", "conflict", ...) and from names the application gives in code (projection
// and subscription names), never from data: no stream id, event id or user input ever becomes a
// label value, so the number of series does not grow with the data.
//
// Cost: with no sink (the default) an instrumented call does nothing more than test a pointer:
// no clock read, no allocation. With a sink, a call reads the steady clock twice and makes a
// few virtual calls with string_view labels (no allocation in the library).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace annals {

/// The counters (monotonic, in events or calls).
enum class CounterId : std::uint8_t {
  kAppends,                     ///< annals_appends_total{store, outcome}
  kAppendedEvents,              ///< annals_appended_events_total{store}
  kAppendRetries,               ///< annals_append_retries_total{store}
  kReads,                       ///< annals_reads_total{store, kind}
  kReadEvents,                  ///< annals_read_events_total{store, kind}
  kSubscriptionReconnects,      ///< annals_subscription_reconnects_total{subscription}
  kProjectionEvents,            ///< annals_projection_events_applied_total{projection}
  kProjectionErrors,            ///< annals_projection_errors_total{projection}
  kProjectionDeadLetters,       ///< annals_projection_dead_letters_total{projection}
  kProjectionOwnershipChanges,  ///< annals_projection_ownership_changes_total{projection, change}
};
inline constexpr std::size_t kCounterCount = 10;

/// The gauges (a current value).
enum class GaugeId : std::uint8_t {
  kSubscriptionLagSeconds,  ///< annals_subscription_lag_seconds{subscription}
  kProjectionLagEvents,     ///< annals_projection_lag_events{projection}
  kProjectionLagSeconds,    ///< annals_projection_lag_seconds{projection}
};
inline constexpr std::size_t kGaugeCount = 3;

/// The histograms (a distribution of observed values).
enum class HistogramId : std::uint8_t {
  kAppendDuration,           ///< annals_append_duration_seconds{store}
  kAppendGroupSize,          ///< annals_append_group_size{store}
  kReadDuration,             ///< annals_read_duration_seconds{store, kind}
  kProjectionBatchDuration,  ///< annals_projection_batch_duration_seconds{projection}
};
inline constexpr std::size_t kHistogramCount = 4;

/// The label keys a metric may carry.
enum class MetricLabel : std::uint8_t {
  kStore,         ///< "postgres" or "memory"
  kOutcome,       ///< appends: "ok", "resend", "conflict", "rejected", "unavailable", "unknown"
  kKind,          ///< reads: "stream" or "all"
  kProjection,    ///< a projection's name (Projection::name())
  kSubscription,  ///< SubscriptionOptions::name
  kChange,        ///< ownership: "acquired", "lost", "released"
};

/// The label's key as exposed: "store", "outcome", "kind", "projection", "subscription",
/// "change".
[[nodiscard]] std::string_view to_string(MetricLabel label) noexcept;

/// The label values of one observation: only the keys of the metric (describe().labels) are
/// read; the others are ignored. Views: valid during the call only.
struct MetricLabels {
  std::string_view store;
  std::string_view outcome;
  std::string_view kind;
  std::string_view projection;
  std::string_view subscription;
  std::string_view change;

  /// The value of `label`.
  [[nodiscard]] constexpr std::string_view value(MetricLabel label) const noexcept {
    switch (label) {
      case MetricLabel::kStore:
        return store;
      case MetricLabel::kOutcome:
        return outcome;
      case MetricLabel::kKind:
        return kind;
      case MetricLabel::kProjection:
        return projection;
      case MetricLabel::kSubscription:
        return subscription;
      case MetricLabel::kChange:
        return change;
    }
    return {};
  }
};

enum class MetricType : std::uint8_t { kCounter, kGauge, kHistogram };

/// A metric's fixed description, for adapters that register every metric up front.
struct MetricInfo {
  std::string_view name;  ///< e.g. "annals_appends_total" (Prometheus conventions)
  MetricType type = MetricType::kCounter;
  std::string_view unit;  ///< "events", "calls", "seconds", ...
  std::string_view help;  ///< one sentence
  std::span<const MetricLabel> labels;
  /// Histograms: the upper bounds of the buckets (ascending; +Inf implied). Empty otherwise.
  std::span<const double> buckets;
};

/// The description of each metric. Cost: none (static tables).
[[nodiscard]] const MetricInfo& describe(CounterId counter) noexcept;
[[nodiscard]] const MetricInfo& describe(GaugeId gauge) noexcept;
[[nodiscard]] const MetricInfo& describe(HistogramId histogram) noexcept;

/// Receives the metrics of stores, subscriptions and runners. Attach one through the options
/// of a store (InMemoryEventStoreOptions::metrics, PostgresEventStoreOptions::metrics), a
/// subscription (SubscriptionOptions::metrics; the store's by default) or a runner
/// (RunnerOptions::metrics). One sink may serve all of them.
///
/// Thread safety: every method may be called from many threads at once; implementations must
/// allow it. They should not throw (the library drops what a sink throws) and should be cheap:
/// they run on the calls they measure.
class MetricsSink {
 public:
  MetricsSink() = default;
  MetricsSink(const MetricsSink&) = delete;
  MetricsSink& operator=(const MetricsSink&) = delete;
  virtual ~MetricsSink() = default;

  /// Adds `amount` to a counter.
  virtual void add(CounterId counter, const MetricLabels& labels, std::uint64_t amount) = 0;
  /// Sets a gauge.
  virtual void set(GaugeId gauge, const MetricLabels& labels, double value) = 0;
  /// Observes one value of a histogram. `trace_id`: the W3C trace id (32 lower-case hex digits)
  /// of the work observed, when known (an exemplar); empty otherwise.
  virtual void observe(HistogramId histogram, const MetricLabels& labels, double value,
                       std::string_view trace_id) = 0;
};

}  // namespace annals
