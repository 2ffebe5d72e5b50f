// The command line of the `annals` tool: the verbs, their arguments and the one command a
// command line asks for. Parsing touches no database, reads no input, writes nothing and never
// exits the process, so tests and the fuzzer (tests/fuzz/cli_args_fuzzer.cpp) can run it;
// main.cpp runs the command it returns and turns errors into exit codes (docs/cli.md).
//
//   annals::cli::CommandLineParser parser;
//   const auto command = parser.parse(argc, argv);  // CommandId::kAppend, say
//   const auto& args = parser.args().append;
//
// Thread safety: one parser per thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "dead_letter_actions.hpp"
#include "forget_command.hpp"
#include "inspect_commands.hpp"
#include "partition_command.hpp"
#include "projection_commands.hpp"
#include "relay_command.hpp"
#include "restore_command.hpp"
#include "stream_commands.hpp"
#include "transfer_commands.hpp"
#include "verify_command.hpp"

namespace annals::cli {

/// Every argument of every verb, filled by CommandLineParser::parse.
struct CommandLine {
  std::string db;
  MigrateArgs migrate;
  AppendArgs append;
  ReadArgs read;
  ReadAllArgs read_all;
  ProjectionStatusArgs projections_list;
  ProjectionStatusArgs projections_status{.detailed = true};
  RebuildArgs rebuild;
  RepartitionArgs repartition;
  DeadLetterListArgs dead_letters_list;
  DeadLetterActionArgs dead_letter_action;
  VerifyArgs verify;
  AnchorArgs anchor;
  RestoreCheckArgs restore_check;
  ExportArgs export_events;
  ImportArgs import_events;
  StreamsArgs streams;
  StatsArgs stats;
  std::string completion_shell;
  DeleteStreamArgs delete_stream;
  StreamMetaArgs stream_meta;
  ForgetArgs forget;
  RelayArgs relay;
  PartitionsArgs partitions;
};

/// The command a command line asks for: a verb, or a verb's subcommand.
enum class CommandId {
  kMigrate,
  kAppend,
  kRead,
  kReadAll,
  kTail,
  kProjectionsList,
  kProjectionsStatus,
  kProjectionsRebuild,
  kProjectionsRepartition,
  kDeadLettersList,
  kDeadLettersRetry,
  kDeadLettersSkip,
  kVerify,
  kAnchor,
  kRestoreCheck,
  kExport,
  kImport,
  kStreams,
  kStats,
  kCompletion,
  kDeleteStream,
  kStreamMeta,
  kForget,
  kRelay,
  kPartitions,
};

/// The tool's command line (CLI11), declared once per parser.
class CommandLineParser {
 public:
  CommandLineParser();
  ~CommandLineParser();
  CommandLineParser(const CommandLineParser&) = delete;
  CommandLineParser& operator=(const CommandLineParser&) = delete;

  /// Parses `argv` (argv[0] is the program) into args() and returns the command asked for.
  /// Throws: CLI::ParseError for usage errors and for --help and --version (whose
  /// get_exit_code() is 0: app().exit(e) prints the help or version); InvalidArgumentError
  /// for a missing or unknown verb. Call once per parser.
  /// Cost: linear in the arguments; no I/O.
  CommandId parse(int argc, const char* const* argv);

  /// The arguments parse() filled.
  [[nodiscard]] CommandLine& args() noexcept { return cl_; }

  /// The CLI11 application, for printing help, version and usage errors (CLI::App::exit).
  [[nodiscard]] const CLI::App& app() const noexcept { return app_; }

  /// The bash completion script for this command line (`annals completion bash`): every verb,
  /// subcommand and flag, and file names for arguments that take a FILE.
  [[nodiscard]] std::string bash_completion() const;

  /// The database to use: --db when given (it must not be empty), else ANNALS_DATABASE_URL.
  /// Throws: InvalidArgumentError when neither gives one.
  [[nodiscard]] std::string database_url() const;

 private:
  struct Commands;  // the commands declared, with the CLI::App of each
  CommandLine cl_;
  CLI::App app_;
  std::unique_ptr<Commands> commands_;
};

/// `message` on one line: libpq's messages span lines ("...failed: Connection refused\n\tIs the
/// server running..."); stderr gets one line per error so that scripts can rely on the last.
[[nodiscard]] std::string one_line(std::string_view message);

}  // namespace annals::cli
