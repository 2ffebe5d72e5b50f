// The CLI's command line parsed in-process (CommandLineParser, also driven by the fuzzer
// fuzz_cli_args): it returns the command and fills the arguments, and reports --help, usage
// errors and unknown verbs by throwing, without exiting the process, reading stdin or
// opening a database.
#include "command_line.hpp"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"

namespace {

using annals::cli::CommandId;
using annals::cli::CommandLineParser;

CommandId parse(CommandLineParser& parser, std::vector<const char*> args) {
  args.insert(args.begin(), "annals");
  return parser.parse(static_cast<int>(args.size()), args.data());
}

TEST(CliCommandLineTest, ReturnsTheCommandAndFillsItsArguments) {
  CommandLineParser parser;
  EXPECT_EQ(parse(parser, {"--db", "postgresql://h/db", "append", "account-1", "Opened", "{}",
                           "--expected-version", "no-stream"}),
            CommandId::kAppend);
  EXPECT_EQ(parser.args().append.stream, "account-1");
  EXPECT_EQ(parser.args().append.type, "Opened");
  EXPECT_EQ(parser.args().append.data_json, std::optional<std::string>("{}"));
  EXPECT_EQ(parser.args().append.expected_version, "no-stream");
  EXPECT_EQ(parser.database_url(), "postgresql://h/db");

  CommandLineParser rebuild;
  EXPECT_EQ(parse(rebuild, {"projections", "rebuild", "balances", "--timeout", "2.5"}),
            CommandId::kProjectionsRebuild);
  EXPECT_EQ(rebuild.args().rebuild.name, "balances");
}

TEST(CliCommandLineTest, HelpVersionAndUsageErrorsThrowInsteadOfExiting) {
  for (const std::vector<const char*>& args :
       {std::vector<const char*>{"--help"}, {"append", "--help"}, {"--version"}}) {
    CommandLineParser parser;
    try {
      static_cast<void>(parse(parser, args));
      ADD_FAILURE() << args.back();
    } catch (const CLI::ParseError& e) {
      EXPECT_EQ(e.get_exit_code(), 0) << args.back();
    }
  }
  CommandLineParser missing_stream;
  EXPECT_THROW(static_cast<void>(parse(missing_stream, {"append"})), CLI::ParseError);
  CommandLineParser unknown;
  EXPECT_THROW(static_cast<void>(parse(unknown, {"frobnicate"})), annals::InvalidArgumentError);
  CommandLineParser empty_db;
  static_cast<void>(parse(empty_db, {"--db", "", "read", "s"}));
  EXPECT_THROW(static_cast<void>(empty_db.database_url()), annals::InvalidArgumentError);
}

}  // namespace
