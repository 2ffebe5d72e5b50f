// Drives the real `annals` binary against PostgreSQL: every exit code, the JSON output shapes,
// stdin data, idempotent re-sends, --from semantics, filters and unicode stream ids
// (docs/cli.md is the contract these tests pin down).
//
// Each test runs in its own process (gtest_discover_tests), so each gets a fresh database from
// annals::testing::test_database_url().
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/eventstore/types.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "cli_runner.hpp"
#include "run_process.hpp"
#include "test_database.hpp"

namespace {

using namespace annals::testing::cli;  // NOLINT(google-build-using-namespace): test helpers

// --- help and usage -------------------------------------------------------------------------

TEST(CliTest, HelpListsEveryVerbAndExitsZero) {
  const auto r = run_annals({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  for (const char* word :
       {"migrate", "append", "read", "read-all", "--db", "ANNALS_DATABASE_URL", "Exit codes"}) {
    EXPECT_NE(r.out.find(word), std::string::npos) << word << "\n" << r;
  }
}

TEST(CliTest, EveryVerbHasHelpAndExitsZero) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> verbs{
      {"migrate", {"--status"}},
      {"append",
       {"STREAM", "TYPE", "DATA_JSON", "--expected-version", "--event-id", "--metadata",
        "--schema-version"}},
      {"read", {"STREAM", "--from", "--limit", "--backward"}},
      {"read-all", {"--from", "--limit", "--category", "--type"}}};
  for (const auto& [verb, words] : verbs) {
    for (const char* flag : {"--help", "-h"}) {
      const auto r = run_annals({verb, flag});
      EXPECT_EQ(r.exit_code, 0) << verb << "\n" << r;
      for (const auto& word : words) {
        EXPECT_NE(r.out.find(word), std::string::npos) << verb << ": " << word << "\n" << r;
      }
    }
  }
}

TEST(CliTest, VersionExitsZero) {
  const auto r = run_annals({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out.rfind("annals ", 0), 0u) << r;
}

TEST(CliTest, MissingVerbUnknownVerbAndUnknownFlagExitTwo) {
  expect_usage_error(run_annals({}));
  const auto unknown = run_annals({"frobnicate"});
  expect_usage_error(unknown);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos) << unknown;
  expect_usage_error(annals_db({"read", "account-1", "--sideways"}));
  expect_usage_error(annals_db({"append", "account-1"}));  // TYPE missing
  expect_usage_error(annals_db({"read"}));                 // STREAM missing
  expect_usage_error(annals_db({"read", "account-1", "--limit", "many"}));
  expect_usage_error(annals_db({"read", "account-1", "--limit"}));
}

// --- connection -----------------------------------------------------------------------------

TEST(CliTest, NoDatabaseExitsTwoNamingBothWays) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"migrate"}, {"read", "account-1"}, {"read-all"}, {"append", "a-1", "T", "{}"}}) {
    const auto r = run_annals(args);
    expect_usage_error(r);
    EXPECT_NE(r.err.find("--db"), std::string::npos) << r;
    EXPECT_NE(r.err.find("ANNALS_DATABASE_URL"), std::string::npos) << r;
  }
}

TEST(CliTest, UnreachableServerExitsOne) {
  const std::string unreachable = "postgresql://annals@127.0.0.1:1/x";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"migrate"}, {"read", "account-1"}, {"read-all"}, {"append", "a-1", "T", "{}"}}) {
    std::vector<std::string> full{"--db", unreachable};
    full.insert(full.end(), args.begin(), args.end());
    const auto r = run_annals(full);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_EQ(r.out, "") << r;
    // Retry warnings may come first ("[warning] ..."); the error is the last line.
    ASSERT_FALSE(r.err_lines().empty()) << r;
    EXPECT_EQ(r.err_lines().back().rfind("annals: ", 0), 0u) << r;
  }
}

TEST(CliTest, DatabaseComesFromEnvironmentAndDbFlagMayFollowTheVerb) {
  const auto stream = unique("account-");
  const auto appended =
      run_annals({"append", stream, "Opened", "{}"}, "", DatabaseEnv::kTestDatabase);
  EXPECT_EQ(appended.exit_code, 0) << appended;
  const auto r = run_annals({"read", stream, "--db", annals::testing::test_database_url()});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out_lines().size(), 1u) << r;
}

