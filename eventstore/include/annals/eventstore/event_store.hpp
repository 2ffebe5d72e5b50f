// The EventStore interface: append with optimistic concurrency, read streams and the global
// log, and subscribe to the log (catch up, then live).
//
// Two implementations pass one contract suite: PostgresEventStore (annals/postgres) and the
// in-memory store (annals/eventstore/in_memory_event_store.hpp).
//
//   auto store = annals::make_in_memory_event_store();
//   store->append(annals::StreamId{"account-1"}, annals::ExpectedVersion::no_stream(),
//                 {annals::NewEvent{.type = "Opened", .data = {{"owner", "Ada"}}}});
//   for (const auto& e : store->read_stream(annals::StreamId{"account-1"})) { ... }
//
// Thread safety: every method of every implementation may be called from any thread at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "annals/eventstore/metrics.hpp"
#include "annals/eventstore/types.hpp"

namespace annals {

enum class ReadDirection { kForward, kBackward };

/// Options of read_stream.
struct ReadStreamOptions {
  /// Forward (oldest first) or backward (newest first). Default forward.
  ReadDirection direction = ReadDirection::kForward;
  /// First version returned. Default: 1 forward, the last version backward.
  std::optional<StreamVersion> from;
  /// Most events returned. Default: all.
  std::size_t max_count = std::numeric_limits<std::size_t>::max();
};

/// Which events of the global log a reader wants. Empty fields match everything.
struct EventFilter {
  /// Only streams of this category (the stream id before its first '-').
  std::optional<std::string> category;
  /// Only events of these types.
  std::vector<std::string> event_types;

  [[nodiscard]] bool matches(const RecordedEvent& event) const;
};

/// Options of read_all.
struct ReadAllOptions {
  /// Events strictly after this position. Default: from the beginning.
  Position after = Position::start();
  /// Most events returned. Default 1,000.
  std::size_t max_count = 1000;
  EventFilter filter;
};

/// Reads streams and the global log.
///
/// A stored event a store cannot decode (see RecordedEvent::decode_failure) is returned in its
/// place, marked, by every read and subscription, never thrown: one bad row must not stop every
/// reader of the log. The in-memory store never has such events.
class EventReader {
 public:
  EventReader() = default;
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;
  virtual ~EventReader() = default;

  /// Events of one stream in version order. A stream that does not exist reads as empty.
  /// Events outside the stream's retention rules (StreamMetadata: max_count, max_age,
  /// truncate_before) are left out; the others keep their versions. A deleted stream reads as
  /// stored, its tombstone (kStreamDeletedType) last; stream_state() says it is deleted.
  /// Cost: one round trip.
  [[nodiscard]] virtual std::vector<RecordedEvent> read_stream(
      const StreamId& stream, const ReadStreamOptions& options = {}) = 0;

  /// Events of the global log strictly after `options.after`, in log order, at most
  /// `options.max_count`. Only settled events are returned (no earlier-ordered event can still
  /// appear), so continuing after the last returned position never skips an event.
  /// Cost: one round trip.
  [[nodiscard]] virtual std::vector<RecordedEvent> read_all(const ReadAllOptions& options = {}) = 0;

  /// The stream's current version, or empty when it has no events. Cost: one round trip.
  [[nodiscard]] virtual std::optional<StreamVersion> stream_version(const StreamId& stream) = 0;

  /// The stream's version, whether it is deleted (its last event is a tombstone, see
  /// EventWriter::delete_stream) and its retention rules (StreamMetadata), read together.
  /// read_stream returns a deleted stream's events as stored, the tombstone last; this is the
  /// typed answer to "is it deleted?".
  /// The default, for readers that keep no stream metadata, derives it from stream_version()
  /// and the last event (metadata empty); both stores override it.
  /// Cost: one round trip (the default: two).
  [[nodiscard]] virtual StreamState stream_state(const StreamId& stream);

  /// Position of the last settled event of the global log (Position::start() when there is
  /// none). Every event at or before it is visible to read_all() from now on, so a reader
  /// whose filtered read came back short after asking for the head may move its checkpoint
  /// up to the head without skipping a matching event. Cost: one round trip.
  [[nodiscard]] virtual Position head_position() = 0;
};

/// Appends events.
class EventWriter {
 public:
  EventWriter() = default;
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;
  virtual ~EventWriter() = default;

