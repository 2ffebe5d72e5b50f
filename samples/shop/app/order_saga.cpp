#include "order_saga.hpp"

#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/uuid.hpp>

#include "annals/eventstore/error.hpp"
#include "inventory.hpp"

namespace shop {
namespace {

// The namespace of the saga's command ids (a fixed, random UUID: never change it, or
// redelivered events after an upgrade would send commands with new ids).
constexpr boost::uuids::uuid kSagaNamespace = {{0x6b, 0x1f, 0x3a, 0x52, 0x9d, 0x04, 0x4c, 0x8e,
                                                0xa1, 0x37, 0x25, 0xe0, 0xc4, 0x7b, 0x9f, 0x13}};

constexpr std::string_view kOrderPrefix = "order-";

// Every command of a reaction shares the trigger's correlation id (the order's conversation,
// started by PlaceOrder) and names the trigger as its cause.
annals::CommandContext context_for(const annals::RecordedEvent& trigger, std::string_view step) {
  const auto meta = annals::EventMetadata::of(trigger);
  return {
      .command_id = saga_command_id(trigger.id, step),
      .correlation_id = meta.correlation_id.empty() ? trigger.id.to_string() : meta.correlation_id,
      .causation_id = trigger.id.to_string(),
      .actor = std::string(kOrderSagaName)};
}

std::string order_id_of(const annals::RecordedEvent& event) {
  const std::string& stream = event.stream_id.value();
  if (stream.size() <= kOrderPrefix.size() ||
      stream.compare(0, kOrderPrefix.size(), kOrderPrefix) != 0) {
    throw annals::InvalidArgumentError("order saga: stream \"" + stream +
                                       "\" is not an order stream");
  }
  return stream.substr(kOrderPrefix.size());
}

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace

std::string saga_command_id(const annals::EventId& trigger_id, std::string_view step) {
  std::string name = trigger_id.to_string();
  name.push_back('/');
  name.append(step);
  boost::uuids::name_generator_sha1 generator(kSagaNamespace);
  return annals::EventId(generator(name)).to_string();
}

OrderSaga::OrderSaga(annals::CommandBus& bus, annals::EventStore& store,
                     const annals::EventRegistry& registry)
    : bus_(bus), registry_(registry), orders_(store, registry) {}

annals::EventFilter OrderSaga::filter() const {
  return {.category = std::string(Order::kCategory),
          .event_types = {
              std::string(OrderPlaced::kTypeName), std::string(OrderLineReserved::kTypeName),
              std::string(OrderLineRefused::kTypeName), std::string(OrderRejected::kTypeName)}};
}

void OrderSaga::handle(const annals::RecordedEvent& event) {
  const std::string order_id = order_id_of(event);
  for (const auto& decoded : registry_.decode<Order::Event>(event)) {
    std::visit(Overloaded{
                   [&](const OrderPlaced& e) { on_placed(event, order_id, e); },
                   [&](const OrderLineReserved& e) { on_line_reserved(event, order_id, e); },
                   [&](const OrderLineRefused& e) { on_line_refused(event, order_id, e); },
                   [&](const OrderRejected&) { on_rejected(event, order_id); },
                   [](const OrderConfirmed&) {},
               },
               decoded);
  }
}

// docs:begin shop-saga-placed
void OrderSaga::on_placed(const annals::RecordedEvent& event, const std::string& order_id,
                          const OrderPlaced& placed) {
  // Outcomes recorded by an earlier delivery of this event stand; only the rest is done.
  const auto order = orders_.load(order_id);
  const auto& state = order.state();
  if (state.status != Order::Status::kPlaced || !state.refused.empty()) return;
  for (const auto& line : placed.lines) {
    if (state.reserved.contains(line.sku)) continue;
    try {
      bus_.send(ReserveStock{line.sku, order_id, line.quantity},
                context_for(event, "reserve/" + line.sku));
    } catch (const InsufficientStock& refused) {
      bus_.send(RecordRefusal{order_id, line.sku, refused.requested(), refused.available()},
                context_for(event, "refused/" + line.sku));
      return;  // the order will be rejected: reserve nothing more for it
    }
    bus_.send(RecordReservation{order_id, line.sku}, context_for(event, "reserved/" + line.sku));
  }
}
// docs:end

// docs:begin shop-saga-outcomes
void OrderSaga::on_line_reserved(const annals::RecordedEvent& event, const std::string& order_id,
                                 const OrderLineReserved& reserved) {
  const auto order = orders_.load_at_version(order_id, event.version);
  const auto& state = order.state();
  if (state.status == Order::Status::kRejected) {
    // Stock reserved after the rejection: the rejection's releases did not include it.
    bus_.send(ReleaseStock{reserved.sku, order_id}, context_for(event, "release/" + reserved.sku));
  } else if (state.status == Order::Status::kPlaced && state.fully_reserved()) {
    try {
      bus_.send(ConfirmOrder{order_id}, context_for(event, "confirm"));
    } catch (const OrderAlreadyRejected&) {
      // Rejected meanwhile (say, by an operator): the rejection releases every line.
    }
  }
}

void OrderSaga::on_line_refused(const annals::RecordedEvent& event, const std::string& order_id,
                                const OrderLineRefused& refused) {
  const auto order = orders_.load_at_version(order_id, event.version);
  const auto& state = order.state();
  if (state.status != Order::Status::kPlaced || state.refused.size() != 1) return;
  bus_.send(RejectOrder{order_id, "insufficient stock of " + refused.sku + ": requested " +
                                      std::to_string(refused.requested) + ", available " +
                                      std::to_string(refused.available)},
            context_for(event, "reject"));
}

void OrderSaga::on_rejected(const annals::RecordedEvent& event, const std::string& order_id) {
  // The lines reserved when the order was rejected; later ones are released as they come.
  const auto order = orders_.load_at_version(order_id, event.version);
  for (const auto& sku : order.state().reserved) {
    bus_.send(ReleaseStock{sku, order_id}, context_for(event, "release/" + sku));
  }
}
// docs:end

}  // namespace shop
