// The command line of the `annals` tool (see command_line.hpp): a table of verbs (kVerbs), each
// declaring its arguments on its CLI::App and naming the commands it runs.
#include "command_line.hpp"

#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "annals/eventstore/error.hpp"
#include "stream_command_line.hpp"

namespace annals::cli {
namespace {

constexpr const char* kFooter =
    "Connection: --db URL, or ANNALS_DATABASE_URL when --db is not given.\n"
    "Exit codes: 0 ok, 1 error (server unavailable, internal, rebuild failed), 2 invalid input\n"
    "            or usage, 3 expected-version conflict, 4 no such projection or dead letter,\n"
    "            5 rebuild --timeout elapsed, 6 verify (or import) found problems,\n"
    "            7 some events printed undecodable, 8 restore-check needs --fix. Errors go\n"
    "            to stderr as `annals: <message>`.\n"
    "Reference: docs/cli.md. Run `annals VERB --help` for a verb's arguments.";

// A command that runs: a verb (`migrate`) or a verb's subcommand (`projections list`).
struct ParsedCommand {
  const CLI::App* app;
  CommandId id;
};

void add_limit(CLI::App& verb, std::optional<std::int64_t>& limit) {
  verb.add_option_function<std::int64_t>(
      "--limit", [&limit](const std::int64_t& n) { limit = n; },
      "Print at most N events (N >= 0). Default: all");
}

// `--json` of the listing commands.
void add_json_lines_flag(CLI::App& command, bool& json, const char* what) {
  command.add_flag("--json", json, std::string("One JSON object per ") + what + " and line");
}

// --- The verbs: each declares its arguments on its CLI::App and names the commands it runs
// ---------

std::vector<ParsedCommand> declare_migrate(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.migrate;
  verb.add_flag("--status", args.status_only,
                "Only list every known migration as `applied` or `pending`");
  verb.add_flag("--json", args.json,
                "JSON: one object (applied, roles), or with --status one object per migration");
  auto* roles = verb.add_flag("--roles", args.roles,
                              "Also create (when missing) the owner, writer, reader and auditor "
                              "roles, hand the store to the owner and grant each role its "
                              "privileges (needs a superuser or CREATEROLE; docs/security.md)");
  const auto role = [&](const char* name, std::string& value, const char* help) {
    verb.add_option(name, value, help)->capture_default_str()->needs(roles);
  };
  verb.add_option("--step-timeout", args.step_timeout_seconds,
                  "Fail (exit 1, server unavailable) when one step (a migration, the roles, "
                  "the grants) runs longer than SECONDS; run migrate again. 0: no limit. "
                  "Default 1800")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 604800.0));
  auto* partitioned = verb.add_flag(
      "--partitioned-log", args.partitioned_log,
      "Partition annals.events by ranges of global positions (fresh or existing store; "
      "docs/scaling.md, \"Partitioned log\")");
  verb.add_option("--partition-size", args.partition_size,
                  "Positions per partition (with --partitioned-log). Default 10000000")
      ->type_name("N")
      ->check(CLI::Range(std::int64_t{1}, std::numeric_limits<std::int64_t>::max() / 4))
      ->needs(partitioned);
  role("--owner-role", args.layout.owner, "Owner role (with --roles)");
  role("--writer-role", args.layout.writer, "Writer role (with --roles)");
  role("--reader-role", args.layout.reader, "Reader role (with --roles)");
  role("--auditor-role", args.layout.auditor, "Auditor role (with --roles)");
  role("--read-model-schema", args.layout.read_model_schema,
       "Schema where the writer may create read-model tables; empty for none (with --roles)");
  return {{&verb, CommandId::kMigrate}};
}

std::vector<ParsedCommand> declare_append(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.append;
  verb.add_option("STREAM", args.stream, "Stream id, `category-id` (e.g. account-42)")->required();
  verb.add_option("TYPE", args.type, "Event type name (e.g. MoneyDeposited)")->required();
  verb.add_option_function<std::string>(
      "DATA_JSON", [&args](const std::string& json) { args.data_json = json; },
      "Event data as JSON; read from stdin when omitted");
  verb.add_option("--expected-version", args.expected_version,
                  "any (default), no-stream, exists, or N: the stream must be at version N "
                  "(0 = no events yet). A mismatch exits 3")
      ->type_name("any|no-stream|exists|N");
  verb.add_option_function<std::string>(
          "--event-id", [&args](const std::string& id) { args.event_id = id; },
          "Event UUID (default: a new time-ordered one). Re-sending a stored id returns the "
          "original result")
      ->type_name("UUID");
  verb.add_option_function<std::string>(
          "--metadata", [&args](const std::string& json) { args.metadata_json = json; },
          "Event metadata, a JSON object (default {})")
      ->type_name("JSON");
  verb.add_option("--schema-version", args.schema_version, "Schema version of the data (default 1)")
      ->type_name("N");
  return {{&verb, CommandId::kAppend}};
}

