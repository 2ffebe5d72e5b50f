// Routing a command to the handler of its aggregate type: the stream id text from the
// command's aggregate id member, and the routing errors. Internal to annals::framework
// (CommandBus); not part of the public API.
#pragma once

#include <concepts>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>

#include "annals/framework/decider.hpp"

namespace annals::detail {

/// The text of an aggregate id member: strings as they are, integers in decimal, or any type
/// with a to_string() method (EventId, ...).
template <typename Id>
std::string id_text(const Id& id) {
  if constexpr (std::is_convertible_v<const Id&, std::string_view>) {
    return std::string(std::string_view(id));
  } else if constexpr (std::is_integral_v<Id>) {
    return std::to_string(id);
  } else if constexpr (requires {
                         { id.to_string() } -> std::convertible_to<std::string>;
                       }) {
    return id.to_string();
  } else {
    static_assert(kAlwaysFalse<Id>,
                  "annals: an aggregate id member must be a string, an integer, or have a "
                  "to_string() method");
  }
}

/// Throws NotFoundError: no handler for `command`'s type.
[[noreturn]] void throw_no_handler(const std::type_info& command);
/// Throws InvalidArgumentError: `command`'s type already has a handler.
[[noreturn]] void throw_duplicate_handler(const std::type_info& command);

}  // namespace annals::detail
