// The stream-lifecycle verbs of the real `annals` binary against PostgreSQL (docs/cli.md):
// `delete-stream`, `stream-meta`, and the note `read` prints for a deleted stream, with their
// exit codes. tests/cli/stream_commands_test.cpp covers the same verbs on the in-memory store.
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_process.hpp"
#include "test_database.hpp"

namespace {

using Json = nlohmann::json;

annals::testing::ProcessResult annals_db(std::vector<std::string> args) {
  std::vector<std::string> argv{ANNALS_CLI_PATH, "--db", annals::testing::test_database_url()};
  argv.insert(argv.end(), args.begin(), args.end());
  return annals::testing::run_process(argv, "",
                                      annals::testing::environment_without("ANNALS_DATABASE_URL"));
}

std::vector<Json> json_lines(const std::string& text) {
  std::vector<Json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

std::string unique(const std::string& prefix) {
  return prefix + annals::testing::unique_stream("").substr(1);
}

// A stream with two events.
std::string two_events() {
  const auto stream = unique("clistream-");
  for (const char* type : {"Opened", "Closed"}) {
    const auto r = annals_db({"append", stream, type, "{}"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  return stream;
}

TEST(CliStreamTest, HelpListsTheLifecycleVerbs) {
  const auto r = annals_db({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, ::testing::HasSubstr("delete-stream"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("stream-meta"));
  const auto meta = annals_db({"stream-meta", "--help"});
  EXPECT_EQ(meta.exit_code, 0);
  for (const char* word : {"--max-count", "--max-age", "--truncate-before", "--clear", "--json"}) {
    EXPECT_THAT(meta.out, ::testing::HasSubstr(word));
  }
}

TEST(CliStreamTest, DeleteStreamThenReadShowsTheTombstoneAndNotesTheDeletion) {
  const auto stream = two_events();
  const auto deleted = annals_db({"delete-stream", stream, "--expected-version", "2", "--json"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  const auto result = Json::parse(deleted.out);
  EXPECT_EQ(result.at("version"), 3);
  EXPECT_EQ(result.at("deleted"), true);

  const auto read = annals_db({"read", stream});
  EXPECT_EQ(read.exit_code, 0) << read.err;
  const auto events = json_lines(read.out);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events.back().at("type"), "$stream-deleted");
  EXPECT_THAT(read.err, ::testing::HasSubstr(stream + " is deleted"));

  const auto state = annals_db({"stream-meta", stream, "--json"});
  EXPECT_EQ(state.exit_code, 0) << state.err;
  EXPECT_EQ(Json::parse(state.out).at("deleted"), true);
}

TEST(CliStreamTest, DeleteStreamExitCodes) {
  const auto stream = two_events();
  // A wrong expected version: 3, with the conflict as JSON on stderr.
  const auto conflict = annals_db({"delete-stream", stream, "--expected-version", "1"});
  EXPECT_EQ(conflict.exit_code, 3) << conflict.err;
  // Nothing to delete (no-stream): usage, 2.
  EXPECT_EQ(annals_db({"delete-stream", stream, "--expected-version", "no-stream"}).exit_code, 2);
  // No --expected-version: usage, 2.
  EXPECT_EQ(annals_db({"delete-stream", stream}).exit_code, 2);
  ASSERT_EQ(annals_db({"delete-stream", stream, "--expected-version", "any"}).exit_code, 0);
  // Already deleted, and appending to it: 1, naming the stream.
  const auto again = annals_db({"delete-stream", stream, "--expected-version", "any"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, ::testing::HasSubstr(stream));
  const auto append = annals_db({"append", stream, "Deposited", "{}"});
  EXPECT_EQ(append.exit_code, 1);
  EXPECT_THAT(append.err, ::testing::HasSubstr("is deleted"));
  // A stream without events: 1.
  EXPECT_EQ(annals_db({"delete-stream", unique("nothing-"), "--expected-version", "any"}).exit_code,
            1);
}

TEST(CliStreamTest, StreamMetaSetsRulesThatReadsHonour) {
  const auto stream = two_events();
  const auto set = annals_db({"stream-meta", stream, "--truncate-before", "2", "--json"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(Json::parse(set.out).at("truncate_before"), 2);
  const auto read = annals_db({"read", stream});
  const auto events = json_lines(read.out);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events.front().at("version"), 2);
  const auto text = annals_db({"stream-meta", stream});
  EXPECT_THAT(text.out, ::testing::HasSubstr("truncate-before  2"));
  EXPECT_EQ(annals_db({"stream-meta", stream, "--max-count", "0"}).exit_code, 2);
  ASSERT_EQ(annals_db({"stream-meta", stream, "--clear"}).exit_code, 0);
  EXPECT_EQ(json_lines(annals_db({"read", stream}).out).size(), 2u);
}

}  // namespace
