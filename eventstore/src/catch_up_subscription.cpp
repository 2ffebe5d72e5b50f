// The one subscription engine both stores use (see detail/catch_up_subscription.hpp).
//
// Why it cannot skip or repeat an event: every read continues strictly after the position of
// the last delivered event, and read_all returns only settled events (ARCHITECTURE decision 5),
// so nothing can later appear before that position. Why it cannot miss a wake-up: the signal
// is observed *before* each read, so an append that lands after the read started makes the
// following wait return at once (decision 6); the poll interval is only a fallback.
// Why an outage loses nothing: a read that throws UnavailableError delivered nothing, so the
// retry reads again after the same position; and the first read after the outage happens
// without waiting for a signal, so events appended while LISTEN was down are read too.
//
// Why a failover skips nothing: after an outage the store may be another server, a promoted
// standby. A dying primary can have shown a reader a commit its standby never received (a
// transaction whose wait for synchronous replication the postmaster's death cut short is made
// visible locally; docs/scaling.md, "Failover"), and the promoted standby may give its later
// transactions lower transaction ids than that lost one. Continuing after the lost event's
// position would then skip them. So the first read after an outage checks that the newest
// deliveries are still in the log (rewind_past_lost_deliveries) and continues after the newest
// one that is: the log is delivered without a gap, and a lost event whose writer re-sent it
// comes again at its new position.
#include "annals/eventstore/detail/catch_up_subscription.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "annals/eventstore/detail/backoff.hpp"
#include "annals/eventstore/detail/logger.hpp"
#include "annals/eventstore/detail/metrics_recorder.hpp"
#include "annals/eventstore/detail/outage.hpp"
#include "annals/eventstore/error.hpp"

namespace annals::detail {
namespace {

class CatchUpSubscription;

// The subscription whose thread is the current one, so that stop() called from a handler
// can tell that it must not join its own thread.
thread_local const CatchUpSubscription* t_running_subscription = nullptr;

class CatchUpSubscription final : public Subscription {
 public:
  CatchUpSubscription(EventReader& reader, std::unique_ptr<ChangeSignal> signal,
                      SubscriptionOptions options, EventHandler handler)
      : reader_(reader),
        signal_(std::move(signal)),
        options_(std::move(options)),
        handler_(std::move(handler)),
        backoff_(options_.initial_reconnect_backoff, options_.max_reconnect_backoff),
        metrics_(options_.metrics),
        labels_{.subscription = options_.name},
        position_(options_.after),
        thread_([this](const std::stop_token& stop) { run(stop); }) {}

  // Destroying the subscription from its own handler is not supported (it would join itself).
  ~CatchUpSubscription() override { stop(); }

  void stop() override {
    thread_.request_stop();  // thread-safe; a no-op once requested
    signal_->interrupt();
    if (t_running_subscription == this) {
      // Called from the handler: the loop sees the request as soon as the handler returns.
      return;
    }
    {
      std::lock_guard join_lock(join_mutex_);
      if (thread_.joinable()) thread_.join();
    }
    std::lock_guard lock(mutex_);
    running_ = false;
    progress_.notify_all();
  }

  bool is_running() const override {
    std::lock_guard lock(mutex_);
    return running_;
  }

  bool is_live() const override {
    std::lock_guard lock(mutex_);
    return live_;
  }

  SubscriptionState state() const override {
    std::lock_guard lock(mutex_);
    return running_ ? state_ : SubscriptionState::kStopped;
  }

  Position position() const override {
    std::lock_guard lock(mutex_);
    return position_;
  }

  std::exception_ptr stop_reason() const override {
    std::lock_guard lock(mutex_);
    return stop_reason_;
  }

  bool wait_for(Position position, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mutex_);
    progress_.wait_for(lock, timeout, [&] { return position_ >= position || !running_; });
    return position_ >= position;
  }

 private:
  void run(const std::stop_token& stop) {
    t_running_subscription = this;
    try {
      deliver(stop);
    } catch (const std::exception& e) {
      fail(std::current_exception(), e.what());
    } catch (...) {
      fail(std::current_exception(), "unknown exception");
    }
    std::lock_guard lock(mutex_);
    running_ = false;
    progress_.notify_all();
  }