TEST(CliTest, DbFlagWinsOverEnvironment) {
  const auto r = run_annals({"--db", "postgresql://annals@127.0.0.1:1/x", "read", "account-1"}, "",
                            DatabaseEnv::kTestDatabase);
  EXPECT_EQ(r.exit_code, 1) << r;
}

// --- migrate --------------------------------------------------------------------------------

TEST(CliTest, MigrateAppliesPendingMigrationsThenReportsUpToDate) {
  const std::string name = "annals_cli_migrate_" + std::to_string(::getpid());
  const auto url = create_unmigrated_database(name);

  const auto before = run_annals({"--db", url, "read", "account-1"});
  EXPECT_EQ(before.exit_code, 1) << before;  // the schema is missing: an error, not bad input
  const auto pending = run_annals({"--db", url, "migrate", "--status"});
  EXPECT_EQ(pending.exit_code, 0) << pending;
  EXPECT_NE(pending.out.find("pending  0001_"), std::string::npos) << pending;

  const auto first = run_annals({"--db", url, "migrate"});
  EXPECT_EQ(first.exit_code, 0) << first;
  ASSERT_FALSE(first.out_lines().empty()) << first;
  for (const auto& line : first.out_lines()) {
    EXPECT_EQ(line.rfind("applied ", 0), 0u) << first;
  }
  EXPECT_NE(first.out.find("applied 0001_"), std::string::npos) << first;

  const auto second = run_annals({"--db", url, "migrate"});
  EXPECT_EQ(second.exit_code, 0) << second;
  EXPECT_EQ(second.out, "schema is up to date\n") << second;
  const auto status = run_annals({"--db", url, "migrate", "--status"});
  EXPECT_NE(status.out.find("applied  0001_"), std::string::npos) << status;
  EXPECT_EQ(status.out.find("pending"), std::string::npos) << status;

  const auto after = run_annals({"--db", url, "read", "account-1"});
  EXPECT_EQ(after.exit_code, 0) << after;
  drop_database(name);
}

// --- append ---------------------------------------------------------------------------------

