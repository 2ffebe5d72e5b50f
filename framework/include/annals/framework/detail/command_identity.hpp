// How a command is identified when its events are written: its command id (the caller's, or a
// fresh one) and, for a FingerprintedCommand, its fingerprint. Internal to annals::framework
// (Repository::save, CommandBus::send); not part of the public API.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "annals/framework/metadata.hpp"

namespace annals::detail {

/// command_fingerprint() of `command`, or empty when C is not a FingerprintedCommand.
/// Throws: what C's JSON conversion throws. Cost: one JSON dump and one SHA-1, or none.
template <typename C>
std::string fingerprint_of(const C& command) {
  if constexpr (FingerprintedCommand<C>) {
    return command_fingerprint(C::kCommandName, nlohmann::json(command));
  } else {
    return {};
  }
}

/// The context a command's events are written with, its command id resolved: the only place
/// that chooses a command id. The caller's context is used as it is when it has a command id
/// and no fingerprint is to be added (no copy); otherwise a copy gets a fresh UUIDv7 command id
/// (when the caller gave none) and `fingerprint` (when not empty).
/// Thread safety: a value; the caller's context must outlive it.
class ResolvedContext {
 public:
  explicit ResolvedContext(const CommandContext& context, std::string fingerprint = {});

  /// The context to write with; its command id is never empty.
  [[nodiscard]] const CommandContext& context() const noexcept { return copy_ ? *copy_ : caller_; }
  [[nodiscard]] const std::string& command_id() const noexcept { return context().command_id; }
  /// The caller chose the command id, so the command may be a re-send of an earlier one; a
  /// fresh id never is.
  [[nodiscard]] bool has_caller_id() const noexcept { return has_caller_id_; }

 private:
  const CommandContext& caller_;
  std::optional<CommandContext> copy_;
  bool has_caller_id_;
};

}  // namespace annals::detail
