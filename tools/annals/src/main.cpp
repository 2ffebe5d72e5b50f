// annals: the command-line tool for operators and auditors (docs/cli.md).
//
// This file only parses the command line (CLI11): a table of verbs (kVerbs), each declaring its
// arguments and the command it runs. exit_code_for_current_exception() translates every failure
// into an exit code and one `annals: <message>` line on stderr (STYLE 2.4: annals → exit code in
// tools, in one place). The verbs themselves are in commands.cpp, projection_commands.cpp and
// verify_command.cpp.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// What a parsed command does: given the database URL, it runs and returns how many events it
// printed marked undecodable (only `read` and `read-all` print events).
using Action = std::function<std::size_t(const std::string& url)>;

// A command that runs: a verb (`migrate`) or a verb's subcommand (`projections list`). Its
// action, like the option callbacks, refers to fields of the CommandLine that the parse fills.
struct Command {
  const CLI::App* app;
  Action run;
};

// An Action for a command that prints no events.
template <typename F>
Action printing_no_events(F run) {
  return [run = std::move(run)](const std::string& url) {
    run(url);
    return std::size_t{0};
  };
}

void add_limit(CLI::App& verb, std::optional<std::int64_t>& limit) {
  verb.add_option_function<std::int64_t>(
      "--limit", [&limit](const std::int64_t& n) { limit = n; },
      "Print at most N events (N >= 0). Default: all");
}

// `--json` of the listing commands.
void add_json_lines_flag(CLI::App& command, bool& json, const char* what) {
  command.add_flag("--json", json, std::string("One JSON object per ") + what + " and line");
}

// --- The verbs: each declares its arguments on its CLI::App and returns what it runs ---------

std::vector<Command> declare_migrate(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.migrate;
  verb.add_flag("--status", args.status_only,
                "Only list every known migration as `applied` or `pending`");
  auto* roles = verb.add_flag("--roles", args.roles,
                              "Also create (when missing) the owner, writer, reader and auditor "
                              "roles, hand the store to the owner and grant each role its "
                              "privileges (needs a superuser or CREATEROLE; docs/security.md)");
  const auto role = [&](const char* name, std::string& value, const char* help) {
    verb.add_option(name, value, help)->capture_default_str()->needs(roles);
  };
  role("--owner-role", args.layout.owner, "Owner role (with --roles)");
  role("--writer-role", args.layout.writer, "Writer role (with --roles)");
  role("--reader-role", args.layout.reader, "Reader role (with --roles)");
  role("--auditor-role", args.layout.auditor, "Auditor role (with --roles)");
  role("--read-model-schema", args.layout.read_model_schema,
       "Schema where the writer may create read-model tables; empty for none (with --roles)");
  return {{&verb, printing_no_events([&args](const std::string& url) {
             annals::cli::migrate(url, args, std::cout);
           })}};
}

std::vector<Command> declare_append(CLI::App& verb, CommandLine& cl) {
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
  return {{&verb, printing_no_events([&args](const std::string& url) {
             annals::cli::append(*open_store(url), args, std::cin, std::cout);
           })}};
}

std::vector<Command> declare_read(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.read;
  verb.add_option("STREAM", args.stream, "Stream id")->required();
  verb.add_option_function<std::int64_t>(
          "--from", [&args](const std::int64_t& v) { args.from = v; },
          "First version printed (>= 1). Default: the first (or, with --backward, the last)")
      ->type_name("N");
  add_limit(verb, args.limit);
  verb.add_flag("--backward", args.backward, "Newest first");
  return {{&verb, [&args](const std::string& url) {
             return annals::cli::read(*open_store(url), args, std::cout);
           }}};
}

std::vector<Command> declare_read_all(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.read_all;
  verb.add_option_function<std::string>(
          "--from", [&args](const std::string& p) { args.from = p; },
          "Continue strictly after this position (an event's `position` value)")
      ->type_name("POSITION");
  add_limit(verb, args.limit);
  verb.add_option_function<std::string>(
          "--category", [&args](const std::string& c) { args.category = c; },
          "Only streams of this category (the stream id before its first '-')")
      ->type_name("C");
  verb.add_option("--type", args.types, "Only events of this type (repeatable)")
      ->type_name("T")
      ->allow_extra_args(false);
  return {{&verb, [&args](const std::string& url) {
             return annals::cli::read_all(*open_store(url), args, std::cout);
           }}};
}

std::vector<Command> declare_projections(CLI::App& verb, CommandLine& cl) {
  verb.require_subcommand(1);
  verb.fallthrough();
  // list and status print the same table from the same function; status adds columns.
  const auto status = [](const annals::cli::ProjectionStatusArgs& args) {
    return printing_no_events([&args](const std::string& url) {
      const auto store = open_projection_store(url);
      const auto events = open_store(url);
      annals::cli::projections_status(*store, *events, args, std::cout);
    });
  };
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
  rebuild
      ->add_option_function<double>(
          "--timeout", [&args](const double& s) { args.timeout_seconds = s; },
          "Stop following after SECONDS with exit 5 (the rebuild goes on). Default: no limit")
      ->type_name("SECONDS");
  return {{list, status(cl.projections_list)},
          {detailed, status(cl.projections_status)},
          {rebuild, printing_no_events([&args](const std::string& url) {
             args.terminal = ::isatty(STDOUT_FILENO) == 1;  // a bar drawn in place, else lines
             annals::cli::projections_rebuild(*open_projection_store(url), args, std::cout);
           })}};
}