// --since, --until, --type and --json of the verbs that print events.
void add_event_output(CLI::App& verb, EventOutputArgs& args) {
  verb.add_option_function<std::string>(
          "--since", [&args](const std::string& t) { args.since = t; },
          "Only events recorded at or after TIME (RFC 3339 with a zone, or a date: "
          "2026-11-23T14:31:00Z, 2026-11-23T15:31:00+01:00, 2026-11-23)")
      ->type_name("TIME");
  verb.add_option_function<std::string>(
          "--until", [&args](const std::string& t) { args.until = t; },
          "Only events recorded at or before TIME")
      ->type_name("TIME");
  verb.add_option("--type", args.types, "Only events of this type (repeatable)")
      ->type_name("T")
      ->allow_extra_args(false);
  verb.add_flag("--json", args.json,
                "JSON lines even on a terminal (the output is JSON lines whenever it is not one)");
}

std::vector<ParsedCommand> declare_read(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.read;
  verb.add_option("STREAM", args.stream, "Stream id")->required();
  verb.add_option_function<std::int64_t>(
          "--from", [&args](const std::int64_t& v) { args.from = v; },
          "First version printed (>= 1). Default: the first (or, with --backward, the last)")
      ->type_name("N");
  add_limit(verb, args.limit);
  verb.add_flag("--backward", args.backward, "Newest first");
  auto* as_of = verb.add_option_function<std::string>(
                        "--as-of", [&args](const std::string& t) { args.as_of = t; },
                        "The stream as it was at TIME: only events recorded at or before it")
                    ->type_name("TIME");
  verb.add_option_function<std::int64_t>(
          "--at-version", [&args](const std::int64_t& v) { args.at_version = v; },
          "The stream as it was at version N: only events up to it")
      ->type_name("N")
      ->excludes(as_of);
  add_event_output(verb, args.output);
  return {{&verb, CommandId::kRead}};
}

// The arguments read-all and tail share.
void add_log_options(CLI::App& verb, ReadAllArgs& args) {
  verb.add_option_function<std::string>(
          "--from", [&args](const std::string& p) { args.from = p; },
          "Continue strictly after this position (an event's `position` value)")
      ->type_name("POSITION");
  add_limit(verb, args.limit);
  verb.add_option_function<std::string>(
          "--category", [&args](const std::string& c) { args.category = c; },
          "Only streams of this category (the stream id before its first '-')")
      ->type_name("C");
  add_event_output(verb, args.output);
}

std::vector<ParsedCommand> declare_read_all(CLI::App& verb, CommandLine& cl) {
  add_log_options(verb, cl.read_all);
  verb.add_flag("--follow", cl.read_all.follow,
                "Go on printing new events as they settle, in order, never skipping one, "
                "until Ctrl-C (the same as `annals tail`)");
  return {{&verb, CommandId::kReadAll}};
}

std::vector<ParsedCommand> declare_tail(CLI::App& verb, CommandLine& cl) {
  add_log_options(verb, cl.read_all);
  return {{&verb, CommandId::kTail}};
}

