#include "views.hpp"

#include <string>

#include "annals/eventstore/error.hpp"

namespace shop {

std::string id_of(const annals::StreamId& stream) {
  const std::string& value = stream.value();
  const auto dash = value.find('-');
  if (dash == std::string::npos || dash + 1 == value.size()) {
    throw annals::InvalidArgumentError("stream \"" + value + "\" has no id after its category");
  }
  return value.substr(dash + 1);
}

annals::EventFilter order_events() { return {.category = std::string(Order::kCategory)}; }

annals::EventFilter inventory_events() { return {.category = std::string(Inventory::kCategory)}; }

}  // namespace shop
