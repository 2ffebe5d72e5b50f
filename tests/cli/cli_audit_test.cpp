// The auditor's verbs through the real `annals` binary against PostgreSQL (docs/cli.md,
// docs/auditing.md): `streams`, `stats`, `read --as-of/--at-version/--since/--until/--type`,
// `tail` (read-all --follow) live and stopped by SIGINT, bulk `dead-letters` (in
// projection_commands_test.cpp), `--json` on migrate, and the bash completion script.
//
// Each test runs in its own process (gtest_discover_tests) with its own database, so counts
// are exact.
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "child_process.hpp"
#include "cli_runner.hpp"
#include "test_database.hpp"

namespace {

using namespace annals::testing::cli;  // NOLINT(google-build-using-namespace): test helpers
using namespace std::chrono_literals;

Json one_json(const Result& r) {
  EXPECT_EQ(r.exit_code, 0) << r;
  const auto lines = r.out_json();
  EXPECT_EQ(lines.size(), 1U) << r;
  return lines.empty() ? Json() : lines.front();
}

// Appends `count` events of `type` to `stream`; returns the last result line.
Json append_n(const std::string& stream, int count, const std::string& type = "Deposited") {
  Json last;
  for (int i = 0; i < count; ++i)
    last = append_ok({stream, type, R"({"n":)" + std::to_string(i) + "}"});
  return last;
}

// --- streams -----------------------------------------------------------------------------------

TEST(CliAuditTest, StreamsListsEachStreamWithVersionAndTimesFilteredAndPaged) {
  const auto c = unique("acct");
  append_n(c + "-1", 3);
  append_n(c + "-2", 1);
  append_n(c + "x-1", 2);  // another category that shares the prefix
  const auto r = annals_db({"streams", "--category", c, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  const auto rows = r.out_json();
  ASSERT_EQ(rows.size(), 2U) << r;
  EXPECT_EQ(keys(rows[0]), (std::vector<std::string>{"stream", "version", "events", "created",
                                                     "updated", "last_type", "deleted"}));
  EXPECT_EQ(rows[0]["stream"], c + "-1");
  EXPECT_EQ(rows[0]["version"], 3);
  EXPECT_EQ(rows[0]["events"], 3);
  EXPECT_LE(rows[0]["created"].get<std::string>(), rows[0]["updated"].get<std::string>());
  EXPECT_EQ(rows[1]["stream"], c + "-2");
  EXPECT_EQ(rows[0]["deleted"], false);

  // A soft-deleted stream is listed, flagged; its tombstone counts as its last event.
  const auto deleted = annals_db({"delete-stream", c + "-2", "--expected-version", "1"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted;
  const auto after = annals_db({"streams", "--category", c, "--json"}).out_json();
  ASSERT_EQ(after.size(), 2U);
  EXPECT_EQ(after[1]["deleted"], true);
  EXPECT_EQ(after[1]["version"], 2);
  EXPECT_EQ(after[1]["last_type"], "$stream-deleted");

  // --prefix matches both categories; --limit and --after page through them.
  const auto prefixed = annals_db({"streams", "--prefix", c, "--json"}).out_json();
  EXPECT_EQ(prefixed.size(), 3U);
  const auto first = annals_db({"streams", "--prefix", c, "--limit", "1", "--json"}).out_json();
  ASSERT_EQ(first.size(), 1U);
  const auto rest = annals_db({"streams", "--prefix", c, "--after",
                               first[0]["stream"].get<std::string>(), "--json"})
                        .out_json();
  ASSERT_EQ(rest.size(), 2U);
  EXPECT_NE(rest[0]["stream"], first[0]["stream"]);

  // The table for people has a header and one row per stream.
  const auto table = annals_db({"streams", "--category", c});
  EXPECT_EQ(table.exit_code, 0) << table;
  EXPECT_EQ(table.out_lines().size(), 3U) << table;
  EXPECT_EQ(table.out_lines()[0].rfind("STREAM", 0), 0U) << table;
}

TEST(CliAuditTest, StreamsRefusesBadFiltersWithExitTwoAndSqlTextIsData) {
  expect_usage_error(annals_db({"streams", "--category", "a-b"}));
  expect_usage_error(annals_db({"streams", "--category", ""}));
  expect_usage_error(annals_db({"streams", "--prefix", ""}));
  expect_usage_error(annals_db({"streams", "--limit", "-1"}));
  // SQL metacharacters are parameters, never SQL.
  const auto hostile = "x'); DROP TABLE annals.events; --";
  const auto r = annals_db({"streams", "--prefix", hostile, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "");
  append_ok({unique("still") + "-1", "Opened", "{}"});  // the table is still there
}

// --- stats -------------------------------------------------------------------------------------

TEST(CliAuditTest, StatsCountsEventsStreamsBytesRecentAppendsAndTopCategories) {
  const auto big = unique("big");
  const auto small = unique("small");
  append_n(big + "-1", 3);
  append_n(big + "-2", 2);
  const auto last = append_n(small + "-1", 1);
  wait_until_readable(last);
  const auto stats = one_json(annals_db({"stats", "--json"}));
  EXPECT_EQ(keys(stats),
            (std::vector<std::string>{"events", "streams", "bytes", "head", "events_last_minute",
                                      "events_last_hour", "rate_last_minute", "rate_last_hour",
                                      "top_categories"}));
  EXPECT_EQ(stats["events"], 6);
  EXPECT_EQ(stats["streams"], 3);
  EXPECT_GT(stats["bytes"].get<std::int64_t>(), 0);
  EXPECT_EQ(stats["head"], last["position"]);
  EXPECT_EQ(stats["events_last_minute"], 6);
  EXPECT_EQ(stats["events_last_hour"], 6);
  EXPECT_DOUBLE_EQ(stats["rate_last_minute"].get<double>(), 0.1);
  ASSERT_EQ(stats["top_categories"].size(), 2U);
  EXPECT_EQ(stats["top_categories"][0], (Json{{"category", big}, {"events", 5}, {"streams", 2}}));
  EXPECT_EQ(stats["top_categories"][1], (Json{{"category", small}, {"events", 1}, {"streams", 1}}));
  EXPECT_EQ(one_json(annals_db({"stats", "--json", "--top", "1"}))["top_categories"].size(), 1U);

  const auto text = annals_db({"stats"});
  EXPECT_EQ(text.exit_code, 0) << text;
  EXPECT_NE(text.out.find("events       6"), std::string::npos) << text;
  EXPECT_NE(text.out.find("CATEGORY"), std::string::npos) << text;
}

TEST(CliAuditTest, StatsOfAnEmptyStore) {
  const auto stats = one_json(annals_db({"stats", "--json"}));
  EXPECT_EQ(stats["events"], 0);
  EXPECT_EQ(stats["streams"], 0);
  EXPECT_EQ(stats["head"], "0");
  EXPECT_EQ(stats["top_categories"], Json::array());
}

// --- read as of a time or version -------------------------------------------------------------

TEST(CliAuditTest, ReadAsOfAndAtVersionShowTheStreamAsItWas) {
  const auto s = unique("acct") + "-1";
  append_n(s, 4);
  const auto all = annals_db({"read", s}).out_json();
  ASSERT_EQ(all.size(), 4U);
  EXPECT_EQ(versions(annals_db({"read", s, "--at-version", "2"})),
            (std::vector<std::int64_t>{1, 2}));
  const auto second_time = all[1]["recorded_at"].get<std::string>();
  const auto as_of = annals_db({"read", s, "--as-of", second_time}).out_json();
  ASSERT_GE(as_of.size(), 2U);
  for (const auto& e : as_of) EXPECT_LE(e["recorded_at"].get<std::string>(), second_time);
  EXPECT_EQ(annals_db({"read", s, "--since", all[3]["recorded_at"].get<std::string>()})
                .out_json()
                .back()["version"],
            4);
  EXPECT_EQ(annals_db({"read", s, "--type", "Nothing"}).out, "");
  expect_usage_error(annals_db({"read", s, "--as-of", "yesterday"}));
  expect_usage_error(annals_db({"read", s, "--as-of", second_time, "--at-version", "1"}));
}

// --- tail ------------------------------------------------------------------------------------

TEST(CliAuditTest, TailPrintsTheLogThenLiveEventsAndExitsZeroOnSigint) {
  const auto s = unique("acct") + "-1";
  append_n(s, 1, "Opened");
  annals::testing::ChildProcess tail(
      {ANNALS_CLI_PATH, "--db", annals::testing::test_database_url(), "tail"}, "tail", true);
  ASSERT_TRUE(tail.wait_for_line("{\"stream\":\"" + s, 60s)) << tail.out();
  append_n(s, 2);
  // The two live events arrive in order, after the stored one.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (tail.lines().size() < 3 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(tail.wait_for_line("{", 1s, tail.lines().size()) ||
                std::chrono::steady_clock::now() < deadline);
  }
  const auto lines = tail.lines();
  ASSERT_EQ(lines.size(), 3U) << tail.out();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(nlohmann::json::parse(lines[i].text)["version"], i + 1) << lines[i].text;
  }
  const auto status = tail.stop(SIGINT, 30s);
  ASSERT_TRUE(status.has_value()) << "tail did not stop on SIGINT";
  EXPECT_EQ(*status, 0) << tail.err();
}

TEST(CliAuditTest, ReadAllFollowResumesFromAPositionAndStopsAtTheLimit) {
  const auto s = unique("acct") + "-1";
  const auto first = append_ok({s, "Opened", "{}"});
  append_n(s, 1);
  const auto r = annals_db(
      {"read-all", "--follow", "--from", first["position"].get<std::string>(), "--limit", "1"});
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_EQ(r.out_json().size(), 1U) << r;
  EXPECT_EQ(r.out_json()[0]["version"], 2);
  expect_usage_error(annals_db({"tail", "--until", "2026-01-01"}));
}

// --- progress on a terminal ----------------------------------------------------------------------

// `command` for `sh -c`, each word in single quotes.
std::string shell_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty()) out += ' ';
    out += '\'';
    for (const char c : word) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out += c;
      }
    }
    out += '\'';
  }
  return out;
}

