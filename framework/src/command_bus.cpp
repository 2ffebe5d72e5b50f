// The non-template half of the command bus: its routing errors. The rest is in the detail
// headers' .cpp files (command_identity, resend, send_attempts, recent_commands).
#include "annals/framework/command_bus.hpp"

#include <boost/core/demangle.hpp>

#include "annals/eventstore/error.hpp"

namespace annals::detail {

void throw_no_handler(const std::type_info& command) {
  throw NotFoundError("command bus: no handler for command type " +
                      boost::core::demangle(command.name()) +
                      " (register one with bus.handle<Decider>(&Command::id))");
}

void throw_duplicate_handler(const std::type_info& command) {
  throw InvalidArgumentError("command bus: command type " + boost::core::demangle(command.name()) +
                             " already has a handler");
}

}  // namespace annals::detail
