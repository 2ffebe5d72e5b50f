// Choosing a command's id (ARCHITECTURE decision 4: event ids derive from it).
#include "annals/framework/detail/command_identity.hpp"

#include <utility>

#include "annals/eventstore/types.hpp"

namespace annals::detail {

ResolvedContext::ResolvedContext(const CommandContext& context, std::string fingerprint)
    : caller_(context), has_caller_id_(!context.command_id.empty()) {
  if (has_caller_id_ && fingerprint.empty()) return;
  copy_.emplace(context);
  if (!has_caller_id_) copy_->command_id = EventId::generate().to_string();
  if (!fingerprint.empty()) copy_->fingerprint = std::move(fingerprint);
}

}  // namespace annals::detail