// Runs annals with `args` on a pseudo-terminal (util-linux `script`), which then prints
// everything the program wrote to it, standard error included.
annals::testing::ProcessResult on_a_terminal(const std::vector<std::string>& args) {
  std::vector<std::string> words{ANNALS_CLI_PATH, "--db", annals::testing::test_database_url()};
  words.insert(words.end(), args.begin(), args.end());
  return annals::testing::run_process({"/usr/bin/script", "-qec", shell_words(words), "/dev/null"});
}

// On a terminal, import and verify draw their progress in place on standard error (a bar for
// import, a count for verify); piped, they print only their result, as before.
TEST(CliAuditTest, ImportAndVerifyDrawProgressOnATerminalOnly) {
  const auto category = unique("progress");
  append_n(category + "-1", 3);
  const auto file = std::filesystem::temp_directory_path() /
                    ("annals-progress-" + annals::testing::random_hex(8) + ".ndjson");
  // The export holds the settled log: other tests' open transactions may hold the three back.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    ASSERT_EQ(annals_db({"export", "--category", category, "--output", file.string()}).exit_code,
              0);
    std::ifstream in(file);
    int lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    if (lines == 3) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the export never held 3 events";
    std::this_thread::sleep_for(50ms);
  }

  const auto piped = annals_db({"import", file.string()});
  EXPECT_EQ(piped.exit_code, 0) << piped;
  EXPECT_EQ(piped.err.find('\r'), std::string::npos) << piped;
  const auto imported = on_a_terminal({"import", file.string()});
  EXPECT_EQ(imported.exit_code, 0) << imported.out;
  EXPECT_NE(imported.out.find("\rimporting " + file.string() +
                              " [##############################] 100% (3 events)"),
            std::string::npos)
      << imported.out;
  EXPECT_NE(imported.out.find("imported 0 of 3 events (3 already stored)"), std::string::npos)
      << imported.out;

  const auto piped_verify = annals_db({"verify"});
  EXPECT_EQ(piped_verify.err.find('\r'), std::string::npos) << piped_verify;
  const auto verified = on_a_terminal({"verify"});
  EXPECT_NE(verified.out.find("\rverifying "), std::string::npos) << verified.out;
  EXPECT_NE(verified.out.find("verified "), std::string::npos) << verified.out;
  const auto json = on_a_terminal({"verify", "--json"});
  EXPECT_EQ(json.out.find("\rverifying"), std::string::npos) << json.out;
  std::filesystem::remove(file);
}

