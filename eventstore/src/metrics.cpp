// The fixed metric descriptions (metrics.hpp) and the outcome words of appends.
#include <array>
#include <exception>

#include "annals/eventstore/detail/metrics_recorder.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/metrics.hpp"

namespace annals {
namespace {

using L = MetricLabel;

constexpr std::array<MetricLabel, 1> kStore{L::kStore};
constexpr std::array<MetricLabel, 2> kStoreOutcome{L::kStore, L::kOutcome};
constexpr std::array<MetricLabel, 2> kStoreKind{L::kStore, L::kKind};
constexpr std::array<MetricLabel, 1> kProjection{L::kProjection};
constexpr std::array<MetricLabel, 2> kProjectionChange{L::kProjection, L::kChange};
constexpr std::array<MetricLabel, 1> kSubscription{L::kSubscription};

// Latencies from 100 µs to 10 s; group sizes in powers of two up to the largest group (64 by
// default, PostgresEventStoreOptions::group_commit_max_appends).
constexpr std::array<double, 14> kSecondsBuckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0};
constexpr std::array<double, 8> kGroupBuckets{1, 2, 4, 8, 16, 32, 64, 128};

constexpr std::array<MetricInfo, kCounterCount> kCounters{{
    {"annals_appends_total",
     MetricType::kCounter,
     "calls",
     "Appends (append and append_multi calls), by outcome: ok, resend (an exact re-send "
     "answered with the original result), conflict (ConcurrencyError), rejected (any other "
     "refusal: IdempotencyError, InvalidArgumentError, ...), unavailable (UnavailableError: "
     "nothing written), unknown (OutcomeUnknownError: may have been written).",
     kStoreOutcome,
     {}},
    {"annals_appended_events_total",
     MetricType::kCounter,
     "events",
     "Events written by appends (exact re-sends not counted).",
     kStore,
     {}},
    {"annals_append_retries_total",
     MetricType::kCounter,
     "attempts",
     "Append statements sent again after a broken connection or a transient failure.",
     kStore,
     {}},
    {"annals_reads_total",
     MetricType::kCounter,
     "calls",
     "Reads (read_stream: kind stream; read_all, subscriptions and runners included: kind all).",
     kStoreKind,
     {}},
    {"annals_read_events_total",
     MetricType::kCounter,
     "events",
     "Events returned by reads.",
     kStoreKind,
     {}},
    {"annals_subscription_reconnects_total",
     MetricType::kCounter,
     "outages",
     "Times a subscription read successfully again after the store had been unavailable.",
     kSubscription,
     {}},
    {"annals_projection_events_applied_total",
     MetricType::kCounter,
     "events",
     "Events applied and committed by this process's runner (rate() gives events per second).",
     kProjection,
     {}},
    {"annals_projection_errors_total",
     MetricType::kCounter,
     "attempts",
     "Failed attempts at applying events.",
     kProjection,
     {}},
    {"annals_projection_dead_letters_total",
     MetricType::kCounter,
     "events",
     "Events parked as dead letters.",
     kProjection,
     {}},
    {"annals_projection_ownership_changes_total",
     MetricType::kCounter,
     "changes",
     "Leases this runner acquired, lost (taken over or refused) or released.",
     kProjectionChange,
     {}},
}};

constexpr std::array<MetricInfo, kGaugeCount> kGauges{{
    {"annals_subscription_lag_seconds",
     MetricType::kGauge,
     "seconds",
     "Age of the last event a catching-up subscription delivered (0 when live).",
     kSubscription,
     {}},
    {"annals_projection_lag_events",
     MetricType::kGauge,
     "events",
     "Events between the projection's checkpoint and the head of the log (approximate: the "
     "difference of global sequence numbers).",
     kProjection,
     {}},
    {"annals_projection_lag_seconds",
     MetricType::kGauge,
     "seconds",
     "Age of the oldest event the projection has not applied (0 when live).",
     kProjection,
     {}},
}};

constexpr std::array<MetricInfo, kHistogramCount> kHistograms{{
    {"annals_append_duration_seconds", MetricType::kHistogram, "seconds",
     "Time of an append call, retries and waiting for a group included, failures too.", kStore,
     kSecondsBuckets},
    {"annals_append_group_size", MetricType::kHistogram, "appends",
     "Single-event appends sent together in one transaction (group commit; 1: alone).", kStore,
     kGroupBuckets},
    {"annals_read_duration_seconds", MetricType::kHistogram, "seconds",
     "Time of a read call (read_stream, read_all).", kStoreKind, kSecondsBuckets},
    {"annals_projection_batch_duration_seconds", MetricType::kHistogram, "seconds",
     "Time to apply and commit one batch of a projection.", kProjection, kSecondsBuckets},
}};

}  // namespace

std::string_view to_string(MetricLabel label) noexcept {
  switch (label) {
    case MetricLabel::kStore:
      return "store";
    case MetricLabel::kOutcome:
      return "outcome";
    case MetricLabel::kKind:
      return "kind";
    case MetricLabel::kProjection:
      return "projection";
    case MetricLabel::kSubscription:
      return "subscription";
    case MetricLabel::kChange:
      return "change";
  }
  return "label";
}

const MetricInfo& describe(CounterId counter) noexcept {
  return kCounters[static_cast<std::size_t>(counter)];
}

const MetricInfo& describe(GaugeId gauge) noexcept {
  return kGauges[static_cast<std::size_t>(gauge)];
}

const MetricInfo& describe(HistogramId histogram) noexcept {
  return kHistograms[static_cast<std::size_t>(histogram)];
}

std::string_view detail::append_outcome_of_current_exception() noexcept {
  try {
    throw;
  } catch (const ConcurrencyError&) {
    return "conflict";
  } catch (const OutcomeUnknownError&) {
    return "unknown";
  } catch (const UnavailableError&) {
    return "unavailable";
  } catch (...) {
    return "rejected";
  }
}

void detail::MetricsRecorder::append_failed(std::string_view store,
                                            Clock::time_point started) const noexcept {
  if (!sink_) return;
  add(CounterId::kAppends, {.store = store, .outcome = append_outcome_of_current_exception()});
  observe_since(HistogramId::kAppendDuration, {.store = store}, started);
}

}  // namespace annals
