// The verbs of the `annals` tool, apart from command-line parsing, so that tests can run them
// against any EventStore. docs/cli.md is the reference for their behaviour and output.
//
// Every function validates its arguments and throws annals errors; src/main.cpp turns them into
// exit codes. Output goes to `out` as JSON lines (json_output.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"

namespace annals {
class EventRegistry;  // annals/framework/event_registry.hpp; only read and read_all take one
}  // namespace annals

namespace annals::cli {

/// Events fetched per round trip while `read` and `read-all` page through a long result.
inline constexpr std::size_t kDefaultPageSize = 1000;

/// Arguments of `annals append STREAM TYPE [DATA_JSON]`.
struct AppendArgs {
  std::string stream{};
  std::string type{};
  /// The event's data as JSON text; empty means "read it from the input stream".
  std::optional<std::string> data_json = std::nullopt;
  /// "any", "no-stream", "exists" or a version N >= 0 (0 = the stream has no events yet).
  std::string expected_version = "any";
  /// A UUID; generated (time-ordered) when empty.
  std::optional<std::string> event_id = std::nullopt;
  /// The event's metadata as JSON text; default {}.
  std::optional<std::string> metadata_json = std::nullopt;
  /// The data's schema version, 1..2^31-1.
  std::int64_t schema_version = 1;
};

/// The output options `read`, `read-all` and `tail` share.
struct EventOutputArgs {
  /// Only events recorded at or after / at or before these times (RFC 3339, or a date).
  std::optional<std::string> since = std::nullopt;
  std::optional<std::string> until = std::nullopt;
  /// Only events of these types (any of them).
  std::vector<std::string> types{};
  /// --json: JSON lines even on a terminal.
  bool json = false;
  /// One line for people per event instead of JSON lines; run.cpp sets it when standard
  /// output is a terminal and --json was not given.
  bool human = false;
};

/// Arguments of `annals read STREAM`.
struct ReadArgs {
  std::string stream{};
  /// First version returned (>= 1). Default: 1 forward, the last version backward.
  std::optional<std::int64_t> from = std::nullopt;
  /// Most events printed (>= 0). Default: all.
  std::optional<std::int64_t> limit = std::nullopt;
  bool backward = false;
  /// The stream as it was: only events recorded at or before this time (--as-of), or of at
  /// most this version (--at-version).
  std::optional<std::string> as_of = std::nullopt;
  std::optional<std::int64_t> at_version = std::nullopt;
  EventOutputArgs output{};
  std::size_t page_size = kDefaultPageSize;
};

/// Arguments of `annals read-all` and `annals tail`.
struct ReadAllArgs {
  /// A position string; events strictly after it are printed. Default: from the start.
  std::optional<std::string> from = std::nullopt;
  /// Most events printed (>= 0). Default: all, up to the end of the settled log.
  std::optional<std::int64_t> limit = std::nullopt;
  /// Only streams of this category (the stream id before its first '-').
  std::optional<std::string> category = std::nullopt;
  /// --follow (or the verb `tail`): go on printing new events as they settle.
  bool follow = false;
  EventOutputArgs output{};
  std::size_t page_size = kDefaultPageSize;
};

/// Parses JSON text given on the command line or stdin; `what` names it in the error.
/// Throws: InvalidArgumentError naming `what` and the parser's complaint, or the depth when
/// the text nests deeper than kMaxJsonDepth (checked before parsing).
[[nodiscard]] nlohmann::json parse_json_argument(const std::string& text, const std::string& what);

/// Appends one event and prints the append result as one JSON line. An exact re-send of a
/// stored event id prints the original result.
/// Throws: InvalidArgumentError (bad arguments), ConcurrencyError, IdempotencyError, and the
/// store's UnavailableError / OutcomeUnknownError (whose message then names the event id to
/// re-send with --event-id).
void append(EventWriter& store, const AppendArgs& args, std::istream& in, std::ostream& out);

/// Prints a stream's events as JSON lines, paging through it. An event the store could not
/// decode is printed too, as stored, with the reason under the key "undecodable"
/// (to_json_line), and the reading goes on.
/// Returns: the number of undecodable events printed (main.cpp exits 7 when it is not 0).
/// Throws: InvalidArgumentError (bad arguments), the store's errors.
///
/// With a `registry` (a CLI built with the user's registry, annals/cli/run.hpp), each event is
/// printed upcast to its current schema, one line per part of a split (to_json_line with the
/// UpcastEvent); an event the registry cannot upcast (unknown type, a failing upcaster) is
/// printed as stored with the reason under "upcast_error" and counted as undecodable.
std::size_t read(EventReader& store, const ReadArgs& args, std::ostream& out,
                 const EventRegistry* registry = nullptr);

/// Prints global-log events as JSON lines, paging until the limit or the end of the settled log.
/// Undecodable events as in read(). With a `registry`, events are printed upcast as in read(),
/// and each --type also selects the stored names that upcast into it
/// (EventRegistry::source_types: events stored before a rename).
/// Returns: the number of undecodable events printed.
/// Throws: InvalidArgumentError (bad arguments), the store's errors.
std::size_t read_all(EventReader& store, const ReadAllArgs& args, std::ostream& out,
                     const EventRegistry* registry = nullptr);

/// `read-all --follow` / `tail`: prints the settled log from args.from as read_all() does,
/// then every new event as it settles, in log order, never skipping one (a subscription),
/// flushing `out` after each, until args.limit events were printed or `interrupted()` returns
/// true (checked at least every 100 ms; `annals` passes "SIGINT or SIGTERM is pending").
/// Returns: the number of undecodable events printed.
/// `reveal`, when set, opens each event's personal data before it is printed (as the reader
/// of read_all() does; forget_command.hpp's personal_data_revealer).
/// Throws: InvalidArgumentError (bad arguments; --until with --follow), the subscription's
/// stop reason when it stops on its own (an error it cannot retry).
std::size_t follow_all(EventStore& store, const ReadAllArgs& args, std::ostream& out,
                       const EventRegistry* registry, const std::function<bool()>& interrupted,
                       const std::function<void(RecordedEvent&)>& reveal = nullptr);

/// The arguments of `annals migrate`.
struct MigrateArgs {
  bool status_only = false;
  /// --json: one JSON object ({"applied":[...],"roles":{...}|null}), or with --status one
  /// object per migration ({"name":..,"applied":bool}).
  bool json = false;
  /// --roles: create and grant the role layout (docs/security.md).
  bool roles = false;
  /// --owner-role, --writer-role, --reader-role, --auditor-role, --read-model-schema.
  postgres::RoleLayout layout;
  /// --step-timeout: MigrateOptions::step_timeout in seconds (0: no limit).
  double step_timeout_seconds = 1800;
  /// --partitioned-log: partition annals.events (MigrateOptions::partitioned_log).
  bool partitioned_log = false;
  /// --partition-size: positions per partition.
  std::int64_t partition_size = 10'000'000;
};

/// Applies pending migrations and prints one line per migration applied, or that the schema is
/// up to date; with `roles`, also configures the role layout and prints its roles. With
/// `status_only`, prints every known migration and whether it is applied.
/// Throws: the migration runner's errors.
void migrate(const std::string& connection_string, const MigrateArgs& args, std::ostream& out);

}  // namespace annals::cli
