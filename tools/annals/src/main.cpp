// annals: the command-line tool for operators and auditors (docs/cli.md).
//
// This file only parses the command line (CLI11) and, in run()'s catch blocks, translates every
// failure into an exit code and one `annals: <message>` line on stderr (STYLE 2.4: annals → exit
// code in tools, in one place). The verbs themselves are in commands.cpp.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "commands.hpp"
#include "exit_code.hpp"
#include "json_output.hpp"
#include "projection_commands.hpp"
#include "verify_command.hpp"

namespace {

using annals::cli::ExitCode;

constexpr std::string_view kVerbs[] = {"migrate",     "append",       "read",   "read-all",
                                       "projections", "dead-letters", "verify", "anchor"};
constexpr const char* kVerbList =
    "migrate, append, read, read-all, projections, dead-letters, verify, anchor";

constexpr const char* kFooter =
    "Connection: --db URL, or ANNALS_DATABASE_URL when --db is not given.\n"
    "Exit codes: 0 ok, 1 error (server unavailable, internal, rebuild failed), 2 invalid input\n"
    "            or usage, 3 expected-version conflict, 4 no such projection or dead letter,\n"
    "            5 rebuild --timeout elapsed, 6 verify found problems. Errors go to stderr\n"
    "            as `annals: <message>`.\n"
    "Reference: docs/cli.md. Run `annals VERB --help` for a verb's arguments.";

struct CommandLine {
  std::string db;
  annals::cli::MigrateArgs migrate;
  annals::cli::AppendArgs append;
  annals::cli::ReadArgs read;
  annals::cli::ReadAllArgs read_all;
  annals::cli::ProjectionStatusArgs projections_list;
  annals::cli::ProjectionStatusArgs projections_status{.detailed = true};
  annals::cli::RebuildArgs rebuild;
  annals::cli::DeadLetterListArgs dead_letters_list;
  std::string dead_letter_id;
  annals::cli::VerifyArgs verify;
  annals::cli::AnchorArgs anchor;
};

// CLI11 would report an unknown verb as an unexpected extra argument; name it plainly instead.
// Top-level arguments are only --db [VALUE], --help and --version, so the first word that is
// neither an option nor --db's value is the verb.
void check_verb(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--db") {
      ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;
    for (const auto verb : kVerbs) {
      if (arg == verb) return;
    }
    throw annals::InvalidArgumentError("unknown command '" + std::string(arg) +
                                       "' (commands: " + kVerbList + ")");
  }
  if (argc <= 1) {
    throw annals::InvalidArgumentError(std::string("a command is required: ") + kVerbList +
                                       " (see annals --help)");
  }
}

std::string database_url(const CLI::App& app, const std::string& flag) {
  if (app.count("--db") > 0) {
    if (flag.empty()) throw annals::InvalidArgumentError("--db must not be empty");
    return flag;
  }
  const char* env = std::getenv("ANNALS_DATABASE_URL");
  if (env != nullptr && *env != '\0') return env;
  throw annals::InvalidArgumentError(
      "no database given: pass --db URL or set ANNALS_DATABASE_URL "
      "(e.g. postgresql://user@localhost:5432/annals)");
}

// Error messages from libpq span lines ("...failed: Connection refused\n\tIs the server
// running..."); stderr gets one line per error so that scripts can rely on the last line.
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

// The library logs through the spdlog logger "annals" and never picks sinks (STYLE 2.8); the
// tool sends it to stderr so that stdout carries only JSON. ANNALS_LOG_LEVEL (trace, debug,
// info, warning, error, off) changes the default level, warning (retries, slow readers); log
// lines look like "[warning] ...", errors "annals: ...".
void configure_logging() {
  auto logger = spdlog::get("annals");
  if (!logger) logger = spdlog::stderr_logger_mt("annals");
  logger->set_pattern("[%l] %v");
  const char* level = std::getenv("ANNALS_LOG_LEVEL");
  logger->set_level(level != nullptr && *level != '\0' ? spdlog::level::from_str(level)
                                                       : spdlog::level::warn);
}

std::unique_ptr<annals::EventStore> open_store(const std::string& url) {
  annals::postgres::PostgresEventStoreOptions options;
  options.connection_string = url;
  options.pool_size = 1;  // one command, one connection
  return annals::postgres::make_postgres_event_store(std::move(options));
}

