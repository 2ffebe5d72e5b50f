// The `annals projections ...` and `annals dead-letters ...` verbs, apart from
// command-line parsing, so that tests can run them against the in-memory stores.
// docs/cli.md is the reference for their behaviour and output.
//
// The CLI contains no projection code: it reads and writes the ProjectionStore that runners
// share (make_postgres_projection_store in the real tool). A rebuild is a request row that the
// projection's owning runner carries out; the CLI files it and follows the progress the owner
// reports.
//
// Every function validates its arguments and throws annals errors, or an ExitError for the
// outcomes that have exit codes of their own (unknown name 4, rebuild timed out 5, rebuild
// failed 1); src/main.cpp turns them into exit codes.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "annals/eventstore/event_store.hpp"
#include "annals/projections/projection_store.hpp"

namespace annals::cli {

/// Arguments of `annals projections list` and `annals projections status [NAME]`.
struct ProjectionStatusArgs {
  /// Only this projection (status NAME). Unknown: ExitError kNotFound.
  std::optional<std::string> name = std::nullopt;
  /// One JSON object per projection and line instead of a table.
  bool json = false;
  /// `status` adds the fencing token, events applied, last error, open rebuild and dead-letter
  /// counts to what `list` prints.
  bool detailed = false;
};

/// Prints the projections of `store` with their owner, position, lag behind `events`' head
/// (the difference of the positions' sequence numbers), state and lease expiry.
/// Throws: ExitError kNotFound for an unknown args.name; the stores' errors.
void projections_status(projections::ProjectionStore& store, EventReader& events,
                        const ProjectionStatusArgs& args, std::ostream& out);

/// Arguments of `annals projections rebuild NAME`.
struct RebuildArgs {
  std::string name{};
  /// File the request and return at once.
  bool no_wait = false;
  /// --json: one JSON object per step and line ({"event":"filed"|"waiting"|"running"|
  /// "progress"|"done", ...}) instead of text and the bar.
  bool json = false;
  /// Give up following after this long (exit 5; the rebuild goes on). Default: follow until it
  /// ends. Must be > 0.
  std::optional<double> timeout_seconds = std::nullopt;
  /// How often the request is read while following it.
  std::chrono::milliseconds poll_interval{200};
  /// Draw a progress bar in place (a terminal) instead of printing progress lines.
  bool terminal = false;
};

/// Files a rebuild request for args.name (or joins the open one) and, unless no_wait, follows
/// it until the owner reports it done, printing progress. Says so when no runner owns the
/// projection (the request then waits for one).
/// Throws: ExitError kNotFound (unknown projection), kError (the rebuild failed or its request
/// vanished), kTimeout (args.timeout_seconds elapsed); InvalidArgumentError (bad timeout);
/// the stores' errors.
void projections_rebuild(projections::ProjectionStore& store, const RebuildArgs& args,
                         std::ostream& out);

/// Arguments of `annals projections repartition NAME --partitions N`.
struct RepartitionArgs {
  std::string name{};
  int partitions = 0;
  /// How long to wait for runners' leases to be freed. Default 0: fail at once.
  double wait_seconds = 0;
  bool json = false;
};

/// Changes the number of partitions of args.name to args.partitions without applying events
/// (annals::projections::repartition_aligned): every current partition must be at one
/// position. Prints the new layout and its position.
/// Throws: ExitError kNotFound (unknown projection); InvalidArgumentError (bad count or wait,
/// partitions not at one position, open dead letters); UnavailableError (a runner still holds
/// a partition); the store's errors.
void projections_repartition(projections::ProjectionStore& store, const RepartitionArgs& args,
                             std::ostream& out);

/// Arguments of `annals dead-letters list`.
struct DeadLetterListArgs {
  std::optional<std::string> projection = std::nullopt;
  /// "parked", "retry-requested", "resolved" or "skipped".
  std::optional<std::string> state = std::nullopt;
  bool json = false;
};

/// Prints dead letters, oldest first, as a table or JSON lines.
/// Throws: InvalidArgumentError (unknown state); the store's errors.
void dead_letters_list(projections::ProjectionStore& store, const DeadLetterListArgs& args,
                       std::ostream& out);

/// Parses a dead-letter id given on the command line (an integer >= 1).
/// Throws: InvalidArgumentError.
[[nodiscard]] std::int64_t parse_dead_letter_id(const std::string& text);

/// Asks the owner of the dead letter's projection to apply it again.
/// Throws: ExitError kNotFound (unknown id), InvalidArgumentError (resolved or skipped).
void dead_letters_retry(projections::ProjectionStore& store, std::int64_t id, std::ostream& out);

/// Gives up on a dead letter.
/// Throws: ExitError kNotFound (unknown id), InvalidArgumentError (already resolved).
void dead_letters_skip(projections::ProjectionStore& store, std::int64_t id, std::ostream& out);

}  // namespace annals::cli
