// Typed reads of the global log and typed subscriptions: the store's raw read paths with
// every event dispatched through EventHandlers (upcast, decoded, handed to its handler).
#include "annals/framework/typed_events.hpp"

#include <memory>
#include <string>
#include <utility>

namespace annals {
namespace {

void require_handlers(const EventHandlers<>& handlers, const char* what) {
  if (handlers.empty()) {
    throw InvalidArgumentError(std::string(what) +
                               ": no typed handler is declared (use EventHandlers::on<E>())");
  }
}

}  // namespace

std::unique_ptr<Subscription> subscribe_typed(EventStore& store, EventHandlers<> handlers,
                                              SubscriptionOptions options) {
  require_handlers(handlers, "subscribe_typed");
  if (options.filter.event_types.empty()) options.filter.event_types = handlers.stored_types();
  auto shared = std::make_shared<const EventHandlers<>>(std::move(handlers));
  return store.subscribe(std::move(options), [shared](const RecordedEvent& event) {
    static_cast<void>(shared->dispatch(event));
  });
}

TypedReadResult read_all_typed(EventReader& reader, const EventHandlers<>& handlers,
                               ReadAllOptions options) {
  require_handlers(handlers, "read_all_typed");
  if (options.filter.event_types.empty()) options.filter.event_types = handlers.stored_types();
  TypedReadResult result;
  result.last_position = options.after;
  const auto events = reader.read_all(options);
  for (const auto& event : events) {
    result.handled += handlers.dispatch(event);
    ++result.read;
    result.last_position = event.position;
  }
  return result;
}

}  // namespace annals