  // The read loop: read, deliver, wait for a change; throws what stops the subscription.
  void deliver(const std::stop_token& stop) {
    Position after = options_.after;
    // Non-zero while a signalled change has not shown up in reads: the store holds events
    // back until every earlier transaction has settled (decision 5), and the transaction that
    // holds them back may end without a signal (another database, or not an append).
    std::chrono::milliseconds settle{0};
    while (!stop.stop_requested()) {
      const std::uint64_t token = signal_->observe();
      const std::optional<std::vector<RecordedEvent>> read = read_after(after, stop);  // may rewind
      if (!read) continue;  // unavailable: backed off, read again after the same position
      const std::vector<RecordedEvent>& batch = *read;
      const bool caught_up = batch.size() < options_.batch_size;
      report_lag(batch, caught_up);  // first: whoever sees the state sees the lag too
      set_state(caught_up ? SubscriptionState::kLive : SubscriptionState::kCatchingUp);
      for (const RecordedEvent& event : batch) {
        if (stop.stop_requested()) break;
        if (!(after < event.position)) {
          // A store bug; stopping loudly beats delivering an event twice.
          throw InternalError("read_all returned position " + event.position.to_string() +
                              " that is not after " + after.to_string());
        }
        handler_(event);
        remember(event);
        after = event.position;
        {
          std::lock_guard lock(mutex_);
          position_ = after;
        }
        progress_.notify_all();
      }
      if (!caught_up || stop.stop_requested()) continue;
      if (batch.empty() && settle.count() > 0) {
        // Read again soon, backing off to the poll interval.
        signal_->wait(token, settle);
        settle = std::min(settle * 2, options_.poll_interval);
        continue;
      }
      settle = signal_->wait(token, options_.poll_interval) ? std::chrono::milliseconds(1)
                                                            : std::chrono::milliseconds(0);
    }
  }

  // One read after `after`, or nothing when the store is unavailable (after backing off).
  // After an outage, first moves `after` back past deliveries the store no longer has.
  // Other errors propagate and stop the subscription.
  std::optional<std::vector<RecordedEvent>> read_after(Position& after,
                                                       const std::stop_token& stop) {
    std::vector<RecordedEvent> batch;
    try {
      if (outage_.active()) after = rewind_past_lost_deliveries(after);
      batch = reader_.read_all(ReadAllOptions{
          .after = after, .max_count = options_.batch_size, .filter = options_.filter});
    } catch (const OutcomeUnknownError&) {
      throw;  // a read changes nothing, so an unknown outcome is a bug: stop loudly
    } catch (const UnavailableError& e) {
      back_off(e, after, stop);
      return std::nullopt;
    }
    if (const auto ended = outage_.end()) {
      metrics_.add(CounterId::kSubscriptionReconnects, labels_);
      log_info(
          "annals: subscription: store available again after {} ms ({} failed reads); "
          "resuming after position {}",
          ended->duration.count(), ended->failed_attempts, after.to_string());
    }
    return batch;
  }

  // Keeps the newest deliveries for rewind_past_lost_deliveries (a StreamId copy per event).
  void remember(const RecordedEvent& event) {
    if (recent_.size() == kRecentDeliveries) {
      recent_.pop_front();
      forgot_ = true;
    }
    recent_.push_back({event.stream_id, event.version, event.id, event.position});
  }

  // Checks the recent deliveries, newest first, against the store (one read_stream each; one
  // in all unless a failover lost some) and returns the position of the newest one the store
  // still has at the same stream version, id and position: `after` when that is the last one.
  // Throws: what read_stream and stream_state throw (UnavailableError: the caller backs off
  // and comes back).
  Position rewind_past_lost_deliveries(Position after) {
    std::size_t lost = 0;
    while (!recent_.empty()) {
      const Delivery& last = recent_.back();
      const auto found =
          reader_.read_stream(last.stream, ReadStreamOptions{.from = last.version, .max_count = 1});
      if (!found.empty() && found.front().id == last.id &&
          found.front().position == last.position) {
        break;
      }
      // Retention rules (max_count, max_age, truncate_before) hide events from read_stream: a
      // hidden delivery cannot be checked, so it counts as still there (no rewind, no repeat).
      const bool hidden = found.empty() || found.front().version != last.version;
      if (hidden && !reader_.stream_state(last.stream).metadata.empty()) break;
      recent_.pop_back();
      ++lost;
    }
    if (lost == 0) return after;
    if (recent_.empty() && forgot_) {
      // Every remembered delivery is gone and older ones were forgotten: there is nothing to
      // continue after but `after`. Warn, and go on as before this check existed.
      log_warn(
          "annals: subscription: the last {} delivered events are not in the log of the store it "
          "reconnected to, and older deliveries are not remembered; continuing after position {}",
          lost, after.to_string());
      return after;
    }
    const Position back = recent_.empty() ? options_.after : recent_.back().position;
    log_warn(
        "annals: subscription: {} delivered events up to position {} are not in the log of the "
        "store it reconnected to (a failover lost commits the old primary had shown); continuing "
        "after position {}",
        lost, after.to_string(), back.to_string());
    {
      std::lock_guard lock(mutex_);
      position_ = back;
    }
    return back;
  }

  // The store is unavailable: report reconnecting, warn once per outage, and sleep for the
  // next backoff wait (or until stop()).
  void back_off(const UnavailableError& error, Position after, const std::stop_token& stop) {
    set_state(SubscriptionState::kReconnecting);
    const auto wait = backoff_.after(outage_.failures());
    if (outage_.fail()) {
      log_warn("annals: subscription: store unavailable after position {} ({}); reconnecting",
               after.to_string(), error.what());
    }
    std::unique_lock lock(mutex_);
    retry_.wait_for(lock, stop, wait, [] { return false; });
  }