TEST(CliTest, AppendPrintsOneJsonObject) {
  const auto stream = unique("account-");
  const auto r = annals_db({"append", stream, "Opened", R"({"owner":"Ada"})"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.err, "");
  ASSERT_EQ(r.out_lines().size(), 1u) << r;
  const auto j = r.out_json().front();
  EXPECT_EQ(keys(j),
            (std::vector<std::string>{"stream", "first_version", "last_version", "position"}));
  EXPECT_EQ(j["stream"], stream);
  EXPECT_EQ(j["first_version"], 1);
  EXPECT_EQ(j["last_version"], 1);
  EXPECT_TRUE(j["position"].is_string()) << r;

  const auto next = append_ok({stream, "Deposited", R"({"amount":5})"});
  EXPECT_EQ(next["first_version"], 2);
  EXPECT_EQ(next["last_version"], 2);
  EXPECT_NE(next["position"], j["position"]);
}

TEST(CliTest, AppendReadsDataFromStdin) {
  const auto stream = unique("account-");
  append_ok({stream, "Opened"}, "{\"owner\": \"Grace\",\n \"tags\": [\"a\", \"b\"]}\n");
  const auto r = annals_db({"read", stream});
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_EQ(r.out_json().size(), 1u) << r;
  EXPECT_EQ(unordered(r.out_json()[0]["data"]),
            nlohmann::json::parse(R"({"owner":"Grace","tags":["a","b"]})"));
}

TEST(CliTest, ExpectedVersionModesAcceptMatchingStreams) {
  const auto a1 = unique("account-");
  const auto a2 = unique("account-");
  append_ok({a1, "Opened", "{}", "--expected-version", "no-stream"});
  append_ok({a1, "Deposited", "{}", "--expected-version", "1"});
  append_ok({a1, "Deposited", "{}", "--expected-version", "exists"});
  append_ok({a1, "Deposited", "{}", "--expected-version", "any"});
  append_ok({a1, "Deposited", "{}"});  // any is the default
  append_ok({a2, "Opened", "{}", "--expected-version", "0"});
  append_ok({a2, "Deposited", "{}", "--expected-version=1"});
  EXPECT_EQ(versions(annals_db({"read", a1})), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(versions(annals_db({"read", a2})), (std::vector<std::int64_t>{1, 2}));
}

TEST(CliTest, ExpectedVersionConflictExitsThreeWithJsonErrorAndWritesNothing) {
  const auto a1 = unique("account-");
  const auto a2 = unique("account-");
  append_ok({a1, "Opened", "{}"});
  struct Case {
    std::string stream;
    std::string expected;
    Json actual;
  };
  for (const auto& c : std::vector<Case>{{a1, "no-stream", 1},
                                         {a1, "0", 1},
                                         {a1, "5", 1},
                                         {a2, "exists", nullptr},
                                         {a2, "3", nullptr}}) {
    const auto r =
        annals_db({"append", c.stream, "Deposited", "{}", "--expected-version", c.expected});
    EXPECT_EQ(r.exit_code, 3) << r;
    EXPECT_EQ(r.out, "") << r;
    ASSERT_EQ(r.err_lines().size(), 2u) << r;
    EXPECT_EQ(r.err_lines()[0].rfind("annals: ", 0), 0u) << r;
    const auto error = r.err_json();
    EXPECT_EQ(keys(error), (std::vector<std::string>{"error", "stream", "expected", "actual"}));
    EXPECT_EQ(error["error"], "concurrency") << r;
    EXPECT_EQ(error["stream"], c.stream) << r;
    // Exact 0 means "no events yet"; the store may report it as "0" or as "no-stream".
    EXPECT_TRUE(error["expected"] == c.expected ||
                (c.expected == "0" && error["expected"] == "no-stream"))
        << r;
    EXPECT_EQ(error["actual"], c.actual) << r;
  }
  EXPECT_EQ(versions(annals_db({"read", a1})), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(annals_db({"read", a2}).out, "");
}

TEST(CliTest, ExactResendExitsZeroWithTheOriginalOutput) {
  const auto stream = unique("account-");
  const std::vector<std::string> args{"append",
                                      stream,
                                      "Opened",
                                      R"({"owner":"Ada"})",
                                      "--event-id",
                                      new_event_id(),
                                      "--expected-version",
                                      "no-stream"};
  const auto first = annals_db(args);
  ASSERT_EQ(first.exit_code, 0) << first;
  append_ok({stream, "Deposited", R"({"amount":1})"});
  const auto again = annals_db(args);  // would conflict, but it is a re-send of stored events
  EXPECT_EQ(again.exit_code, 0) << again;
  EXPECT_EQ(again.out, first.out);
  EXPECT_EQ(versions(annals_db({"read", stream})), (std::vector<std::int64_t>{1, 2}));
}

TEST(CliTest, EventIdStoredInAnotherStreamExitsTwo) {
  const auto id = new_event_id();
  const auto a1 = unique("account-");
  const auto a2 = unique("account-");
  append_ok({a1, "Opened", "{}", "--event-id", id});
  const auto r = annals_db({"append", a2, "Opened", "{}", "--event-id", id});
  expect_usage_error(r);
  EXPECT_EQ(annals_db({"read", a2}).out, "");
}

// A re-send of a stored --event-id with other data is not idempotent: exit 2, and
// the message names the event, its stream and version, and the part that differs.
TEST(CliTest, ResendWithChangedDataExitsTwoNamingTheEvent) {
  const auto id = new_event_id();
  const auto stream = unique("account-");
  append_ok({stream, "Opened", R"({"owner":"Ada"})", "--event-id", id});
  const auto r = annals_db({"append", stream, "Opened", R"({"owner":"Bob"})", "--event-id", id});
  expect_usage_error(r);
  EXPECT_NE(r.err.find(id), std::string::npos) << r;
  EXPECT_NE(r.err.find(stream), std::string::npos) << r;
  EXPECT_NE(r.err.find("version 1"), std::string::npos) << r;
  EXPECT_NE(r.err.find("data"), std::string::npos) << r;
  EXPECT_EQ(versions(annals_db({"read", stream})), (std::vector<std::int64_t>{1}));
}

TEST(CliTest, InvalidInputExitsTwoAndWritesNothing) {
  const auto end = log_end();
  const std::string too_long(600, 'x');
  const std::vector<std::vector<std::string>> cases{
      {"append", "account-1", "Opened", R"({"owner":)"},
      {"append", "account-1", "Opened", "{}", "--metadata", "{broken"},
      {"append", "account-1", "Opened", "{}", "--metadata", "[1,2]"},
      {"append", "account-1", "Opened", "{}", "--event-id", "not-a-uuid"},
      {"append", "account-1", "Opened", "{}", "--event-id", "0190f5d2-7a4e-7c3b-9d2e-4f1a2b3c4d5"},
      {"append", "account-1", "Opened", "{}", "--expected-version", "sometimes"},
      {"append", "account-1", "Opened", "{}", "--expected-version", "-2"},
      {"append", "", "Opened", "{}"},
      {"append", "acc\x01unt-1", "Opened", "{}"},
      {"append", "account-\n1", "Opened", "{}"},
      {"append", too_long, "Opened", "{}"},
      {"append", "account-1", "", "{}"},
      {"append", "account-1", "Opened", "{}", "--schema-version", "0"},
      {"append", "account-1", "Opened", "{}", "--schema-version", "x"},
      {"append", "account-1", "Opened"},  // and stdin is empty
      {"read", "", "--limit", "1"},
      {"read", "account-1", "--from", "0"},
      {"read", "account-1", "--limit", "-1"},
      {"read-all", "--from", "banana"},
      {"read-all", "--from", "-7"},
      {"read-all", "--limit", "-1"},
      {"read-all", "--category", ""},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(args.size() > 1 ? args[0] + " " + args[1] : args[0]);
    expect_usage_error(annals_db(args));
  }
  EXPECT_EQ(log_end(), end);
}

TEST(CliTest, OversizedDataOnStdinExitsTwoAndWritesNothing) {
  const std::string big = "{\"blob\":\"" + std::string((std::size_t{1} << 20) + 16, 'x') + "\"}";
  const auto end = log_end();
  const auto stream = unique("account-");
  const auto r = annals_db({"append", stream, "Opened"}, big);
  expect_usage_error(r);
  EXPECT_EQ(log_end(), end);
  // Far under the default 1 MiB limit is fine.
  append_ok({stream, "Opened"}, "{\"blob\":\"" + std::string(1000, 'y') + "\"}");
}

TEST(CliTest, JsonNested100000DeepOnStdinOrInArgumentsExitsTwoNamingTheLimit) {
  constexpr std::size_t kDeep = 100'000;
  std::string object;
  for (std::size_t i = 0; i < kDeep; ++i) object += "{\"a\":";
  object += "1" + std::string(kDeep, '}');
  const std::string array = std::string(kDeep, '[') + std::string(kDeep, ']');
  const auto end = log_end();
  const auto stream = unique("account-");
  for (const auto& deep : {array, object}) {
    const auto on_stdin = annals_db({"append", stream, "Opened"}, deep);
    expect_usage_error(on_stdin);
    EXPECT_NE(on_stdin.err.find("the event data on stdin is JSON nested 100000 levels deep, over "
                                "the limit of 512 levels"),
              std::string::npos)
        << on_stdin;
  }
  // One argument is at most 128 KiB on Linux (MAX_ARG_STRLEN): 60,000 levels as arguments.
  const std::string argument = std::string(60'000, '[') + std::string(60'000, ']');
  const auto as_metadata = annals_db({"append", stream, "Opened", "{}", "--metadata", argument});
  expect_usage_error(as_metadata);
  EXPECT_NE(as_metadata.err.find("--metadata is JSON nested 60000 levels deep"), std::string::npos)
      << as_metadata;
  const auto as_data = annals_db({"append", stream, "Opened", argument});
  expect_usage_error(as_data);
  EXPECT_NE(as_data.err.find("DATA_JSON is JSON nested 60000 levels deep"), std::string::npos)
      << as_data;
  EXPECT_EQ(log_end(), end);
}

// --- read -----------------------------------------------------------------------------------

TEST(CliTest, ReadPrintsEveryKeyAsJsonLines) {
  const auto stream = unique("account-");
  const auto id = new_event_id();
  const auto appended =
      append_ok({stream, "Opened", R"({"owner":"Ada","limits":{"daily":100}})", "--event-id", id,
                 "--metadata", R"({"correlation_id":"c-1"})", "--schema-version", "2"});
  const auto r = annals_db({"read", stream});
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_EQ(r.out_json().size(), 1u) << r;
  const auto e = r.out_json()[0];
  EXPECT_EQ(keys(e),
            (std::vector<std::string>{"stream", "version", "position", "event_id", "type",
                                      "schema_version", "data", "metadata", "recorded_at"}));
  EXPECT_EQ(e["stream"], stream);
  EXPECT_EQ(e["version"], 1);
  EXPECT_EQ(e["position"], appended["position"]);
  EXPECT_EQ(e["event_id"], id);
  EXPECT_EQ(e["type"], "Opened");
  EXPECT_EQ(e["schema_version"], 2);
  EXPECT_EQ(unordered(e["data"]),
            nlohmann::json::parse(R"({"owner":"Ada","limits":{"daily":100}})"));
  EXPECT_EQ(unordered(e["metadata"]), nlohmann::json::parse(R"({"correlation_id":"c-1"})"));
  static const std::regex kRfc3339(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$)");
  EXPECT_TRUE(std::regex_match(e["recorded_at"].get<std::string>(), kRfc3339)) << r;
}

// The stored text is printed without its blanks (issue 14: no parse and dump), so blanks,
// quotes and backslashes inside strings must survive exactly, keys come in jsonb's order, and
// the line is what dump() of the value would print up to that order.
TEST(CliTest, ReadPrintsStoredJsonCompactWithStringsIntact) {
  const auto stream = unique("account-");
  const std::string data =
      R"({"a b": " x , y : z ", "q": "say \"hi\"", "bs": "end\\", "mix": "\\\" ,", )"
      R"("nested": {"k": [1, 2.5, -3, true, null, "t\tab"]}, "u": "Zo\u00eb \u2713 \ud83d\ude00"})";
  append_ok({stream, "Opened", data, "--metadata", R"({"note": "a \"b\" c"})"});
  const auto r = annals_db({"read", stream});
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_EQ(r.out_json().size(), 1u) << r;
  const auto expected = nlohmann::json::parse(data);
  EXPECT_EQ(unordered(r.out_json()[0]["data"]), expected);
  EXPECT_EQ(unordered(r.out_json()[0]["metadata"]),
            nlohmann::json::parse(R"({"note": "a \"b\" c"})"));
  // jsonb orders keys by length, then bytewise; no blank outside a string.
  EXPECT_NE(r.out.find(R"("data":{"q":"say \"hi\"","u":"Zoë ✓ 😀","bs":"end\\","a b":" x , y : z ",)"
                       R"("mix":"\\\" ,","nested":{"k":[1,2.5,-3,true,null,"t\tab"]}},)"
                       R"("metadata":{"note":"a \"b\" c"},)"),
            std::string::npos)
      << r;
}

