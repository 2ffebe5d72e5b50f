// annals::cli::run: the `annals` command-line tool for operators and auditors (docs/cli.md),
// callable as a library function so that users can build their own binary with their
// EventRegistry (annals/cli/run.hpp); src/main.cpp is the stock binary.
//
// The command line is parsed by CommandLineParser (command_line.cpp); this file runs the one
// command it returns. exit_code_for_current_exception() translates every failure into an exit
// code and one `annals: <message>` line on stderr (STYLE 2.4: annals → exit code in tools, in
// one place). The verbs themselves are in commands.cpp, projection_commands.cpp,
// verify_command.cpp, restore_command.cpp and transfer_commands.cpp.
#include <pthread.h>
#include <unistd.h>

#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "annals/cli/run.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/postgres/postgres_subject_key_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "command_line.hpp"
#include "commands.hpp"
#include "dead_letter_actions.hpp"
#include "exit_code.hpp"
#include "forget_command.hpp"
#include "inspect_commands.hpp"
#include "json_output.hpp"
#include "projection_commands.hpp"
#include "relay_command.hpp"
#include "restore_command.hpp"
#include "stream_commands.hpp"
#include "transfer_commands.hpp"
#include "verify_command.hpp"

namespace {

using annals::cli::CommandId;
using annals::cli::ExitCode;
using annals::cli::one_line;

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
  // Unnamed statements: a command sends a handful of statements, so preparing them saves
  // nothing, and without them the command also works through a transaction-mode pooler such
  // as PgBouncer (docs/operations.md, "Connection poolers").
  options.prepare_statements = false;
  return annals::postgres::make_postgres_event_store(std::move(options));
}

std::unique_ptr<annals::projections::ProjectionStore> open_projection_store(
    const std::string& url) {
  annals::projections::PostgresProjectionStoreOptions options;
  options.connection_string = url;
  options.pool_size = 1;
  // As open_store: unnamed statements, so `projections` and `dead-letters` work through a
  // transaction-mode pooler too. These commands never take a lease, so no presence connection.
  options.prepare_statements = false;
  return annals::projections::make_postgres_projection_store(std::move(options));
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }
bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

// `read-all --follow` / `tail` until Ctrl-C: SIGINT and SIGTERM are blocked before the store
// starts its threads (which inherit the mask), so they stay pending instead of killing the
// process, and the follower polls for them, stops its subscription and exits 0.
std::size_t follow_log(const std::string& url, const annals::cli::ReadAllArgs& args,
                       const annals::EventRegistry* registry) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  const auto interrupted = [] {
    sigset_t pending;
    sigemptyset(&pending);
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1);
  };
  const auto store = open_store(url);
  const auto reveal = annals::cli::personal_data_revealer(*store, url);
  return annals::cli::follow_all(*store, args, std::cout, registry, interrupted, reveal);
}

// `read`, `read-all` and `tail`: returns how many events it printed marked undecodable.
std::size_t print_events(CommandId command, annals::cli::CommandLine& cl, const std::string& url,
                         const annals::EventRegistry* registry) {
  namespace cli = annals::cli;
  if (command == CommandId::kRead) {
    cl.read.output.human = stdout_is_terminal();
    const auto reader = cli::revealing_reader(open_store(url), url);
    const auto undecodable = cli::read(*reader, cl.read, std::cout, registry);
    cli::note_if_deleted(*reader, cl.read.stream, std::cerr);
    return undecodable;
  }
  if (command == CommandId::kTail) cl.read_all.follow = true;
  cl.read_all.output.human = stdout_is_terminal();
  if (cl.read_all.follow) return follow_log(url, cl.read_all, registry);
  return cli::read_all(*cli::revealing_reader(open_store(url), url), cl.read_all, std::cout,
                       registry);
}

// `annals relay`, in builds with annals::relay (ANNALS_RELAY).
void run_relay(const std::string& url, const annals::cli::RelayArgs& args) {
#ifdef ANNALS_CLI_HAVE_RELAY
  annals::cli::relay(url, args, std::cout);
#else
  static_cast<void>(url);
  static_cast<void>(args);
  throw annals::cli::ExitError(ExitCode::kError,
                               "this annals was built without the relay (annals::relay needs "
                               "libnats-dev and libcpp-httplib-dev; see docs/relay.md)");
#endif
}

// The projection and dead-letter verbs.
void run_projection_command(CommandId command, annals::cli::CommandLine& cl,
                            const std::string& url) {
  namespace cli = annals::cli;
  if (command == CommandId::kProjectionsList || command == CommandId::kProjectionsStatus) {
    // list and status print the same table from the same function; status adds columns.
    const auto store = open_projection_store(url);
    const auto events = open_store(url);
    cli::projections_status(
        *store, *events,
        command == CommandId::kProjectionsList ? cl.projections_list : cl.projections_status,
        std::cout);
  } else if (command == CommandId::kProjectionsRebuild) {
    cl.rebuild.terminal = stdout_is_terminal();  // a bar drawn in place, else lines
    cli::projections_rebuild(*open_projection_store(url), cl.rebuild, std::cout);
  } else if (command == CommandId::kProjectionsRepartition) {
    cli::projections_repartition(*open_projection_store(url), cl.repartition, std::cout);
  } else if (command == CommandId::kDeadLettersList) {
    cli::dead_letters_list(*open_projection_store(url), cl.dead_letters_list, std::cout);
  } else {
    cli::dead_letters_act(*open_projection_store(url),
                          command == CommandId::kDeadLettersRetry ? cli::DeadLetterAction::kRetry
                                                                  : cli::DeadLetterAction::kSkip,
                          cl.dead_letter_action, std::cout);
  }
}