  /// Appends `events` to `stream` if its version matches `expected`, atomically.
  ///
  /// Idempotent: when every event id is already stored as this exact append, returns the
  /// original result and writes nothing.
  /// Throws: ConcurrencyError (version mismatch), IdempotencyError (ids partly stored),
  /// InvalidArgumentError (bad event, limits), UnavailableError / OutcomeUnknownError.
  /// A throwing append wrote nothing.
  /// Cost: one round trip.
  virtual AppendResult append(const StreamId& stream, const ExpectedVersion& expected,
                              std::vector<NewEvent> events) = 0;

  /// Appends to several streams in one transaction, each with its own expected version: all
  /// or nothing. Results come in request order. A stream may appear only once. A part with
  /// StreamAppend::reopen set may append to a deleted stream (which is then live again).
  /// Throws: as append(); the ConcurrencyError or StreamDeletedError names the first stream
  /// that failed.
  /// Cost: one round trip.
  virtual std::vector<AppendResult> append_multi(std::vector<StreamAppend> appends) = 0;

  /// Soft-deletes a stream: appends a tombstone, an event of type kStreamDeletedType with
  /// data {} (a fresh id), if the stream's version matches `expected`. Nothing is removed: the
  /// stream's events, and the tombstone, stay in the stream and in the global log for audits
  /// and projections. Afterwards stream_state() reports the stream deleted and appends to it
  /// throw StreamDeletedError, unless they ask to reopen (StreamAppend::reopen).
  /// Returns the tombstone's append result (its version and position).
  /// Throws: InvalidArgumentError (`expected` is no_stream() or exact(0): there is nothing to
  /// delete), NotFoundError (the stream has no events), ConcurrencyError (version mismatch),
  /// StreamDeletedError (already deleted: also what a retry after an OutcomeUnknownError whose
  /// delete did commit gets), UnavailableError / OutcomeUnknownError.
  /// Cost: one round trip (it is an append).
  AppendResult delete_stream(const StreamId& stream, const ExpectedVersion& expected);

  /// Sets (replaces) the stream's retention rules, which read_stream honours; empty metadata
  /// removes them. The stream need not exist. The global log is unchanged.
  /// Throws: InvalidArgumentError (a field out of range, see StreamMetadata), UnavailableError.
  /// Cost: one round trip.
  virtual void set_stream_metadata(const StreamId& stream, const StreamMetadata& metadata) = 0;
};

/// Receives events from a subscription, in log order, on the subscription's thread.
/// An exception thrown here stops the subscription; it becomes the stop reason.
using EventHandler = std::function<void(const RecordedEvent&)>;

/// Options of subscribe().
struct SubscriptionOptions {
  /// Deliver events strictly after this position. Default: from the beginning.
  Position after = Position::start();
  EventFilter filter;
  /// Events fetched per read while catching up. Default 500.
  std::size_t batch_size = 500;
  /// Longest wait without a wake-up before reading again (the fallback poll). Default 1 s.
  std::chrono::milliseconds poll_interval{1000};
  /// While the store is unavailable (a read threw UnavailableError), the wait before the
  /// second read attempt; it doubles with each failure, with jitter (between half and all of
  /// it), up to max_reconnect_backoff. Must be > 0. Default 100 ms.
  std::chrono::milliseconds initial_reconnect_backoff{100};
  /// Longest wait between read attempts while the store is unavailable; must be at least
  /// initial_reconnect_backoff. Default 5 s.
  std::chrono::milliseconds max_reconnect_backoff{5000};
  /// Where the subscription reports its reconnects and lag (metrics.hpp). Default null: the
  /// store's sink (its options' `metrics`), if any.
  std::shared_ptr<MetricsSink> metrics;
  /// The `subscription` label of its metrics: a name chosen in code, never from data (one
  /// series per name). Default "subscription".
  std::string name = "subscription";
};

/// What a subscription is doing (Subscription::state()).
enum class SubscriptionState {
  kCatchingUp,    ///< reading a backlog (full batches), or reading again after an outage
  kLive,          ///< caught up, waiting for new events
  kReconnecting,  ///< the store is unavailable; retrying with backoff from the same position
  kStopped,       ///< stopped by stop() or by an error; see stop_reason()
};

/// Stable lower-case name: "catching-up", "live", "reconnecting", "stopped".
[[nodiscard]] const char* to_string(SubscriptionState state) noexcept;

/// A running subscription: a thread that catches up from a position, then delivers live
/// events as they settle, never skipping or repeating one.
///
/// Outages: a read that throws UnavailableError (the server went away, a failover, a full
/// pool) does not stop the subscription: it reports SubscriptionState::kReconnecting, logs a
/// warning once, reads again with capped exponential backoff and jitter
/// (SubscriptionOptions::initial_reconnect_backoff, max_reconnect_backoff) and, once a read
/// succeeds, logs the outage's length and continues strictly after the last delivered event.
/// Unless the store is by then another server that lacks that event (a failover lost commits
/// the old primary had shown): it then continues after the newest delivered event the store
/// still has, with a warning, so that nothing is skipped; events the old primary showed and
/// their writers re-sent are then delivered again at their new positions (docs/scaling.md,
/// "Failover"). That check costs one read_stream per outage.
/// Errors that no retry fixes stop it: any other exception of a read (OutcomeUnknownError
/// included, which a read cannot honestly raise) and every exception of the handler.
///
/// Thread safety: all methods may be called from any thread. Called from the handler, stop()
/// only requests the stop (the thread ends once the handler returns); destroying the
/// subscription from its own handler is not allowed.
class Subscription {
 public:
  Subscription() = default;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  /// Stops and joins the thread.
  virtual ~Subscription() = default;