std::vector<ParsedCommand> declare_projections(CLI::App& verb, CommandLine& cl) {
  verb.require_subcommand(1);
  verb.fallthrough();
  auto* list = verb.add_subcommand(
      "list", "A table of projections: name, owner, position, lag, state, lease expiry");
  add_json_lines_flag(*list, cl.projections_list.json, "projection");

  auto* detailed = verb.add_subcommand(
      "status", "Like list, plus fencing token, events applied, errors, rebuilds, dead letters");
  detailed->add_option_function<std::string>(
      "NAME", [&cl](const std::string& n) { cl.projections_status.name = n; },
      "Only this projection (exit 4 when unknown)");
  add_json_lines_flag(*detailed, cl.projections_status.json, "projection");

  auto& args = cl.rebuild;
  auto* rebuild = verb.add_subcommand(
      "rebuild",
      "Ask the owning runner to reset the projection and replay the log; follow its progress");
  rebuild->add_option("NAME", args.name, "The projection (exit 4 when unknown)")->required();
  rebuild->add_flag("--no-wait", args.no_wait, "File the request and exit 0 at once");
  rebuild->add_flag("--json", args.json,
                    "One JSON object per step and line (filed, waiting, running, progress, done)");
  rebuild
      ->add_option_function<double>(
          "--timeout", [&args](const double& s) { args.timeout_seconds = s; },
          "Stop following after SECONDS with exit 5 (the rebuild goes on). Default: no limit")
      ->type_name("SECONDS");
  auto& parts = cl.repartition;
  auto* repartition = verb.add_subcommand(
      "repartition",
      "Change how many partitions a partitioned projection has (its runners stopped, its "
      "partitions at one position)");
  repartition->add_option("NAME", parts.name, "The projection (exit 4 when unknown)")->required();
  repartition->add_option("--partitions", parts.partitions, "The new count, 1 to 256")
      ->required()
      ->type_name("N");
  repartition
      ->add_option("--wait", parts.wait_seconds,
                   "Wait up to SECONDS for runners' leases to be freed. Default 0")
      ->type_name("SECONDS");
  repartition->add_flag("--json", parts.json, "One JSON object with the new layout");
  return {{list, CommandId::kProjectionsList},
          {detailed, CommandId::kProjectionsStatus},
          {rebuild, CommandId::kProjectionsRebuild},
          {repartition, CommandId::kProjectionsRepartition}};
}

std::vector<ParsedCommand> declare_dead_letters(CLI::App& verb, CommandLine& cl) {
  verb.require_subcommand(1);
  verb.fallthrough();
  auto& args = cl.dead_letters_list;
  auto* list = verb.add_subcommand("list", "Dead letters, oldest first, as a table");
  list->add_option_function<std::string>(
          "--projection", [&args](const std::string& p) { args.projection = p; },
          "Only this projection's")
      ->type_name("P");
  list->add_option_function<std::string>(
          "--state", [&args](const std::string& s) { args.state = s; }, "Only those in state S")
      ->type_name("parked|retry-requested|resolved|skipped");
  add_json_lines_flag(*list, args.json, "dead letter");

  const auto declare_action = [&cl](CLI::App& action, const char* what) {
    auto& a = cl.dead_letter_action;
    action.add_option_function<std::string>(
        "ID", [&a](const std::string& id) { a.id = id; },
        std::string("The dead letter's id (or --projection P --all)"));
    action
        .add_option_function<std::string>(
            "--projection", [&a](const std::string& p) { a.projection = p; },
            std::string("With --all: the projection whose dead letters to ") + what)
        ->type_name("P");
    action.add_flag("--all", a.all,
                    std::string("Every open dead letter of --projection P: ") + what);
    action.add_flag("--json", a.json, "One JSON object instead of text");
  };
  auto* retry = verb.add_subcommand(
      "retry",
      "Ask the owning runner to apply a dead letter (or, with --all, each parked one) "
      "again (after a fix)");
  declare_action(*retry, "retry (the parked ones)");
  auto* skip = verb.add_subcommand(
      "skip",
      "Give up on a dead letter (or, with --all, on each open one); it stays listed as "
      "skipped");
  declare_action(*skip, "skip (parked and retry-requested)");
  return {{list, CommandId::kDeadLettersList},
          {retry, CommandId::kDeadLettersRetry},
          {skip, CommandId::kDeadLettersSkip}};
}

// --progress-timeout of verify and anchor: how long the server may send nothing.
void add_progress_timeout(CLI::App& verb, double& seconds) {
  verb.add_option("--progress-timeout", seconds,
                  "Fail (exit 1, server unavailable) when the server sends nothing for SECONDS; "
                  "0: no limit. Default 60")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.0, 86400.0));
}

std::vector<ParsedCommand> declare_verify(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.verify;
  verb.add_option_function<std::string>(
          "--stream", [&args](const std::string& s) { args.stream = s; }, "Only this stream")
      ->type_name("STREAM");
  verb.add_option("--max-findings", args.max_findings, "Most findings printed (default 100)")
      ->type_name("N")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  verb.add_flag("--json", args.json, "One JSON object with counts, digest and findings");
  verb.add_option("--anchor", args.anchor_files,
                  "Prove the log up to this anchor (`annals anchor` output) unchanged; repeatable")
      ->type_name("FILE")
      ->allow_extra_args(false);
  verb.add_flag("--full", args.full,
                "With --anchor: re-hash from the start instead of resuming from a recorded "
                "older anchor");
  add_progress_timeout(verb, args.progress_timeout_seconds);
  return {{&verb, CommandId::kVerify}};
}

