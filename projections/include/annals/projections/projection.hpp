// A projection turns the global event log into a read model. It has a stable name (the key of
// its checkpoint, lease and dead letters), a filter saying which events it handles, and an
// apply step. A ProjectionRunner feeds it events in log order, in batches; each batch is one
// unit of work of a ProjectionStore, committed together with the projection's checkpoint.
//
// Two kinds ship with annals:
//  - InProcessProjection (this header): applies events to memory or any external sink.
//    Delivery is at least once: after a crash, events since the last checkpoint come again.
//    The event's position is passed along, so a sink can ignore what it already has.
//  - ReadModelProjection (annals/projections/postgres/read_model.hpp): writes PostgreSQL tables
//    in the same transaction as its checkpoint, so every event takes effect exactly once.
//
//   class Counter final : public annals::projections::InProcessProjection {
//    public:
//     std::string name() const override { return "counter"; }
//     void handle(const annals::RecordedEvent&) override { ++count; }
//     std::atomic<int> count{0};
//   };
//
// Typed: give the base the EventRegistry and declare a handler per event type; events are
// upcast (renames and splits included) and decoded before they reach the handler, and the
// filter is derived from the handlers (annals/framework/typed_events.hpp):
//
//   class Totals final : public annals::projections::InProcessProjection {
//    public:
//     explicit Totals(const annals::EventRegistry& registry) : InProcessProjection(registry) {
//       on<MoneyDeposited>([this](const MoneyDeposited& e, const annals::EventContext& c) {
//         totals[c.stream_id().value()] += e.amount;
//       });
//     }
//     std::string name() const override { return "totals"; }
//     std::map<std::string, std::int64_t> totals;
//   };
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "annals/eventstore/event_store.hpp"
#include "annals/framework/typed_events.hpp"

namespace annals::projections {

/// One store transaction that a batch of events is applied in, committed with the checkpoint.
/// Opaque here; ProjectionStore implementations derive from it (the PostgreSQL one carries a
/// database transaction that ReadModelProjection writes through).
class UnitOfWork {
 public:
  UnitOfWork() = default;
  UnitOfWork(const UnitOfWork&) = delete;
  UnitOfWork& operator=(const UnitOfWork&) = delete;
  virtual ~UnitOfWork() = default;
};

/// Base of every projection. Derive from InProcessProjection or ReadModelProjection rather than
/// from this class directly.
///
/// Thread safety: a runner calls one projection from one thread at a time.
class Projection {
 public:
  Projection() = default;
  Projection(const Projection&) = delete;
  Projection& operator=(const Projection&) = delete;
  virtual ~Projection() = default;

  /// Stable name: 1 to 100 characters out of [A-Za-z0-9_.-]. Renaming a projection starts it
  /// from the beginning of the log under the new name.
  [[nodiscard]] virtual std::string name() const = 0;

  /// The events it handles (by event type and/or stream category). Only those are read and
  /// applied; the checkpoint still moves past the others. Default: every event.
  [[nodiscard]] virtual EventFilter filter() const { return {}; }

  /// Prepares what the projection writes to (e.g. creates its tables), inside `work`. Called
  /// by ProjectionStore::prepare() before the projection runs; must be idempotent.
  virtual void setup(UnitOfWork& work) { static_cast<void>(work); }

  /// Applies one event inside `work`. Throwing fails the event: the batch is rolled back and
  /// the projection's failure policy applies (retry, then stop or park the event).
  virtual void apply(const RecordedEvent& event, UnitOfWork& work) = 0;

  /// Clears everything the projection wrote, inside `work`, whose commit also resets the
  /// checkpoint to the start of the log (a rebuild).
  virtual void reset(UnitOfWork& work) = 0;
};

/// A projection into memory or an external sink, with at-least-once delivery: events after
/// the last committed checkpoint are delivered again after a crash, a failed batch or a lost
/// lease. Use `event.position` (totally ordered) to ignore events already applied.
///
/// Keep the checkpoint where the state is: an in-memory read model belongs with
/// make_in_memory_projection_store(); a durable sink may use the PostgreSQL store.
///
/// Typed: constructed with an EventRegistry, it declares handlers with on<E>() (usually in the
/// derived constructor) and does not override handle(). Events whose stored type cannot reach
/// a declared type are skipped (the checkpoint still moves past them); a decode failure fails
/// the event like a throwing handler (retry, then stop or dead letter), with the registry's
/// typed error naming type, stream and version.
class InProcessProjection : public Projection {
 public:
  /// A projection that overrides handle().
  InProcessProjection() = default;
  /// A typed projection whose handlers (on<E>()) are dispatched through `registry`, which must
  /// outlive it and be complete (every type and upcaster) before on() is called.
  explicit InProcessProjection(const EventRegistry& registry) : handlers_(registry) {}

  /// Applies one event. Throwing fails it (see Projection::apply). Default: dispatches it to
  /// the typed handlers (upcast and decoded); throws InvalidArgumentError when none is
  /// declared.
  virtual void handle(const RecordedEvent& event);
  /// Forgets everything applied so far (a rebuild). Default: nothing to forget.
  virtual void clear() {}

  /// With typed handlers: the stored type names that reach them (EventHandlers::filter; old
  /// names of renamed and split types included). Otherwise every event. An override that adds
  /// a category can start from this one.
  [[nodiscard]] EventFilter filter() const override;

  void apply(const RecordedEvent& event, UnitOfWork&) final { handle(event); }
  void reset(UnitOfWork&) final { clear(); }

 protected:
  /// Declares the handler of E: `(const E&, const EventContext&)` or `(const E&)`.
  /// Throws: InvalidArgumentError (no registry given to the constructor, E not registered,
  /// declared twice).
  template <EventType E, typename F>
  void on(F handler) {
    handlers_.on<E>(std::move(handler));
  }
  /// The typed handlers declared so far.
  [[nodiscard]] const EventHandlers<>& typed_handlers() const noexcept { return handlers_; }

 private:
  EventHandlers<> handlers_;
};

/// Throws InvalidArgumentError unless `name` is a valid projection name (see
/// Projection::name()).
void validate_projection_name(const std::string& name);

}  // namespace annals::projections