TEST(CliTest, ReadFromIsTheFirstVersionReturned) {
  const auto stream = unique("account-");
  for (int i = 0; i < 5; ++i) append_ok({stream, "Deposited", "{}"});
  EXPECT_EQ(versions(annals_db({"read", stream})), (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(versions(annals_db({"read", stream, "--from", "3"})),
            (std::vector<std::int64_t>{3, 4, 5}));
  EXPECT_EQ(versions(annals_db({"read", stream, "--from", "2", "--limit", "2"})),
            (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(versions(annals_db({"read", stream, "--backward"})),
            (std::vector<std::int64_t>{5, 4, 3, 2, 1}));
  EXPECT_EQ(versions(annals_db({"read", stream, "--backward", "--from", "2"})),
            (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ(versions(annals_db({"read", stream, "--from", "9"})), (std::vector<std::int64_t>{}));
  const auto missing = annals_db({"read", unique("missing-")});
  EXPECT_EQ(missing.exit_code, 0) << missing;  // absence is not an error
  EXPECT_EQ(missing.out, "");
}

// --- read-all -------------------------------------------------------------------------------

TEST(CliTest, ReadAllFromContinuesAfterTheGivenPosition) {
  const auto start = log_end();
  const auto account = unique("account-");
  const auto order = unique("order-");
  append_ok({account, "Opened", "{}"});
  append_ok({order, "Placed", "{}"});
  append_ok({account, "Deposited", "{}"});
  wait_until_readable(append_ok({order, "Shipped", "{}"}));
  const auto all = annals_db({"read-all", "--from", start});
  ASSERT_EQ(all.exit_code, 0) << all;
  const auto events = all.out_json();
  ASSERT_EQ(events.size(), 4u) << all;
  EXPECT_EQ(events[0]["type"], "Opened");
  EXPECT_EQ(events[3]["type"], "Shipped");

  const auto rest = annals_db({"read-all", "--from", events[1]["position"].get<std::string>()});
  ASSERT_EQ(rest.exit_code, 0) << rest;
  EXPECT_EQ(rest.out_json(), (std::vector<Json>{events[2], events[3]}));
  EXPECT_EQ(annals_db({"read-all", "--from", events[3]["position"].get<std::string>()}).out, "");
  EXPECT_EQ(annals_db({"read-all", "--from", start, "--limit", "2"}).out_json(),
            (std::vector<Json>{events[0], events[1]}));
  // "0" is the start of the log: everything, ending with this test's events.
  const auto from_start = annals_db({"read-all", "--from", "0"});
  ASSERT_EQ(from_start.exit_code, 0) << from_start;
  EXPECT_TRUE(from_start.out.ends_with(all.out)) << from_start;
  EXPECT_EQ(annals_db({"read-all"}).out, from_start.out);
}

TEST(CliTest, ReadAllFiltersByCategoryAndRepeatableType) {
  const auto start = log_end();
  const auto account = unique("account");
  const auto order = unique("order");
  append_ok({account + "-1", "Opened", "{}"});
  append_ok({order + "-1", "Placed", "{}"});
  append_ok({account + "-2", "Opened", "{}"});
  append_ok({account + "-1", "Deposited", "{}"});
  wait_until_readable(append_ok({account + "ing-1", "Opened", "{}"}));
  // Streams and types read after `start`, with this test's unique prefixes cut off.
  const auto summary = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"read-all", "--from", start});
    const auto r = annals_db(args);
    EXPECT_EQ(r.exit_code, 0) << r;
    std::vector<std::string> out;
    for (const auto& j : r.out_json()) {
      auto stream = j["stream"].get<std::string>();
      if (stream.starts_with(account)) stream = "account" + stream.substr(account.size());
      if (stream.starts_with(order)) stream = "order" + stream.substr(order.size());
      out.push_back(stream + "/" + j["type"].get<std::string>());
    }
    return out;
  };
  EXPECT_EQ(
      summary({"--category", account}),
      (std::vector<std::string>{"account-1/Opened", "account-2/Opened", "account-1/Deposited"}));
  EXPECT_EQ(summary({"--type", "Placed", "--type", "Deposited"}),
            (std::vector<std::string>{"order-1/Placed", "account-1/Deposited"}));
  EXPECT_EQ(summary({"--category", account, "--type", "Opened"}),
            (std::vector<std::string>{"account-1/Opened", "account-2/Opened"}));
  EXPECT_EQ(summary({"--category", account, "--limit", "1"}),
            (std::vector<std::string>{"account-1/Opened"}));
  EXPECT_TRUE(summary({"--category", unique("nothing")}).empty());
}

// --- stream ids -----------------------------------------------------------------------------

TEST(CliTest, UnicodeAndSqlMetacharacterStreamIdsRoundTripVerbatim) {
  const auto start = log_end();
  const auto suffix = unique("-");
  const std::string unicode = "konto-ünïcødé-日本-😀" + suffix;
  for (const std::string& stream : {unicode, "o'brien-\"x\"; DROP TABLE annals.events;--" + suffix,
                                    "percent-100%_\\n" + suffix}) {
    SCOPED_TRACE(stream);
    const auto appended = append_ok({stream, "Geöffnet", R"({"näme":"Zoë ✓"})"});
    EXPECT_EQ(appended["stream"], stream);
    const auto r = annals_db({"read", stream});
    ASSERT_EQ(r.exit_code, 0) << r;
    ASSERT_EQ(r.out_json().size(), 1u) << r;
    EXPECT_EQ(r.out_json()[0]["stream"], stream);
    EXPECT_EQ(r.out_json()[0]["type"], "Geöffnet");
    EXPECT_EQ(r.out_json()[0]["data"]["näme"], "Zoë ✓");
    wait_until_readable(appended);
  }
  const auto category = annals_db({"read-all", "--from", start, "--category", "konto"});
  ASSERT_EQ(category.out_json().size(), 1u) << category;
  EXPECT_EQ(category.out_json()[0]["stream"], unicode);
  const auto percent = annals_db({"read-all", "--from", start, "--category", "percent"});
  EXPECT_EQ(percent.out_json().size(), 1u) << percent;
  EXPECT_EQ(annals_db({"read-all", "--from", start, "--category", "perc%"}).out, "");
  EXPECT_EQ(annals_db({"read-all", "--from", start, "--category", "_onto"}).out, "");
}

// `annals anchor` and `annals verify --anchor`: the anchor is one JSON line;
// verifying it exits 0, a newer one resumes from a recorded older one (events_hashed counts
// only the events since), and a rewritten event before the anchor exits 6 with
// anchor-mismatch. A missing anchor file or --stream with --anchor is a usage error (2).
TEST(CliTest, AnchorPrintsJsonAndVerifyAnchorProvesThePrefix) {
  const std::string stream = annals::testing::unique_stream("anchored");
  append_ok({stream, "Opened", R"({"owner":"Ada"})"});
  append_ok({stream, "Deposited", R"({"amount":100})"});
  const auto dir = std::filesystem::temp_directory_path() / stream;
  std::filesystem::create_directories(dir);
  const auto take = [&](const std::string& name) {
    // Anchors cover settled events only: wait until no older transaction (of another test
    // process) holds the stream's events back, as PostgresStoreTest does for read_all.
    pqxx::connection c(annals::testing::test_database_url());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!pqxx::nontransaction(c)
                .exec_params1("SELECT max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot())"
                              "  FROM annals.events WHERE stream_id = $1",
                              stream)[0]
                .as<bool>() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const auto r = annals_db({"anchor", "--record"});
    EXPECT_EQ(r.exit_code, 0) << r;
    std::ofstream(dir / name) << r.out;
    return nlohmann::json::parse(r.out);
  };
  const auto older = take("older.json");
  EXPECT_TRUE(older["position"].is_string());
  EXPECT_EQ(older["digest"].get<std::string>().size(), 64u);
  EXPECT_TRUE(older["time"].is_string());
  const std::string older_file = (dir / "older.json").string();
  const std::string newer_file = (dir / "newer.json").string();

  const auto one = annals_db({"verify", "--anchor", older_file, "--json"});
  ASSERT_EQ(one.exit_code, 0) << one;
  const auto one_report = nlohmann::json::parse(one.out);
  EXPECT_EQ(one_report["anchors"][0]["outcome"], "verified");
  EXPECT_EQ(one_report["events_hashed"], older["events"]);

  append_ok({stream, "Deposited", R"({"amount":5})"});
  const auto newer = take("newer.json");
  const auto both = annals_db({"verify", "--anchor", older_file, "--anchor", newer_file, "--json"});
  ASSERT_EQ(both.exit_code, 0) << both;
  const auto both_report = nlohmann::json::parse(both.out);
  EXPECT_EQ(both_report["anchors"][0]["outcome"], "resumed");
  EXPECT_EQ(both_report["anchors"][1]["outcome"], "verified");
  EXPECT_EQ(both_report["events_hashed"],
            newer["events"].get<std::int64_t>() - older["events"].get<std::int64_t>());
  const auto full =
      annals_db({"verify", "--anchor", older_file, "--anchor", newer_file, "--full", "--json"});
  ASSERT_EQ(full.exit_code, 0) << full;
  EXPECT_EQ(nlohmann::json::parse(full.out)["events_hashed"], newer["events"]);

  const auto rewrite = [&](const std::string& data) {
    pqxx::connection c(annals::testing::test_database_url());
    pqxx::work tx(c);
    tx.exec("ALTER TABLE annals.events DISABLE TRIGGER USER");
    tx.exec_params(
        "UPDATE annals.events e SET data = $2::jsonb, hash = annals.event_hash(p.hash,"
        " e.event_id, e.stream_id, e.stream_version, e.event_type, e.schema_version,"
        " $2::jsonb, e.metadata, e.recorded_at) FROM annals.events p"
        " WHERE e.stream_id = $1 AND e.stream_version = 3"
        "   AND p.stream_id = $1 AND p.stream_version = 2",
        stream, data);
    tx.exec("ALTER TABLE annals.events ENABLE TRIGGER USER");
    tx.commit();
  };
  rewrite(R"({"amount": 5000})");
  const auto tampered = annals_db({"verify", "--anchor", newer_file});
  const auto chain_only = annals_db({"verify", "--stream", stream});
  rewrite(R"({"amount": 5})");
  EXPECT_EQ(chain_only.exit_code, 0) << chain_only;
  EXPECT_EQ(tampered.exit_code, 6) << tampered;
  EXPECT_NE(tampered.out.find("anchor-mismatch: anchor at " + newer["position"].get<std::string>()),
            std::string::npos)
      << tampered;
  EXPECT_EQ(annals_db({"verify", "--anchor", newer_file}).exit_code, 0);

  EXPECT_EQ(annals_db({"verify", "--anchor", (dir / "none.json").string()}).exit_code, 2);
  EXPECT_EQ(annals_db({"verify", "--stream", stream, "--anchor", older_file}).exit_code, 2);
  std::filesystem::remove_all(dir);
}

// `annals verify` (decision 8): 0 on a clean stream, 6 with the finding located after an edit
// behind the append-only triggers, JSON for scripts, 2 for a bad flag.
TEST(CliTest, VerifyExitsZeroWhenCleanAndSixWhenHistoryWasEdited) {
  const std::string stream = annals::testing::unique_stream("audit");
  append_ok({stream, "Opened", R"({"owner":"Ada"})"});
  append_ok({stream, "Deposited", R"({"amount":100})"});

  const auto clean = annals_db({"verify", "--stream", stream});
  ASSERT_EQ(clean.exit_code, 0) << clean;
  EXPECT_NE(clean.out.find("verified 2 events in 1 streams: ok"), std::string::npos) << clean;

  {
    pqxx::connection c(annals::testing::test_database_url());
    pqxx::work tx(c);
    tx.exec("ALTER TABLE annals.events DISABLE TRIGGER events_refuse_update_delete");
    tx.exec_params(
        "UPDATE annals.events SET data = '{\"amount\": 1000000}'"
        " WHERE stream_id = $1 AND stream_version = 2",
        stream);
    tx.exec("ALTER TABLE annals.events ENABLE TRIGGER events_refuse_update_delete");
    tx.commit();
  }
  const auto tampered = annals_db({"verify", "--stream", stream});
  EXPECT_EQ(tampered.exit_code, 6) << tampered;
  EXPECT_NE(tampered.out.find("hash-mismatch: stream \"" + stream + "\" version 2"),
            std::string::npos)
      << tampered;

  const auto json = annals_db({"verify", "--stream", stream, "--json"});
  EXPECT_EQ(json.exit_code, 6) << json;
  const auto report = nlohmann::json::parse(json.out);
  EXPECT_EQ(report["ok"], false);
  EXPECT_EQ(report["events"], 2);
  ASSERT_EQ(report["findings"].size(), 1u);
  EXPECT_EQ(report["findings"][0]["kind"], "hash-mismatch");
  EXPECT_EQ(report["findings"][0]["version"], 2);

  EXPECT_EQ(annals_db({"verify", "--max-findings", "0"}).exit_code, 2);
}

}  // namespace
