// The order process manager (a saga): it follows the order events of the log and sends the
// commands that carry an order through stock reservation to confirmation or rejection.
//
//   OrderPlaced         -> for each line: ReserveStock, then RecordReservation on the order
//                          (or, when the inventory refuses, RecordRefusal, and stop)
//   OrderLineReserved   -> every line reserved: ConfirmOrder;
//                          the order already rejected: ReleaseStock of that line
//   OrderLineRefused    -> the order's first refusal: RejectOrder
//   OrderRejected       -> ReleaseStock of every line reserved so far
//
// It runs as a projection (ProjectionRunner + ProjectionStore keep its checkpoint), whose
// effects are commands. Delivery is at least once, so it is idempotent:
//  - every command's id is a name-based UUID of the triggering event's id and the step, so a
//    redelivered event re-sends the same command ids, which the command bus answers with the
//    original results, writing nothing (ARCHITECTURE decision 4);
//  - its progress (which lines are reserved or refused) is in the order's own stream, and
//    each reaction reads the order as it was at the triggering event (load_at_version), so a
//    redelivery decides exactly what the first delivery decided;
//  - the only reaction that looks at the order's current state is OrderPlaced's, to skip
//    lines whose outcome is already recorded: a refusal recorded before a crash is not
//    retried into a reservation after it.
// No state is kept in process memory: a new process, or a rebuild from the start of the log,
// continues where the log says the orders are.
//
//   auto saga = std::make_shared<shop::OrderSaga>(bus, *store, registry);
//   runner.add(saga);
//
// Thread safety: a runner calls handle() from one thread at a time; the bus, store and
// registry are shared and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "annals/eventstore/event_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/metadata.hpp"
#include "annals/framework/repository.hpp"
#include "annals/projections/projection.hpp"
#include "order.hpp"

namespace shop {

/// The saga's projection name (its checkpoint, lease and dead letters).
inline constexpr std::string_view kOrderSagaName = "shop.order-saga";

/// The id of the command the saga sends for `step` (e.g. "reserve/apple") in reaction to the
/// event `trigger_id`: the name-based UUID (version 5) of "<trigger_id>/<step>" in the shop's
/// saga namespace. The same inputs give the same id in every process.
[[nodiscard]] std::string saga_command_id(const annals::EventId& trigger_id, std::string_view step);

/// The order process manager. See the header comment.
class OrderSaga final : public annals::projections::InProcessProjection {
 public:
  /// `bus` must handle the shop's commands (register_handlers); `store` is the store the bus
  /// writes to, read for the orders' states; `registry` knows the shop's events. All three
  /// must outlive the saga.
  OrderSaga(annals::CommandBus& bus, annals::EventStore& store,
            const annals::EventRegistry& registry);

  [[nodiscard]] std::string name() const override { return std::string(kOrderSagaName); }
  /// The order events it reacts to.
  [[nodiscard]] annals::EventFilter filter() const override;

  /// Reacts to one order event by sending commands (see the header comment).
  /// Throws: what the bus throws, except the expected refusals (InsufficientStock, and
  /// OrderAlreadyRejected for a confirmation that lost a race with a rejection), which are
  /// outcomes. The runner retries a throwing event.
  /// Cost: one or two stream reads plus one command per step.
  void handle(const annals::RecordedEvent& event) override;

 private:
  void on_placed(const annals::RecordedEvent& event, const std::string& order_id,
                 const OrderPlaced& placed);
  void on_line_reserved(const annals::RecordedEvent& event, const std::string& order_id,
                        const OrderLineReserved& reserved);
  void on_line_refused(const annals::RecordedEvent& event, const std::string& order_id,
                       const OrderLineRefused& refused);
  void on_rejected(const annals::RecordedEvent& event, const std::string& order_id);

  annals::CommandBus& bus_;
  const annals::EventRegistry& registry_;
  annals::Repository<Order> orders_;
};

}  // namespace shop