// The verbs that write to a stream or manage the store.
void run_store_command(CommandId command, annals::cli::CommandLine& cl, const std::string& url) {
  namespace cli = annals::cli;
  switch (command) {
    case CommandId::kMigrate:
      return cli::migrate(url, cl.migrate, std::cout);
    case CommandId::kPartitions:
      return cli::partitions(url, cl.partitions, std::cout);
    case CommandId::kAppend:
      return cli::append(*open_store(url), cl.append, std::cin, std::cout);
    case CommandId::kDeleteStream:
      return cli::delete_stream(*open_store(url), cl.delete_stream, std::cout);
    case CommandId::kStreamMeta:
      return cli::stream_meta(*open_store(url), cl.stream_meta, std::cout);
    case CommandId::kForget: {
      const auto keys =
          annals::postgres::make_postgres_subject_key_store({.connection_string = url});
      const auto snapshots = annals::postgres::make_postgres_snapshot_store(
          {.connection_string = url, .pool_size = 1});
      return cli::forget(*open_store(url), *keys, snapshots.get(), cl.forget, std::cout);
    }
    default:
      return;
  }
}

// The auditor's verbs: verification, anchors, restores, copies and inspection.
void run_audit_command(CommandId command, annals::cli::CommandLine& cl, const std::string& url) {
  namespace cli = annals::cli;
  switch (command) {
    case CommandId::kVerify:
      cl.verify.progress = stderr_is_terminal() && !cl.verify.json;
      return cli::verify(url, cl.verify, std::cout, std::cerr);
    case CommandId::kAnchor:
      return cli::anchor(url, cl.anchor, std::cout);
    case CommandId::kRestoreCheck:
      return cli::restore_check(url, cl.restore_check, std::cout);
    case CommandId::kExport:
      return cli::export_events(url, cl.export_events, std::cout, std::cerr);
    case CommandId::kImport:
      cl.import_events.progress = stderr_is_terminal() && !cl.import_events.json;
      return cli::import_events(url, cl.import_events, std::cout, std::cerr);
    case CommandId::kStreams:
      return cli::streams(url, cl.streams, std::cout);
    case CommandId::kStats:
      return cli::stats(url, cl.stats, std::cout);
    default:
      return;
  }
}

// Runs `command` with the parsed arguments; returns how many events it printed marked
// undecodable (only `read`, `read-all` and `tail` print events).
std::size_t run_command(CommandId command, annals::cli::CommandLine& cl, const std::string& url,
                        const annals::EventRegistry* registry) {
  switch (command) {
    case CommandId::kRead:
    case CommandId::kReadAll:
    case CommandId::kTail:
      return print_events(command, cl, url, registry);
    case CommandId::kProjectionsList:
    case CommandId::kProjectionsStatus:
    case CommandId::kProjectionsRebuild:
    case CommandId::kProjectionsRepartition:
    case CommandId::kDeadLettersList:
    case CommandId::kDeadLettersRetry:
    case CommandId::kDeadLettersSkip:
      run_projection_command(command, cl, url);
      return 0;
    case CommandId::kCompletion:  // handled before a database is looked for
      return 0;
    case CommandId::kRelay:
      run_relay(url, cl.relay);
      return 0;
    default:
      run_store_command(command, cl, url);
      run_audit_command(command, cl, url);
      return 0;
  }
}

// Runs the command and flushes stdout; returns the exit code.
int dispatch(CommandId command, annals::cli::CommandLine& cl, const std::string& url,
             const annals::EventRegistry* registry) {
  const std::size_t undecodable = run_command(command, cl, url, registry);
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

int run_parsed(int argc, char** argv, const annals::EventRegistry* registry) {
  annals::cli::CommandLineParser parser;
  try {
    const CommandId command = parser.parse(argc, argv);
    if (command == CommandId::kCompletion) {  // needs no database
      std::cout << parser.bash_completion() << std::flush;
      return static_cast<int>(ExitCode::kOk);
    }
    const auto url = parser.database_url();
    configure_logging();
    return dispatch(command, parser.args(), url, registry);
  } catch (...) {
    return exit_code_for_current_exception(parser.app());
  }
}

}  // namespace

namespace annals::cli {

int run(int argc, char** argv, const EventRegistry* registry) {
  try {
    return run_parsed(argc, argv, registry);
  } catch (...) {  // run_parsed() handles every error; this is the last resort (bad_alloc)
    std::fputs("annals: unexpected error\n", stderr);
    return static_cast<int>(ExitCode::kError);
  }
}

}  // namespace annals::cli