std::vector<ParsedCommand> declare_anchor(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.anchor;
  verb.add_flag("--record", args.record,
                "Also store it in annals.anchors (lets verify --anchor resume from it)");
  verb.add_flag("--json", args.json, "JSON output (the default; accepted for scripts)");
  add_progress_timeout(verb, args.progress_timeout_seconds);
  return {{&verb, CommandId::kAnchor}};
}

std::vector<ParsedCommand> declare_restore_check(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.restore_check;
  verb.add_flag("--fix", args.fix,
                "Set the transaction-id offset so that stores open (as the store's owner, with "
                "no other session connected); safe to repeat");
  verb.add_flag("--json", args.json, "One JSON object instead of text");
  return {{&verb, CommandId::kRestoreCheck}};
}

std::vector<ParsedCommand> declare_partitions(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.partitions;
  auto* ensure = verb.add_flag("--ensure", args.ensure,
                               "Create the partitions due ahead of the log's position (cron)");
  verb.add_option_function<int>(
          "--ahead", [&args](const int& n) { args.ahead = n; },
          "Keep N empty ranges ahead from now on (with --ensure; default 2). Before importing E "
          "events: E / partition size + 2")
      ->type_name("N")
      ->check(CLI::Range(1, 1'000'000))
      ->needs(ensure);
  auto* archive = verb.add_option("--archive", args.archive,
                                  "Detach this partition and move it to the archive schema")
                      ->type_name("NAME");
  verb.add_option("--to", args.archive_schema, "Archive schema (with --archive)")
      ->type_name("SCHEMA")
      ->capture_default_str()
      ->needs(archive);
  auto* restore = verb.add_option("--restore", args.restore, "Attach an archived partition again")
                      ->type_name("NAME");
  ensure->excludes(archive)->excludes(restore);
  archive->excludes(restore);
  verb.add_flag("--json", args.json, "JSON: one object per partition and line, or per action");
  return {{&verb, CommandId::kPartitions}};
}

std::vector<ParsedCommand> declare_export(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.export_events;
  verb.add_option("--category", args.category,
                  "Only streams of this category (the stream id up to its first '-')");
  verb.add_option("--from", args.from, "Only events after this position (as read-all prints it)")
      ->type_name("POSITION");
  verb.add_option("--output", args.output, "Write to FILE instead of standard output")
      ->type_name("FILE");
  return {{&verb, CommandId::kExport}};
}

std::vector<ParsedCommand> declare_streams(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.streams;
  verb.add_option_function<std::string>(
          "--category", [&args](const std::string& c) { args.category = c; },
          "Only streams of this category (the stream id before its first '-')")
      ->type_name("C");
  verb.add_option_function<std::string>(
          "--prefix", [&args](const std::string& p) { args.prefix = p; },
          "Only streams whose id starts with P")
      ->type_name("P");
  verb.add_option_function<std::string>(
          "--after", [&args](const std::string& s) { args.after = s; },
          "Continue after this stream id (the last one listed before)")
      ->type_name("STREAM");
  verb.add_option("--limit", args.limit, "List at most N streams (default 1000)")->type_name("N");
  add_json_lines_flag(verb, args.json, "stream");
  return {{&verb, CommandId::kStreams}};
}

std::vector<ParsedCommand> declare_stats(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.stats;
  verb.add_option("--top", args.top, "List the N categories with the most events (default 10)")
      ->type_name("N");
  verb.add_flag("--json", args.json, "One JSON object instead of text");
  return {{&verb, CommandId::kStats}};
}

std::vector<ParsedCommand> declare_completion(CLI::App& verb, CommandLine& cl) {
  verb.add_option("SHELL", cl.completion_shell, "The shell (bash)")
      ->check(CLI::IsMember({"bash"}))
      ->required();
  return {{&verb, CommandId::kCompletion}};
}

std::vector<ParsedCommand> declare_import(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.import_events;
  verb.add_option("FILE", args.file, "An export (NDJSON, as `annals export` writes it)")
      ->required();
  verb.add_flag("--json", args.json, "One JSON object instead of text");
  return {{&verb, CommandId::kImport}};
}

