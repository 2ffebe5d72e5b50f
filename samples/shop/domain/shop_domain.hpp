// The shop sample's domain in one include: the Order and Inventory deciders, and the wiring
// of their events and commands.
//
//   annals::EventRegistry registry;
//   shop::register_events(registry);
//   annals::CommandBus bus(*store, registry);
//   shop::register_handlers(bus);
//   bus.send(shop::ReceiveStock{"apple", 10});
//
// Thread safety: see each function.
#pragma once

#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "inventory.hpp"
#include "order.hpp"

namespace shop {

/// Registers every event of the shop (Order's and Inventory's) in `registry`.
/// Thread safety: a set-up call, as EventRegistry::register_event.
void register_events(annals::EventRegistry& registry);

/// Routes every shop command to its decider: one line per command. Requires: the events are
/// registered in the bus's registry. Thread safety: a set-up call, as CommandBus::handle.
void register_handlers(annals::CommandBus& bus);

}  // namespace shop
