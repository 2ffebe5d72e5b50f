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

  CommandLineParser repartition;
  EXPECT_EQ(parse(repartition,
                  {"projections", "repartition", "balances", "--partitions", "4", "--wait", "3"}),
            CommandId::kProjectionsRepartition);
  EXPECT_EQ(repartition.args().repartition.name, "balances");
  EXPECT_EQ(repartition.args().repartition.partitions, 4);
  EXPECT_EQ(repartition.args().repartition.wait_seconds, 3.0);
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

TEST(CliCommandLineTest, MigrateAndPartitionsTakeThePartitionedLogOptions) {
  CommandLineParser migrate;
  EXPECT_EQ(parse(migrate, {"migrate", "--partitioned-log", "--partition-size", "5"}),
            CommandId::kMigrate);
  EXPECT_TRUE(migrate.args().migrate.partitioned_log);
  EXPECT_EQ(migrate.args().migrate.partition_size, 5);
  CommandLineParser size_alone;
  EXPECT_THROW(static_cast<void>(parse(size_alone, {"migrate", "--partition-size", "5"})),
               CLI::ParseError);
  CommandLineParser zero;
  EXPECT_THROW(
      static_cast<void>(parse(zero, {"migrate", "--partitioned-log", "--partition-size", "0"})),
      CLI::ParseError);

  CommandLineParser archive;
  EXPECT_EQ(parse(archive, {"partitions", "--archive", "events_from_1", "--to", "cold"}),
            CommandId::kPartitions);
  EXPECT_EQ(archive.args().partitions.archive, "events_from_1");
  EXPECT_EQ(archive.args().partitions.archive_schema, "cold");
  CommandLineParser list;
  EXPECT_EQ(parse(list, {"partitions", "--json"}), CommandId::kPartitions);
  EXPECT_EQ(list.args().partitions.archive_schema, "annals_archive");
  CommandLineParser two_actions;
  EXPECT_THROW(static_cast<void>(parse(two_actions, {"partitions", "--ensure", "--restore", "x"})),
               CLI::ParseError);
  CommandLineParser ahead;
  EXPECT_EQ(parse(ahead, {"partitions", "--ensure", "--ahead", "12"}), CommandId::kPartitions);
  EXPECT_EQ(ahead.args().partitions.ahead, std::optional<int>(12));
  CommandLineParser ahead_alone;
  EXPECT_THROW(static_cast<void>(parse(ahead_alone, {"partitions", "--ahead", "3"})),
               CLI::ParseError);
  CommandLineParser to_alone;
  EXPECT_THROW(static_cast<void>(parse(to_alone, {"partitions", "--to", "cold"})), CLI::ParseError);
}

TEST(CliCommandLineTest, RelayTakesItsSelectionSinkAndStatusOptions) {
  CommandLineParser parser;
  EXPECT_EQ(parse(parser, {"relay",
                           "--nats",
                           "nats://127.0.0.1:4222",
                           "--category",
                           "order",
                           "--category",
                           "invoice",
                           "--type",
                           "Placed",
                           "--subject-prefix",
                           "shop",
                           "--create-stream",
                           "SHOP",
                           "--batch-size",
                           "100",
                           "--json",
                           "--on-failure",
                           "dead-letter",
                           "--status-interval",
                           "2",
                           "--session-db",
                           "postgresql://db:5432/annals"}),
            CommandId::kRelay);
  const auto& args = parser.args().relay;
  EXPECT_EQ(args.nats_url, "nats://127.0.0.1:4222");
  EXPECT_EQ(args.categories, (std::vector<std::string>{"order", "invoice"}));
  EXPECT_EQ(args.event_types, (std::vector<std::string>{"Placed"}));
  EXPECT_EQ(args.subject_prefix, "shop");
  EXPECT_EQ(args.create_stream, std::optional<std::string>("SHOP"));
  EXPECT_EQ(args.batch_size, 100U);
  EXPECT_TRUE(args.json);
  EXPECT_EQ(args.on_failure, "dead-letter");
  EXPECT_EQ(args.status_interval_seconds, 2.0);
  EXPECT_EQ(args.session_db, std::optional<std::string>("postgresql://db:5432/annals"));

  CommandLineParser webhook;
  EXPECT_EQ(parse(webhook, {"relay", "--webhook", "http://127.0.0.1:8080/in"}), CommandId::kRelay);
  EXPECT_EQ(webhook.args().relay.webhook_url,
            std::optional<std::string>("http://127.0.0.1:8080/in"));

  CommandLineParser both;
  EXPECT_THROW(
      static_cast<void>(parse(both, {"relay", "--nats", "nats://h", "--webhook", "http://h/"})),
      CLI::ParseError);
  CommandLineParser bad_policy;
  EXPECT_THROW(static_cast<void>(parse(bad_policy, {"relay", "--on-failure", "ignore"})),
               CLI::ParseError);
  CommandLineParser zero_batch;
  EXPECT_THROW(static_cast<void>(parse(zero_batch, {"relay", "--batch-size", "0"})),
               CLI::ParseError);
}

}  // namespace
