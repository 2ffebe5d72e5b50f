// `annals dead-letters retry|skip`: one dead letter by id, or every open one of a projection
// with --projection P --all (docs/cli.md).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "annals/projections/projection_store.hpp"

namespace annals::cli {

enum class DeadLetterAction { kRetry, kSkip };

/// Arguments of `annals dead-letters retry|skip`.
struct DeadLetterActionArgs {
  /// The dead letter's id; exclusive with `all`.
  std::optional<std::string> id = std::nullopt;
  /// With `all`: the projection whose dead letters to act on (required).
  std::optional<std::string> projection = std::nullopt;
  /// Every dead letter of `projection` the action applies to: retry the parked ones; skip the
  /// parked and retry-requested ones.
  bool all = false;
  bool json = false;
};

/// Retries or skips one dead letter or, with --all, each open one of a projection, and prints
/// what it did: a line of text, or one JSON object with --json ({"action","id","state"} for
/// one; {"action","projection","ids","changed_meanwhile"} for --all, where changed_meanwhile
/// lists letters another session resolved or skipped between the listing and the action).
/// Throws: InvalidArgumentError (no id and no --all, both, --all without --projection, a bad
/// id; the single letter is already resolved or skipped), ExitError kNotFound (unknown id),
/// the store's errors.
void dead_letters_act(projections::ProjectionStore& store, DeadLetterAction action,
                      const DeadLetterActionArgs& args, std::ostream& out);

}  // namespace annals::cli