std::vector<Command> declare_dead_letters(CLI::App& verb, CommandLine& cl) {
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

  auto* retry = verb.add_subcommand(
      "retry", "Ask the owning runner to apply a dead letter again (after a fix)");
  retry->add_option("ID", cl.dead_letter_id, "The dead letter's id")->required();
  auto* skip = verb.add_subcommand("skip", "Give up on a dead letter; it stays listed as skipped");
  skip->add_option("ID", cl.dead_letter_id, "The dead letter's id")->required();

  // retry and skip: the store is opened before the id is checked, as for every other verb.
  const auto on_letter = [&id = cl.dead_letter_id](auto act) {
    return printing_no_events([&id, act](const std::string& url) {
      const auto store = open_projection_store(url);
      act(*store, annals::cli::parse_dead_letter_id(id), std::cout);
    });
  };
  return {{list, printing_no_events([&args](const std::string& url) {
             annals::cli::dead_letters_list(*open_projection_store(url), args, std::cout);
           })},
          {retry, on_letter(annals::cli::dead_letters_retry)},
          {skip, on_letter(annals::cli::dead_letters_skip)}};
}

std::vector<Command> declare_verify(CLI::App& verb, CommandLine& cl) {
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
  return {{&verb, printing_no_events([&args](const std::string& url) {
             annals::cli::verify(url, args, std::cout);
           })}};
}

std::vector<Command> declare_anchor(CLI::App& verb, CommandLine& cl) {
  auto& args = cl.anchor;
  verb.add_flag("--record", args.record,
                "Also store it in annals.anchors (lets verify --anchor resume from it)");
  verb.add_flag("--json", args.json, "JSON output (the default; accepted for scripts)");
  return {{&verb, printing_no_events([&args](const std::string& url) {
             annals::cli::anchor(url, args, std::cout);
           })}};
}

// One verb: its name and help line, and the function that declares its arguments (and its
// subcommands) on the verb's CLI::App and returns the commands it runs.
struct Verb {
  const char* name;
  const char* description;
  std::vector<Command> (*declare)(CLI::App& verb, CommandLine& cl);
};

// The verbs, in the order `annals --help` lists them.
constexpr Verb kVerbs[] = {
    {"migrate", "Apply pending schema migrations (safe to repeat, or to run concurrently)",
     declare_migrate},
    {"append", "Append one event to a stream; prints the result as one JSON object",
     declare_append},
    {"read", "Print a stream's events as JSON lines", declare_read},
    {"read-all", "Print the global log as JSON lines, in log order", declare_read_all},
    {"projections", "Projections: status, lag and rebuilds (list, status, rebuild)",
     declare_projections},
    {"dead-letters", "Events projections parked after failing (list, retry, skip)",
     declare_dead_letters},
    {"verify", "Recompute every stream's hash chain; exit 6 when history was tampered with",
     declare_verify},
    {"anchor", "Print an anchor: a digest of the settled log up to its newest position",
     declare_anchor},
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
void check_verb(int argc, char** argv) {
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
    throw annals::InvalidArgumentError("unknown command '" + std::string(arg) +
                                       "' (commands: " + verb_list() + ")");
  }
  if (argc <= 1) {
    throw annals::InvalidArgumentError("a command is required: " + verb_list() +
                                       " (see annals --help)");
  }
}

// Declares the tool's options and every verb of kVerbs on `app`; returns the commands that run.
std::vector<Command> build_command_line(CLI::App& app, CommandLine& cl) {
  app.footer(kFooter);
  app.set_version_flag("--version", "annals " ANNALS_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // --db may also follow the verb
  app.add_option("--db", cl.db, "libpq connection string or postgresql:// URL")->type_name("URL");
  std::vector<Command> commands;
  for (const auto& verb : kVerbs) {
    auto declared = verb.declare(*app.add_subcommand(verb.name, verb.description), cl);
    std::move(declared.begin(), declared.end(), std::back_inserter(commands));
  }
  return commands;
}

// Runs the one command that was parsed (CLI11 requires exactly one); returns the exit code.
int dispatch(const std::vector<Command>& commands, const std::string& url) {
  std::size_t undecodable = 0;
  for (const auto& command : commands) {
    if (command.app->parsed()) undecodable = command.run(url);
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
}

// The one place where failures become exit codes: called in a catch block, it rethrows the
// exception being handled and prints it as one `annals: <message>` line on stderr.
int exit_code_for_current_exception(const CLI::App& app) {
  try {
    throw;
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

int run(int argc, char** argv) {
  CommandLine cl;
  CLI::App app{"annals: operate an annals event store on PostgreSQL.", "annals"};
  const auto commands = build_command_line(app, cl);
  try {
    check_verb(argc, argv);
    app.parse(argc, argv);
    const auto url = database_url(app, cl.db);
    configure_logging();
    return dispatch(commands, url);
  } catch (...) {
    return exit_code_for_current_exception(app);
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