std::unique_ptr<annals::projections::ProjectionStore> open_projection_store(
    const std::string& url) {
  annals::projections::PostgresProjectionStoreOptions options;
  options.connection_string = url;
  options.pool_size = 1;
  return annals::projections::make_postgres_projection_store(std::move(options));
}

void add_limit(CLI::App& verb, std::optional<std::int64_t>& limit) {
  verb.add_option_function<std::int64_t>(
      "--limit", [&limit](const std::int64_t& n) { limit = n; },
      "Print at most N events (N >= 0). Default: all");
}

int run(int argc, char** argv) {
  CommandLine cl;
  CLI::App app{"annals: operate an annals event store on PostgreSQL.", "annals"};
  app.footer(kFooter);
  app.set_version_flag("--version", "annals " ANNALS_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // --db may also follow the verb
  app.add_option("--db", cl.db, "libpq connection string or postgresql:// URL")->type_name("URL");

  auto* migrate = app.add_subcommand(
      "migrate", "Apply pending schema migrations (safe to repeat, or to run concurrently)");
  migrate->add_flag("--status", cl.migrate.status_only,
                    "Only list every known migration as `applied` or `pending`");
  auto* roles_flag = migrate->add_flag(
      "--roles", cl.migrate.roles,
      "Also create (when missing) the owner, writer, reader and auditor roles, hand "
      "the store to the owner and grant each role its privileges (needs a "
      "superuser or CREATEROLE; docs/security.md)");
  migrate->add_option("--owner-role", cl.migrate.layout.owner, "Owner role (with --roles)")
      ->capture_default_str()
      ->needs(roles_flag);
  migrate->add_option("--writer-role", cl.migrate.layout.writer, "Writer role (with --roles)")
      ->capture_default_str()
      ->needs(roles_flag);
  migrate->add_option("--reader-role", cl.migrate.layout.reader, "Reader role (with --roles)")
      ->capture_default_str()
      ->needs(roles_flag);
  migrate->add_option("--auditor-role", cl.migrate.layout.auditor, "Auditor role (with --roles)")
      ->capture_default_str()
      ->needs(roles_flag);
  migrate
      ->add_option("--read-model-schema", cl.migrate.layout.read_model_schema,
                   "Schema where the writer may create read-model tables; empty for none "
                   "(with --roles)")
      ->capture_default_str()
      ->needs(roles_flag);

  auto* append = app.add_subcommand(
      "append", "Append one event to a stream; prints the result as one JSON object");
  append->add_option("STREAM", cl.append.stream, "Stream id, `category-id` (e.g. account-42)")
      ->required();
  append->add_option("TYPE", cl.append.type, "Event type name (e.g. MoneyDeposited)")->required();
  append->add_option_function<std::string>(
      "DATA_JSON", [&cl](const std::string& json) { cl.append.data_json = json; },
      "Event data as JSON; read from stdin when omitted");
  append
      ->add_option("--expected-version", cl.append.expected_version,
                   "any (default), no-stream, exists, or N: the stream must be at version N "
                   "(0 = no events yet). A mismatch exits 3")
      ->type_name("any|no-stream|exists|N");
  append
      ->add_option_function<std::string>(
          "--event-id", [&cl](const std::string& id) { cl.append.event_id = id; },
          "Event UUID (default: a new time-ordered one). Re-sending a stored id returns the "
          "original result")
      ->type_name("UUID");
  append
      ->add_option_function<std::string>(
          "--metadata", [&cl](const std::string& json) { cl.append.metadata_json = json; },
          "Event metadata, a JSON object (default {})")
      ->type_name("JSON");
  append
      ->add_option("--schema-version", cl.append.schema_version,
                   "Schema version of the data (default 1)")
      ->type_name("N");

  auto* read = app.add_subcommand("read", "Print a stream's events as JSON lines");
  read->add_option("STREAM", cl.read.stream, "Stream id")->required();
  read->add_option_function<std::int64_t>(
          "--from", [&cl](const std::int64_t& v) { cl.read.from = v; },
          "First version printed (>= 1). Default: the first (or, with --backward, the last)")
      ->type_name("N");
  add_limit(*read, cl.read.limit);
  read->add_flag("--backward", cl.read.backward, "Newest first");

  auto* read_all =
      app.add_subcommand("read-all", "Print the global log as JSON lines, in log order");
  read_all
      ->add_option_function<std::string>(
          "--from", [&cl](const std::string& p) { cl.read_all.from = p; },
          "Continue strictly after this position (an event's `position` value)")
      ->type_name("POSITION");
  add_limit(*read_all, cl.read_all.limit);
  read_all
      ->add_option_function<std::string>(
          "--category", [&cl](const std::string& c) { cl.read_all.category = c; },
          "Only streams of this category (the stream id before its first '-')")
      ->type_name("C");
  read_all->add_option("--type", cl.read_all.types, "Only events of this type (repeatable)")
      ->type_name("T")
      ->allow_extra_args(false);

  auto* projections = app.add_subcommand(
      "projections", "Projections: status, lag and rebuilds (list, status, rebuild)");
  projections->require_subcommand(1);
  projections->fallthrough();
  auto* projections_list = projections->add_subcommand(
      "list", "A table of projections: name, owner, position, lag, state, lease expiry");
  projections_list->add_flag("--json", cl.projections_list.json,
                             "One JSON object per projection and line");
  auto* projections_status = projections->add_subcommand(
      "status", "Like list, plus fencing token, events applied, errors, rebuilds, dead letters");
  projections_status->add_option_function<std::string>(
      "NAME", [&cl](const std::string& n) { cl.projections_status.name = n; },
      "Only this projection (exit 4 when unknown)");
  projections_status->add_flag("--json", cl.projections_status.json,
                               "One JSON object per projection and line");
  auto* rebuild = projections->add_subcommand(
      "rebuild",
      "Ask the owning runner to reset the projection and replay the log; follow its progress");
  rebuild->add_option("NAME", cl.rebuild.name, "The projection (exit 4 when unknown)")->required();
  rebuild->add_flag("--no-wait", cl.rebuild.no_wait, "File the request and exit 0 at once");
  rebuild
      ->add_option_function<double>(
          "--timeout", [&cl](const double& s) { cl.rebuild.timeout_seconds = s; },
          "Stop following after SECONDS with exit 5 (the rebuild goes on). Default: no limit")
      ->type_name("SECONDS");

  auto* dead_letters = app.add_subcommand(
      "dead-letters", "Events projections parked after failing (list, retry, skip)");
  dead_letters->require_subcommand(1);
  dead_letters->fallthrough();
  auto* dead_letters_list =
      dead_letters->add_subcommand("list", "Dead letters, oldest first, as a table");
  dead_letters_list
      ->add_option_function<std::string>(
          "--projection", [&cl](const std::string& p) { cl.dead_letters_list.projection = p; },
          "Only this projection's")
      ->type_name("P");
  dead_letters_list
      ->add_option_function<std::string>(
          "--state", [&cl](const std::string& s) { cl.dead_letters_list.state = s; },
          "Only those in state S")
      ->type_name("parked|retry-requested|resolved|skipped");
  dead_letters_list->add_flag("--json", cl.dead_letters_list.json,
                              "One JSON object per dead letter and line");
  auto* dead_letters_retry = dead_letters->add_subcommand(
      "retry", "Ask the owning runner to apply a dead letter again (after a fix)");
  dead_letters_retry->add_option("ID", cl.dead_letter_id, "The dead letter's id")->required();
  auto* dead_letters_skip =
      dead_letters->add_subcommand("skip", "Give up on a dead letter; it stays listed as skipped");
  dead_letters_skip->add_option("ID", cl.dead_letter_id, "The dead letter's id")->required();

  auto* verify = app.add_subcommand(
      "verify", "Recompute every stream's hash chain; exit 6 when history was tampered with");
  verify
      ->add_option_function<std::string>(
          "--stream", [&cl](const std::string& s) { cl.verify.stream = s; }, "Only this stream")
      ->type_name("STREAM");
  verify
      ->add_option("--max-findings", cl.verify.max_findings, "Most findings printed (default 100)")
      ->type_name("N")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  verify->add_flag("--json", cl.verify.json, "One JSON object with counts, digest and findings");
  verify
      ->add_option("--anchor", cl.verify.anchor_files,
                   "Prove the log up to this anchor (`annals anchor` output) unchanged; repeatable")
      ->type_name("FILE")
      ->allow_extra_args(false);
  verify->add_flag("--full", cl.verify.full,
                   "With --anchor: re-hash from the start instead of resuming from a recorded "
                   "older anchor");

  auto* anchor = app.add_subcommand(
      "anchor", "Print an anchor: a digest of the settled log up to its newest position");
  anchor->add_flag("--record", cl.anchor.record,
                   "Also store it in annals.anchors (lets verify --anchor resume from it)");
  anchor->add_flag("--json", cl.anchor.json, "JSON output (the default; accepted for scripts)");

  std::size_t undecodable = 0;  // events `read` / `read-all` printed marked (issue #11)
  try {
    check_verb(argc, argv);
    app.parse(argc, argv);
    const auto url = database_url(app, cl.db);
    configure_logging();
    if (migrate->parsed()) {
      annals::cli::migrate(url, cl.migrate, std::cout);
    } else if (verify->parsed()) {
      annals::cli::verify(url, cl.verify, std::cout);
    } else if (anchor->parsed()) {
      annals::cli::anchor(url, cl.anchor, std::cout);
    } else if (projections->parsed()) {
      const auto store = open_projection_store(url);
      if (rebuild->parsed()) {
        cl.rebuild.terminal = ::isatty(STDOUT_FILENO) == 1;
        annals::cli::projections_rebuild(*store, cl.rebuild, std::cout);
      } else {
        const auto events = open_store(url);
        annals::cli::projections_status(
            *store, *events,
            projections_list->parsed() ? cl.projections_list : cl.projections_status, std::cout);
      }
    } else if (dead_letters->parsed()) {
      const auto store = open_projection_store(url);
      if (dead_letters_list->parsed()) {
        annals::cli::dead_letters_list(*store, cl.dead_letters_list, std::cout);
      } else {
        const auto id = annals::cli::parse_dead_letter_id(cl.dead_letter_id);
        if (dead_letters_retry->parsed()) annals::cli::dead_letters_retry(*store, id, std::cout);
        if (dead_letters_skip->parsed()) annals::cli::dead_letters_skip(*store, id, std::cout);
      }
    } else {
      const auto store = open_store(url);
      if (append->parsed()) annals::cli::append(*store, cl.append, std::cin, std::cout);
      if (read->parsed()) undecodable = annals::cli::read(*store, cl.read, std::cout);
      if (read_all->parsed()) undecodable = annals::cli::read_all(*store, cl.read_all, std::cout);
    }
    if (!std::cout.flush()) {
      std::cerr << "annals: cannot write to standard output\n";
      return static_cast<int>(ExitCode::kError);
    }
    if (undecodable > 0) {
      std::cerr << "annals: " << undecodable
                << " event(s) could not be decoded; they are printed as stored, with the reason "
                   "under \"undecodable\"\n";
      return static_cast<int>(ExitCode::kUndecodable);
    }
    return static_cast<int>(ExitCode::kOk);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version: print to stdout
    std::cerr << "annals: " << one_line(e.what())
              << "\nRun `annals --help` or `annals VERB --help`.\n";
    return static_cast<int>(ExitCode::kUsage);
  } catch (const annals::cli::ExitError& e) {
    std::cout.flush();
    std::cerr << "annals: " << one_line(e.what()) << '\n';
    return static_cast<int>(e.code());
  } catch (const annals::Error& e) {
    std::cerr << "annals: " << one_line(e.what()) << '\n';
    if (const auto* conflict = dynamic_cast<const annals::ConcurrencyError*>(&e)) {
      std::cerr << annals::cli::to_json_line(*conflict) << '\n';
    }
    return static_cast<int>(annals::cli::exit_code_for(e.code()));
  } catch (const std::exception& e) {
    std::cerr << "annals: unexpected error: " << one_line(e.what()) << '\n';
    return static_cast<int>(ExitCode::kError);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::ios::sync_with_stdio(false);
    return run(argc, argv);
  } catch (...) {  // run() handles every error; this is the last resort (e.g. bad_alloc)
    std::fputs("annals: unexpected error\n", stderr);
    return static_cast<int>(ExitCode::kError);
  }
}