  /// Stops delivery and joins the thread. Idempotent.
  virtual void stop() = 0;
  /// True until stopped or failed (also while reconnecting).
  [[nodiscard]] virtual bool is_running() const = 0;
  /// True once a read found nothing more to deliver (caught up at least once); stays true
  /// during a later outage (see state()).
  [[nodiscard]] virtual bool is_live() const = 0;
  /// What the subscription is doing now. The default, for implementations that never
  /// reconnect, derives it from is_running() and is_live().
  [[nodiscard]] virtual SubscriptionState state() const {
    if (!is_running()) return SubscriptionState::kStopped;
    return is_live() ? SubscriptionState::kLive : SubscriptionState::kCatchingUp;
  }
  /// Position of the last event delivered (or the start position).
  [[nodiscard]] virtual Position position() const = 0;
  /// Why the subscription stopped on its own (a handler or store exception), or null.
  [[nodiscard]] virtual std::exception_ptr stop_reason() const = 0;
  /// Blocks until the subscription has delivered events up to `position` (or passed it),
  /// stopped, or `timeout` elapsed. Returns true when the position was reached.
  virtual bool wait_for(Position position, std::chrono::milliseconds timeout) = 0;
};

/// Tells a reader that drives its own read loop that the log may have grown (NOTIFY for the
/// PostgreSQL store). Usage: `token = observe()`, read, and if the read came back short,
/// `wait(token, timeout)` before reading again.
///
/// Thread safety: observe() and wait() from one thread at a time; interrupt() from any thread.
class ChangeSignal {
 public:
  ChangeSignal() = default;
  ChangeSignal(const ChangeSignal&) = delete;
  ChangeSignal& operator=(const ChangeSignal&) = delete;
  virtual ~ChangeSignal() = default;

  /// Called before each read; returns a token for wait(). A change signalled after
  /// observe() returned makes the following wait() return promptly.
  virtual std::uint64_t observe() = 0;
  /// Returns when a change after `token` was signalled, `timeout` elapsed or interrupt() was
  /// called: true when a change was signalled (or may have been missed, e.g. after a
  /// reconnection), false on timeout or interrupt. Spurious returns are allowed.
  virtual bool wait(std::uint64_t token, std::chrono::milliseconds timeout) = 0;
  /// Wakes a pending or the next wait().
  virtual void interrupt() = 0;
};

/// An event store: reader, writer and subscriptions.
class EventStore : public EventReader, public EventWriter {
 public:
  /// A new wake-up source for a reader that drives its own loop over read_all() (projection
  /// runners do). The PostgreSQL store opens one LISTEN connection per signal.
  [[nodiscard]] virtual std::unique_ptr<ChangeSignal> watch() = 0;

  /// Starts a subscription that calls `handler` for every matching event after
  /// `options.after`: first the backlog, then live events as they are appended (woken by a
  /// notification, with `poll_interval` as the fallback).
  [[nodiscard]] virtual std::unique_ptr<Subscription> subscribe(SubscriptionOptions options,
                                                                EventHandler handler) = 0;
};

}  // namespace annals