// --- --json on the verbs that printed text only ------------------------------------------------

TEST(CliAuditTest, MigrateJson) {
  const auto applied = one_json(annals_db({"migrate", "--json"}));
  EXPECT_EQ(keys(applied), (std::vector<std::string>{"applied", "roles"}));
  EXPECT_TRUE(applied["applied"].is_array());
  const auto status = annals_db({"migrate", "--status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status;
  ASSERT_FALSE(status.out_json().empty());
  for (const auto& m : status.out_json()) {
    EXPECT_EQ(keys(m), (std::vector<std::string>{"name", "applied"}));
    EXPECT_EQ(m["applied"], true);
  }
}

// A partitioned log through the CLI (docs/cli.md, `annals partitions`; docs/scaling.md): migrate
// converts this test's database, which already holds events, appends cross ranges of 3
// positions, stats counts every partition, and an archived partition breaks verify until it is
// restored.
TEST(CliAuditTest, PartitionedLogMigrateAppendPartitionsArchiveAndVerify) {
  // A store that already holds events is converted: its table becomes the first partition.
  const auto stream = unique("parted") + "-1";
  append_n(stream, 2);
  const auto migrated =
      one_json(annals_db({"migrate", "--partitioned-log", "--partition-size", "3", "--json"}));
  EXPECT_EQ(migrated["partition_size"], 3);
  Json last;
  for (int i = 1; i <= 7; ++i) {
    last = append_n(stream, 1);
    const auto ensured = one_json(annals_db({"partitions", "--ensure", "--ahead", "2", "--json"}));
    EXPECT_TRUE(ensured.contains("created")) << ensured;
  }
  wait_until_readable(last);
  const auto listed = annals_db({"partitions", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  ASSERT_GE(listed.out_json().size(), 3u) << listed;
  EXPECT_EQ(listed.out_json()[0]["name"], "events_from_1");
  EXPECT_EQ(listed.out_json()[0]["to_position"], 4);
  const auto stats = one_json(annals_db({"stats", "--json"}));
  EXPECT_EQ(stats["events"], 9);
  EXPECT_GT(stats["bytes"].get<std::int64_t>(), 0);
  EXPECT_EQ(annals_db({"verify"}).exit_code, 0);

  const auto archived = annals_db({"partitions", "--archive", "events_from_1"});
  ASSERT_EQ(archived.exit_code, 0) << archived;
  EXPECT_EQ(archived.out, "archived events_from_1 (3 events) to schema annals_archive\n");
  EXPECT_EQ(annals_db({"read", stream, "--json"}).out_json().size(), 6u);
  EXPECT_EQ(annals_db({"verify"}).exit_code, 6);
  expect_usage_error(annals_db({"partitions", "--archive", "events_from_1"}));
  const auto restored = annals_db({"partitions", "--restore", "events_from_1"});
  ASSERT_EQ(restored.exit_code, 0) << restored;
  EXPECT_EQ(annals_db({"read", stream, "--json"}).out_json().size(), 9u);
  EXPECT_EQ(annals_db({"verify"}).exit_code, 0);
}

// --- bash completion ---------------------------------------------------------------------------

// What the completion function offers for the words of `line` (the last may be partial).
std::string complete(const std::string& script, const std::string& line) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("annals-completion-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "annals.bash";
  std::ofstream(path) << script;
  const std::string driver =
      "source \"$1\"; read -ra COMP_WORDS <<< \"$2\"; [[ $2 == *' ' ]] && COMP_WORDS+=('');"
      " COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _annals; echo \"${COMPREPLY[*]}\"";
  const auto r =
      annals::testing::run_process({"/bin/bash", "-c", driver, "bash", path.string(), line});
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.exit_code, 0) << r;
  return r.out;
}

TEST(CliAuditTest, CompletionScriptOffersEveryVerbSubcommandAndFlag) {
  const auto r = run_annals({"completion", "bash"});  // no database needed
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_NE(r.out.find("complete -F _annals annals"), std::string::npos);
  EXPECT_EQ(complete(r.out, "annals re"), "read read-all restore-check relay\n");
  EXPECT_EQ(complete(r.out, "annals relay --cr"), "--create-stream\n");
  EXPECT_EQ(complete(r.out, "annals st"), "stream-meta streams stats\n");
  EXPECT_EQ(complete(r.out, "annals dead-letters "), "--help list retry skip\n");
  EXPECT_EQ(complete(r.out, "annals dead-letters retry --a"), "--all\n");
  EXPECT_EQ(complete(r.out, "annals --db x read-all --fo"), "--follow\n");
  EXPECT_EQ(complete(r.out, "annals read S --at"), "--at-version\n");
  // The value of a flag is not completed as a verb or flag.
  EXPECT_EQ(complete(r.out, "annals read-all --category "), "\n");
  expect_usage_error(run_annals({"completion", "zsh"}));
}

}  // namespace