std::vector<ParsedCommand> declare_delete_stream(CLI::App& verb, CommandLine& cl) {
  declare_delete_stream_args(verb, cl.delete_stream);
  return {{&verb, CommandId::kDeleteStream}};
}

std::vector<ParsedCommand> declare_stream_meta(CLI::App& verb, CommandLine& cl) {
  declare_stream_meta_args(verb, cl.stream_meta);
  return {{&verb, CommandId::kStreamMeta}};
}

std::vector<ParsedCommand> declare_forget(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.forget;
  verb.add_option("SUBJECT", args.subject,
                  "The subject whose personal data is forgotten (e.g. account-42)")
      ->required();
  verb.add_flag("--json", args.json, "One JSON object instead of text");
  return {{&verb, CommandId::kForget}};
}

std::vector<ParsedCommand> declare_relay(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.relay;
  auto* nats = verb.add_option("--nats", args.nats_url,
                               "NATS server URL(s), comma-separated; messages go to JetStream")
                   ->type_name("URL")
                   ->capture_default_str();
  verb.add_option_function<std::string>(
          "--webhook", [&args](const std::string& u) { args.webhook_url = u; },
          "POST each message to this http:// endpoint instead of NATS")
      ->type_name("URL")
      ->excludes(nats);
  verb.add_option("--name", args.name,
                  "The relay's name: key of its checkpoint, lease and dead letters")
      ->capture_default_str();
  verb.add_option("--subject-prefix", args.subject_prefix, "Subjects are PREFIX.<category>.<type>")
      ->type_name("PREFIX")
      ->capture_default_str();
  verb.add_option("--category", args.categories, "Only streams of this category (repeatable)")
      ->type_name("C")
      ->allow_extra_args(false);
  verb.add_option("--type", args.event_types, "Only events of this type (repeatable)")
      ->type_name("T")
      ->allow_extra_args(false);
  verb.add_option_function<std::string>(
          "--create-stream", [&args](const std::string& s) { args.create_stream = s; },
          "Create this JetStream stream (file storage, subjects PREFIX.>) when it is missing")
      ->type_name("NAME");
  verb.add_option("--batch-size", args.batch_size, "Events per batch (one checkpoint write)")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}));
  verb.add_option("--ack-timeout", args.ack_timeout_seconds,
                  "Longest wait for the receiver's acknowledgement of one message")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 3600.0));
  verb.add_option("--on-failure", args.on_failure,
                  "A message the receiver refuses: stop the relay (exit 1), or park the event "
                  "as a dead letter and go on")
      ->type_name("stop|dead-letter")
      ->capture_default_str()
      ->check(CLI::IsMember({"stop", "dead-letter"}));
  verb.add_option("--status-interval", args.status_interval_seconds,
                  "A status line at least this often, and whenever the state changes")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  verb.add_flag("--json", args.json, "One JSON object per status line");
  verb.add_option_function<std::string>(
          "--session-db", [&args](const std::string& u) { args.session_db = u; },
          "--db is a transaction-mode pooler (PgBouncer): send unnamed statements through it and "
          "open the connections that need a session (LISTEN, the lease's presence lock) to "
          "this server URL instead (operations.md)")
      ->type_name("URL");
  return {{&verb, CommandId::kRelay}};
}

// One verb: its name and help line, and the function that declares its arguments (and its
// subcommands) on the verb's CLI::App and returns the commands it runs.
struct Verb {
  const char* name;
  const char* description;
  std::vector<ParsedCommand> (*declare)(CLI::App& verb, CommandLine& cl);
};

