// The stream-lifecycle verbs (`delete-stream`, `stream-meta`, the note `read` prints for a
// deleted stream) against the in-memory store. tests/cli/cli_stream_test.cpp runs the real
// binary against PostgreSQL.
#include <chrono>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "command_line.hpp"
#include "commands.hpp"
#include "stream_commands.hpp"

namespace annals::cli {
namespace {

class StreamCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_->append(stream_, ExpectedVersion::no_stream(),
                   {NewEvent{.type = "Opened"}, NewEvent{.type = "Closed"}});
  }

  std::string delete_it(const std::string& expected, bool json = false) {
    std::ostringstream out;
    delete_stream(*store_, {.stream = stream_.value(), .expected_version = expected, .json = json},
                  out);
    return out.str();
  }

  std::string meta(StreamMetaArgs args) {
    args.stream = stream_.value();
    std::ostringstream out;
    stream_meta(*store_, args, out);
    return out.str();
  }

  std::unique_ptr<EventStore> store_ = make_in_memory_event_store();
  StreamId stream_{"account-1"};
};

TEST_F(StreamCommandsTest, DeleteStreamPrintsTheTombstoneAndReadNotesTheDeletion) {
  const auto json = nlohmann::json::parse(delete_it("2", true));
  EXPECT_EQ(json.at("stream"), "account-1");
  EXPECT_EQ(json.at("deleted"), true);
  EXPECT_EQ(json.at("version"), 3);
  EXPECT_TRUE(json.at("position").is_string());
  EXPECT_TRUE(store_->stream_state(stream_).deleted);

  std::ostringstream out;
  EXPECT_EQ(read(*store_, {.stream = stream_.value()}, out), 0u);
  EXPECT_THAT(out.str(), ::testing::HasSubstr("\"$stream-deleted\""));
  std::ostringstream err;
  note_if_deleted(*store_, stream_.value(), err);
  EXPECT_THAT(err.str(), ::testing::HasSubstr("account-1 is deleted"));
  EXPECT_THAT(err.str(), ::testing::HasSubstr("version 3"));
}

TEST_F(StreamCommandsTest, DeleteStreamTextSaysWhatHappened) {
  EXPECT_THAT(delete_it("any"),
              ::testing::HasSubstr("deleted stream account-1: tombstone at version 3"));
}

TEST_F(StreamCommandsTest, DeleteStreamRefusalsAreTyped) {
  EXPECT_THROW(delete_it("1"), ConcurrencyError);
  EXPECT_THROW(delete_it("no-stream"), InvalidArgumentError);
  EXPECT_THROW(delete_it("maybe"), InvalidArgumentError);
  delete_it("exists");
  EXPECT_THROW(delete_it("any"), StreamDeletedError);
  std::ostringstream out;
  EXPECT_THROW(delete_stream(*store_, {.stream = "account-2", .expected_version = "any"}, out),
               NotFoundError);
}

TEST_F(StreamCommandsTest, NoNoteForALiveStream) {
  std::ostringstream err;
  note_if_deleted(*store_, stream_.value(), err);
  note_if_deleted(*store_, "account-missing", err);
  EXPECT_EQ(err.str(), "");
}

TEST_F(StreamCommandsTest, StreamMetaPrintsSetsMergesAndClears) {
  auto json = nlohmann::json::parse(meta({.json = true}));
  EXPECT_EQ(json, nlohmann::json::parse(R"({"stream": "account-1", "version": 2,
      "deleted": false, "max_count": null, "max_age": null, "truncate_before": null})"));

  json = nlohmann::json::parse(meta({.max_count = 5, .json = true}));
  EXPECT_EQ(json.at("max_count"), 5);
  // Rules not given are kept.
  json = nlohmann::json::parse(meta({.max_age_seconds = 60, .truncate_before = 2, .json = true}));
  EXPECT_EQ(json.at("max_count"), 5);
  EXPECT_EQ(json.at("max_age"), 60);
  EXPECT_EQ(json.at("truncate_before"), 2);
  EXPECT_EQ(store_->read_stream(stream_).size(), 1u);
  // --clear with a rule: that rule alone.
  json = nlohmann::json::parse(meta({.max_count = 1, .clear = true, .json = true}));
  EXPECT_EQ(json.at("max_count"), 1);
  EXPECT_TRUE(json.at("max_age").is_null());
  EXPECT_TRUE(json.at("truncate_before").is_null());
  // --clear alone: no rules.
  const auto text = meta({.clear = true});
  EXPECT_THAT(text, ::testing::HasSubstr("max-count        -"));
  EXPECT_THAT(text, ::testing::HasSubstr("deleted          no"));
  EXPECT_TRUE(store_->stream_state(stream_).metadata.empty());
}

TEST_F(StreamCommandsTest, StreamMetaOutOfRangeIsInvalidArgumentAndChangesNothing) {
  EXPECT_THROW(meta({.max_count = 0}), InvalidArgumentError);
  EXPECT_THROW(meta({.max_age_seconds = -1}), InvalidArgumentError);
  EXPECT_THROW(meta({.truncate_before = 0}), InvalidArgumentError);
  EXPECT_TRUE(store_->stream_state(stream_).metadata.empty());
}

TEST(StreamCommandLineTest, DeleteStreamNeedsAnExpectedVersion) {
  {
    CommandLineParser parser;
    const char* argv[] = {"annals", "delete-stream", "account-1", "--expected-version",
                          "4",      "--json"};
    EXPECT_EQ(parser.parse(6, argv), CommandId::kDeleteStream);
    EXPECT_EQ(parser.args().delete_stream.stream, "account-1");
    EXPECT_EQ(parser.args().delete_stream.expected_version, "4");
    EXPECT_TRUE(parser.args().delete_stream.json);
  }
  CommandLineParser parser;
  const char* argv[] = {"annals", "delete-stream", "account-1"};
  EXPECT_THROW(parser.parse(3, argv), CLI::ParseError);
}

TEST(StreamCommandLineTest, StreamMetaParsesEveryRule) {
  CommandLineParser parser;
  const char* argv[] = {"annals", "stream-meta", "account-1", "--max-count",
                        "3",      "--max-age",   "3600",      "--truncate-before",
                        "7",      "--clear",     "--json"};
  EXPECT_EQ(parser.parse(11, argv), CommandId::kStreamMeta);
  const auto& args = parser.args().stream_meta;
  EXPECT_EQ(args.max_count, 3);
  EXPECT_EQ(args.max_age_seconds, 3600);
  EXPECT_EQ(args.truncate_before, 7);
  EXPECT_TRUE(args.clear);
  EXPECT_TRUE(args.json);
}

}  // namespace
}  // namespace annals::cli