  // Lag: the age of the last event of a full batch (catching up), 0 once caught up.
  void report_lag(const std::vector<RecordedEvent>& batch, bool caught_up) const noexcept {
    if (!metrics_.enabled()) return;
    double lag = 0;
    if (!caught_up && !batch.empty()) {
      const std::chrono::duration<double> age =
          std::chrono::system_clock::now() - batch.back().recorded_at;
      lag = std::max(0.0, age.count());
    }
    metrics_.set(GaugeId::kSubscriptionLagSeconds, labels_, lag);
  }

  void set_state(SubscriptionState state) {
    std::lock_guard lock(mutex_);
    state_ = state;
    if (state == SubscriptionState::kLive) live_ = true;
  }

  // Logging must not turn a reconnect into a stopped subscription.
  template <typename... Args>
  static void log_warn(spdlog::format_string_t<Args...> format, Args&&... args) noexcept {
    try {
      annals::detail::logger()->warn(format, std::forward<Args>(args)...);
    } catch (...) {
    }
  }
  template <typename... Args>
  static void log_info(spdlog::format_string_t<Args...> format, Args&&... args) noexcept {
    try {
      annals::detail::logger()->info(format, std::forward<Args>(args)...);
    } catch (...) {
    }
  }

  // The error reaches the owner through stop_reason(); it is logged here once and not thrown.
  void fail(std::exception_ptr reason, const char* what) {
    Position at;
    {
      std::lock_guard lock(mutex_);
      stop_reason_ = std::move(reason);
      at = position_;
    }
    try {
      annals::detail::logger()->error("subscription stopped after position {}: {}", at.to_string(),
                                      what);
    } catch (...) {
      // Logging must not turn a stopped subscription into a crash.
    }
  }

  EventReader& reader_;
  std::unique_ptr<ChangeSignal> signal_;
  const SubscriptionOptions options_;
  const EventHandler handler_;

  // One delivered event, as rewind_past_lost_deliveries checks it.
  struct Delivery {
    StreamId stream;
    StreamVersion version;
    EventId id;
    Position position;
  };
  // Deliveries remembered: more than the commits a dying primary can have shown (one per
  // transaction in flight at its death).
  static constexpr std::size_t kRecentDeliveries = 256;

  // Subscription thread only.
  std::deque<Delivery> recent_;  // newest last
  bool forgot_ = false;          // an older delivery was dropped from recent_
  Backoff backoff_;
  Outage outage_;
  const MetricsRecorder metrics_;
  const MetricLabels labels_;  // views into options_

  mutable std::mutex mutex_;  // guards the five fields below
  std::condition_variable progress_;
  std::condition_variable_any retry_;  // the backoff sleep; woken by stop() only
  Position position_;
  bool running_ = true;
  bool live_ = false;
  SubscriptionState state_ = SubscriptionState::kCatchingUp;
  std::exception_ptr stop_reason_;

  std::mutex join_mutex_;  // serialises joins of concurrent stop() calls
  std::jthread thread_;    // last: starts once every other member is initialised
};

}  // namespace

namespace {

void validate(const SubscriptionOptions& options) {
  if (options.batch_size == 0) {
    throw InvalidArgumentError("invalid subscription options: batch_size must be >= 1");
  }
  if (options.poll_interval <= std::chrono::milliseconds::zero()) {
    throw InvalidArgumentError("invalid subscription options: poll_interval must be > 0, got " +
                               std::to_string(options.poll_interval.count()) + " ms");
  }
  if (options.initial_reconnect_backoff <= std::chrono::milliseconds::zero() ||
      options.max_reconnect_backoff < options.initial_reconnect_backoff) {
    throw InvalidArgumentError(
        "invalid subscription options: need 0 < initial_reconnect_backoff (" +
        std::to_string(options.initial_reconnect_backoff.count()) +
        " ms) <= max_reconnect_backoff (" + std::to_string(options.max_reconnect_backoff.count()) +
        " ms)");
  }
}

}  // namespace

std::unique_ptr<Subscription> make_catch_up_subscription(EventReader& reader,
                                                         std::unique_ptr<ChangeSignal> signal,
                                                         SubscriptionOptions options,
                                                         EventHandler handler) {
  if (!signal) throw InvalidArgumentError("subscription needs a change signal");
  if (!handler) throw InvalidArgumentError("subscription needs an event handler");
  validate(options);
  return std::make_unique<CatchUpSubscription>(reader, std::move(signal), std::move(options),
                                               std::move(handler));
}

}  // namespace annals::detail

namespace annals {

const char* to_string(SubscriptionState state) noexcept {
  switch (state) {
    case SubscriptionState::kCatchingUp:
      return "catching-up";
    case SubscriptionState::kLive:
      return "live";
    case SubscriptionState::kReconnecting:
      return "reconnecting";
    case SubscriptionState::kStopped:
      return "stopped";
  }
  return "unknown";
}

}  // namespace annals