// The verbs, in the order `annals --help` lists them.
constexpr Verb kVerbs[] = {
    {"migrate", "Apply pending schema migrations (safe to repeat, or to run concurrently)",
     declare_migrate},
    {"append", "Append one event to a stream; prints the result as one JSON object",
     declare_append},
    {"read", "Print a stream's events as JSON lines (as of a time or version, if asked)",
     declare_read},
    {"read-all", "Print the global log as JSON lines, in log order", declare_read_all},
    {"tail", "Follow the global log live (read-all --follow): new events as they settle",
     declare_tail},
    {"delete-stream",
     "Soft-delete a stream: append a tombstone; its events stay in the log (stream-lifecycle.md)",
     declare_delete_stream},
    {"stream-meta", "Print a stream's state and retention rules, or set the rules",
     declare_stream_meta},
    {"projections",
     "Projections: status, lag, rebuilds and partitions (list, status, rebuild, repartition)",
     declare_projections},
    {"dead-letters", "Events projections parked after failing (list, retry, skip)",
     declare_dead_letters},
    {"verify", "Recompute every stream's hash chain; exit 6 when history was tampered with",
     declare_verify},
    {"anchor", "Print an anchor: a digest of the settled log up to its newest position",
     declare_anchor},
    {"restore-check",
     "After a restore into another cluster: check (and with --fix set) the transaction-id "
     "offset; exit 8 when a fix is needed",
     declare_restore_check},
    {"partitions",
     "A partitioned log's partitions: list, create ahead (--ensure), archive or restore one",
     declare_partitions},
    {"export", "Write the settled log as NDJSON (every stored column), in log order",
     declare_export},
    {"import", "Verify every hash chain of an export, then store its events; exit 6 if changed",
     declare_import},
    {"streams", "List streams: version, events, created, updated", declare_streams},
    {"stats", "Events, streams, bytes, recent append rates and the largest categories",
     declare_stats},
    {"completion", "Print the shell completion script (bash) for this tool", declare_completion},
    {"forget",
     "Destroy a subject's key: its personal data reads as [redacted] from then on; appends "
     "SubjectForgotten",
     declare_forget},
    {"relay",
     "Publish selected events to NATS JetStream (or a webhook), in order, at least once, until "
     "SIGTERM (relay.md)",
     declare_relay},
};

// "migrate, append, ...": the verbs for error messages.
std::string verb_list() {
  std::string list;
  for (const auto& verb : kVerbs) list += (list.empty() ? "" : ", ") + std::string(verb.name);
  return list;
}

// CLI11 would report an unknown verb as an unexpected extra argument; name it plainly instead.
// Top-level arguments are only --db [VALUE], --help and --version, so the first word that is
// neither an option nor --db's value is the verb.
void check_verb(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--db") {
      ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;
    for (const auto& verb : kVerbs) {
      if (arg == verb.name) return;
    }
    throw InvalidArgumentError("unknown command '" + std::string(arg) +
                               "' (commands: " + verb_list() + ")");
  }
  if (argc <= 1) {
    throw InvalidArgumentError("a command is required: " + verb_list() + " (see annals --help)");
  }
}

// Declares the tool's options and every verb of kVerbs on `app`; returns the commands that run.
std::vector<ParsedCommand> build_command_line(CLI::App& app, CommandLine& cl) {
  app.footer(kFooter);
  app.set_version_flag("--version", "annals " ANNALS_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // --db may also follow the verb
  app.add_option("--db", cl.db, "libpq connection string or postgresql:// URL")->type_name("URL");
  std::vector<ParsedCommand> commands;
  for (const auto& verb : kVerbs) {
    auto declared = verb.declare(*app.add_subcommand(verb.name, verb.description), cl);
    std::move(declared.begin(), declared.end(), std::back_inserter(commands));
  }
  return commands;
}

}  // namespace

struct CommandLineParser::Commands {
  std::vector<ParsedCommand> all;
};

CommandLineParser::CommandLineParser()
    : app_("annals: operate an annals event store on PostgreSQL.", "annals"),
      commands_(std::make_unique<Commands>(Commands{build_command_line(app_, cl_)})) {}

CommandLineParser::~CommandLineParser() = default;

CommandId CommandLineParser::parse(int argc, const char* const* argv) {
  check_verb(argc, argv);
  app_.parse(argc, argv);
  for (const auto& command : commands_->all) {
    if (command.app->parsed()) return command.id;
  }
  // CLI11 requires a verb and each verb with subcommands requires one: unreachable.
  throw InvalidArgumentError("a command is required: " + verb_list() + " (see annals --help)");
}

std::string CommandLineParser::database_url() const {
  if (app_.count("--db") > 0) {
    if (cl_.db.empty()) throw InvalidArgumentError("--db must not be empty");
    return cl_.db;
  }
  const char* env = std::getenv("ANNALS_DATABASE_URL");
  if (env != nullptr && *env != '\0') return env;
  throw InvalidArgumentError(
      "no database given: pass --db URL or set ANNALS_DATABASE_URL "
      "(e.g. postgresql://user@localhost:5432/annals)");
}

// Spaces, tabs and line breaks collapse to one space (none before a closing parenthesis).
std::string one_line(std::string_view message) {
  std::string out;
  bool space = false;
  for (const char c : message) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space && c != ')') out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace annals::cli
