// Internal to the annals libraries: how instrumented code talks to an optional MetricsSink.
// With no sink every call is a pointer test (no clock read, no allocation); with one, what the
// sink throws is dropped (metrics must never fail the call they measure).
// Not part of the public API.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "annals/eventstore/metrics.hpp"

namespace annals::detail {

/// An optional sink. Thread safety: as the sink (every method from any thread).
class MetricsRecorder {
 public:
  using Clock = std::chrono::steady_clock;

  MetricsRecorder() = default;
  explicit MetricsRecorder(std::shared_ptr<MetricsSink> sink) : sink_(std::move(sink)) {}

  [[nodiscard]] bool enabled() const noexcept { return sink_ != nullptr; }
  [[nodiscard]] const std::shared_ptr<MetricsSink>& sink() const noexcept { return sink_; }

  void add(CounterId counter, const MetricLabels& labels, std::uint64_t amount = 1) const noexcept {
    if (!sink_ || amount == 0) return;
    try {
      sink_->add(counter, labels, amount);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a sink's failure must not fail the call
    }
  }

  void set(GaugeId gauge, const MetricLabels& labels, double value) const noexcept {
    if (!sink_) return;
    try {
      sink_->set(gauge, labels, value);
    } catch (...) {  // NOLINT(bugprone-empty-catch): as above
    }
  }

  void observe(HistogramId histogram, const MetricLabels& labels, double value,
               std::string_view trace_id = {}) const noexcept {
    if (!sink_) return;
    try {
      sink_->observe(histogram, labels, value, trace_id);
    } catch (...) {  // NOLINT(bugprone-empty-catch): as above
    }
  }

  /// The start of a timed call: now, or the epoch (no clock read) without a sink.
  [[nodiscard]] Clock::time_point start() const noexcept {
    return sink_ ? Clock::now() : Clock::time_point{};
  }

  /// Counts one read that returned `events` events, and observes its time since `started`.
  void read_done(const MetricLabels& labels, std::size_t events,
                 Clock::time_point started) const noexcept {
    if (!sink_) return;
    add(CounterId::kReads, labels);
    add(CounterId::kReadEvents, labels, events);
    observe_since(HistogramId::kReadDuration, labels, started);
  }

  /// Counts one append of store `store` that returned: outcome "ok" with `events` written, or
  /// "resend" (an exact re-send, nothing written); observes its time since `started`.
  void append_done(std::string_view store, bool wrote, std::size_t events,
                   Clock::time_point started) const noexcept {
    if (!sink_) return;
    add(CounterId::kAppends, {.store = store, .outcome = wrote ? "ok" : "resend"});
    if (wrote) add(CounterId::kAppendedEvents, {.store = store}, events);
    observe_since(HistogramId::kAppendDuration, {.store = store}, started);
  }

  /// Counts one append of store `store` that threw, with the outcome of the exception being
  /// handled (call in its catch block), and observes its time since `started`.
  void append_failed(std::string_view store, Clock::time_point started) const noexcept;

  /// Observes the seconds since `started` (from start()).
  void observe_since(HistogramId histogram, const MetricLabels& labels, Clock::time_point started,
                     std::string_view trace_id = {}) const noexcept {
    if (!sink_) return;
    const std::chrono::duration<double> elapsed = Clock::now() - started;
    observe(histogram, labels, elapsed.count(), trace_id);
  }

 private:
  std::shared_ptr<MetricsSink> sink_;
};

/// The value of the `outcome` label of annals_appends_total for the exception being handled
/// (call in a catch block): "conflict", "unavailable", "unknown" (OutcomeUnknownError) or
/// "rejected" (every other refusal).
[[nodiscard]] std::string_view append_outcome_of_current_exception() noexcept;

}  // namespace annals::detail
