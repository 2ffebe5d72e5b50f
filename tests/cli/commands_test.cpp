// The `annals` tool's verbs and output, run against the in-memory store (no server needed).
// tests/cli/cli_test.cpp drives the real binary against PostgreSQL.
#include <atomic>
#include <chrono>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/timestamp.hpp"
#include "annals/testkit/fault_injection.hpp"
#include "commands.hpp"
#include "exit_code.hpp"
#include "json_output.hpp"

namespace annals::cli {
namespace {

std::vector<nlohmann::ordered_json> json_lines(const std::string& text) {
  std::vector<nlohmann::ordered_json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::ordered_json::parse(line));
  return lines;
}

std::vector<std::int64_t> versions(const std::string& text) {
  std::vector<std::int64_t> out;
  for (const auto& j : json_lines(text)) out.push_back(j.at("version").get<std::int64_t>());
  return out;
}

std::vector<std::string> keys(const nlohmann::ordered_json& object) {
  std::vector<std::string> out;
  for (const auto& item : object.items()) out.push_back(item.key());
  return out;
}

class CliCommandsTest : public ::testing::Test {
 protected:
  std::string append_event(const std::string& stream, const std::string& type,
                           const std::string& data = "{}") {
    AppendArgs args;
    args.stream = stream;
    args.type = type;
    args.data_json = data;
    std::istringstream in;
    std::ostringstream out;
    append(*store_, args, in, out);
    return out.str();
  }

  std::string read_stream(const ReadArgs& args) {
    std::ostringstream out;
    read(*store_, args, out);
    return out.str();
  }

  std::string read_log(const ReadAllArgs& args) {
    std::ostringstream out;
    read_all(*store_, args, out);
    return out.str();
  }

  std::unique_ptr<EventStore> store_ = make_in_memory_event_store();
};

TEST(CliExitCodeTest, MapsEveryErrorCode) {
  EXPECT_EQ(exit_code_for(ErrorCode::kInvalidArgument), ExitCode::kUsage);
  EXPECT_EQ(exit_code_for(ErrorCode::kIdempotency), ExitCode::kUsage);
  EXPECT_EQ(exit_code_for(ErrorCode::kConcurrency), ExitCode::kConflict);
  EXPECT_EQ(exit_code_for(ErrorCode::kNotFound), ExitCode::kError);
  EXPECT_EQ(exit_code_for(ErrorCode::kDomain), ExitCode::kError);
  EXPECT_EQ(exit_code_for(ErrorCode::kUnavailable), ExitCode::kError);
  EXPECT_EQ(exit_code_for(ErrorCode::kOutcomeUnknown), ExitCode::kError);
  EXPECT_EQ(exit_code_for(ErrorCode::kCorruption), ExitCode::kError);
  EXPECT_EQ(exit_code_for(ErrorCode::kInternal), ExitCode::kError);
  EXPECT_EQ(exit_code_for(ErrorCode::kPermissionDenied), ExitCode::kError);
  EXPECT_EQ(static_cast<int>(ExitCode::kOk), 0);
  EXPECT_EQ(static_cast<int>(ExitCode::kError), 1);
  EXPECT_EQ(static_cast<int>(ExitCode::kUsage), 2);
  EXPECT_EQ(static_cast<int>(ExitCode::kConflict), 3);
}

TEST(CliJsonOutputTest, FormatsTimestampsAsRfc3339UtcWithMicroseconds) {
  using namespace std::chrono;
  const sys_days day = year{2026} / November / 23;
  const auto time = day + hours{14} + minutes{31} + seconds{0} + microseconds{123456};
  EXPECT_EQ(format_timestamp(time), "2026-11-23T14:31:00.123456Z");
  EXPECT_EQ(format_timestamp(sys_days{year{1970} / January / 1}), "1970-01-01T00:00:00.000000Z");
  // Sub-microsecond digits are truncated, never rounded up into the next second.
  EXPECT_EQ(
      format_timestamp(time_point_cast<system_clock::duration>(day + nanoseconds{999'999'999})),
      "2026-11-23T00:00:00.999999Z");
}

TEST(CliJsonOutputTest, ConflictLineCarriesStreamExpectedAndActual) {
  const auto with_actual =
      nlohmann::ordered_json::parse(to_json_line(ConcurrencyError("account-1", "no-stream", 4)));
  EXPECT_EQ(keys(with_actual), (std::vector<std::string>{"error", "stream", "expected", "actual"}));
  EXPECT_EQ(with_actual["error"], "concurrency");
  EXPECT_EQ(with_actual["stream"], "account-1");
  EXPECT_EQ(with_actual["expected"], "no-stream");
  EXPECT_EQ(with_actual["actual"], 4);
  const auto without =
      nlohmann::json::parse(to_json_line(ConcurrencyError("account-2", "exists", std::nullopt)));
  EXPECT_TRUE(without["actual"].is_null());
}

TEST_F(CliCommandsTest, AppendPrintsOneJsonObjectWithPositionAsString) {
  const auto out = append_event("account-1", "Opened", R"({"owner":"Ada"})");
  ASSERT_EQ(out.back(), '\n');
  const auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(keys(lines[0]),
            (std::vector<std::string>{"stream", "first_version", "last_version", "position"}));
  EXPECT_EQ(lines[0]["stream"], "account-1");
  EXPECT_EQ(lines[0]["first_version"], 1);
  EXPECT_EQ(lines[0]["last_version"], 1);
  ASSERT_TRUE(lines[0]["position"].is_string());
  EXPECT_NO_THROW((void)Position::parse(lines[0]["position"].get<std::string>()));
}

TEST_F(CliCommandsTest, AppendReadsDataFromInputWhenNotGiven) {
  AppendArgs args;
  args.stream = "account-1";
  args.type = "Opened";
  std::istringstream in(R"({"owner": "Grace", "limit": 10})");
  std::ostringstream out;
  append(*store_, args, in, out);
  const auto events = store_->read_stream(StreamId{"account-1"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, (nlohmann::json{{"owner", "Grace"}, {"limit", 10}}));
}

TEST_F(CliCommandsTest, AppendRejectsBadInputWithInvalidArgumentAndWritesNothing) {
  const auto attempt = [this](auto&& mutate, const std::string& input = "") {
    AppendArgs args;
    args.stream = "account-1";
    args.type = "Opened";
    args.data_json = "{}";
    mutate(args);
    std::istringstream in(input);
    std::ostringstream out;
    EXPECT_THROW(append(*store_, args, in, out), InvalidArgumentError);
    EXPECT_EQ(out.str(), "");
  };
  attempt([](AppendArgs& a) { a.data_json = R"({"a":)"; });
  attempt([](AppendArgs& a) { a.data_json.reset(); }, "");
  attempt([](AppendArgs& a) { a.data_json.reset(); }, "not json");
  attempt([](AppendArgs& a) { a.metadata_json = "{"; });
  attempt([](AppendArgs& a) { a.metadata_json = "[1, 2]"; });
  attempt([](AppendArgs& a) { a.event_id = "not-a-uuid"; });
  attempt([](AppendArgs& a) { a.expected_version = "sometimes"; });
  attempt([](AppendArgs& a) { a.expected_version = "-1"; });
  attempt([](AppendArgs& a) { a.stream = ""; });
  attempt([](AppendArgs& a) { a.stream = std::string("acc\x01unt-1"); });
  attempt([](AppendArgs& a) { a.schema_version = 0; });
  attempt([](AppendArgs& a) { a.schema_version = std::int64_t{1} << 40; });
  EXPECT_TRUE(store_->read_all().empty());
}

TEST_F(CliCommandsTest, AppendNamesInvalidJsonArgument) {
  AppendArgs args;
  args.stream = "account-1";
  args.type = "Opened";
  args.data_json = "{oops}";
  std::istringstream in;
  std::ostringstream out;
  try {
    append(*store_, args, in, out);
    FAIL() << "expected InvalidArgumentError";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("DATA_JSON is not valid JSON"), std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("[json.exception"), std::string::npos) << e.what();
  }
}

// A commit in doubt keeps the hint to re-run with the same --event-id, naming the
// id that was sent, also when the caller did not choose one.
TEST(CliAppendOutcomeTest, OutcomeUnknownNamesTheEventIdToReRunWith) {
  auto inner = make_in_memory_event_store();
  testkit::FaultInjectingEventStore store(*inner);
  store.fail_next_appends(1, testkit::FaultInjectingEventStore::Failure::kOutcomeUnknownWritten);
  AppendArgs args;
  args.stream = "account-1";
  args.type = "Opened";
  args.data_json = "{}";
  std::istringstream in;
  std::ostringstream out;
  try {
    append(store, args, in, out);
    FAIL() << "expected OutcomeUnknownError";
  } catch (const OutcomeUnknownError& e) {
    const auto stored = inner->read_stream(StreamId("account-1"));
    ASSERT_EQ(stored.size(), 1U);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("--event-id " + stored[0].id.to_string()));
    args.event_id = stored[0].id.to_string();
  }
  append(store, args, in, out);  // the re-run with that id completes it: nothing new written
  EXPECT_EQ(inner->read_stream(StreamId("account-1")).size(), 1U);
  EXPECT_EQ(exit_code_for(ErrorCode::kOutcomeUnknown), ExitCode::kError);
}

TEST_F(CliCommandsTest, AppendWithExpectedVersionConflictThrowsConcurrencyError) {
  append_event("account-1", "Opened");
  AppendArgs args;
  args.stream = "account-1";
  args.type = "Opened";
  args.data_json = "{}";
  args.expected_version = "0";
  std::istringstream in;
  std::ostringstream out;
  try {
    append(*store_, args, in, out);
    FAIL() << "expected ConcurrencyError";
  } catch (const ConcurrencyError& e) {
    EXPECT_EQ(e.stream(), "account-1");
    EXPECT_EQ(e.actual(), std::optional<std::int64_t>(1));
  }
}

TEST_F(CliCommandsTest, ExactResendPrintsTheOriginalResult) {
  AppendArgs args;
  args.stream = "account-1";
  args.type = "Opened";
  args.data_json = R"({"owner":"Ada"})";
  args.event_id = "0190f5d2-7a4e-7c3b-9d2e-4f1a2b3c4d5e";
  std::istringstream in;
  std::ostringstream first;
  std::ostringstream second;
  append(*store_, args, in, first);
  append(*store_, args, in, second);
  EXPECT_EQ(first.str(), second.str());
  EXPECT_EQ(store_->read_stream(StreamId{"account-1"}).size(), 1u);
}

TEST_F(CliCommandsTest, ReadPrintsEveryKeyInOrder) {
  AppendArgs args;
  args.stream = "account-1";
  args.type = "Opened";
  args.data_json = R"({"owner":"Ada"})";
  args.metadata_json = R"({"correlation_id":"c-1"})";
  args.event_id = "0190f5d2-7a4e-7c3b-9d2e-4f1a2b3c4d5e";
  args.schema_version = 3;
  std::istringstream in;
  std::ostringstream appended;
  append(*store_, args, in, appended);

  const auto lines = json_lines(read_stream({.stream = "account-1"}));
  ASSERT_EQ(lines.size(), 1u);
  const auto& e = lines[0];
  EXPECT_EQ(keys(e),
            (std::vector<std::string>{"stream", "version", "position", "event_id", "type",
                                      "schema_version", "data", "metadata", "recorded_at"}));
  EXPECT_EQ(e["stream"], "account-1");
  EXPECT_EQ(e["version"], 1);
  EXPECT_EQ(e["position"], nlohmann::json::parse(appended.str())["position"]);
  EXPECT_EQ(e["event_id"], "0190f5d2-7a4e-7c3b-9d2e-4f1a2b3c4d5e");
  EXPECT_EQ(e["type"], "Opened");
  EXPECT_EQ(e["schema_version"], 3);
  EXPECT_EQ(e["data"], (nlohmann::ordered_json{{"owner", "Ada"}}));
  EXPECT_EQ(e["metadata"], (nlohmann::ordered_json{{"correlation_id", "c-1"}}));
  EXPECT_EQ(e["recorded_at"].get<std::string>().size(), 27u);
  EXPECT_EQ(e["recorded_at"].get<std::string>().back(), 'Z');
}

TEST_F(CliCommandsTest, ReadFromIsTheFirstVersionReturned) {
  for (int i = 0; i < 5; ++i) append_event("account-1", "Deposited");
  EXPECT_EQ(versions(read_stream({.stream = "account-1"})),
            (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .from = 3})),
            (std::vector<std::int64_t>{3, 4, 5}));
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .from = 2, .limit = 2})),
            (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .backward = true})),
            (std::vector<std::int64_t>{5, 4, 3, 2, 1}));
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .from = 2, .backward = true})),
            (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ(read_stream({.stream = "account-1", .limit = 0}), "");
  EXPECT_EQ(read_stream({.stream = "account-2"}), "");
}

TEST_F(CliCommandsTest, ReadPagesThroughLongStreams) {
  for (int i = 0; i < 7; ++i) append_event("account-1", "Deposited");
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .page_size = 2})),
            (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .backward = true, .page_size = 3})),
            (std::vector<std::int64_t>{7, 6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .from = 2, .limit = 5, .page_size = 2})),
            (std::vector<std::int64_t>{2, 3, 4, 5, 6}));
}

TEST_F(CliCommandsTest, ReadRejectsBadArguments) {
  std::ostringstream out;
  EXPECT_THROW(read(*store_, {.stream = "account-1", .from = 0}, out), InvalidArgumentError);
  EXPECT_THROW(read(*store_, {.stream = "account-1", .limit = -1}, out), InvalidArgumentError);
  EXPECT_THROW(read(*store_, {.stream = ""}, out), InvalidArgumentError);
  EXPECT_THROW(read_all(*store_, {.from = "banana"}, out), InvalidArgumentError);
  EXPECT_THROW(read_all(*store_, {.limit = -5}, out), InvalidArgumentError);
  EXPECT_THROW(read_all(*store_, {.category = ""}, out), InvalidArgumentError);
  EXPECT_THROW(read_all(*store_, {.output = {.types = {""}}}, out), InvalidArgumentError);
  EXPECT_EQ(out.str(), "");
}

TEST_F(CliCommandsTest, ReadAllFromContinuesAfterThePosition) {
  append_event("account-1", "Opened");
  append_event("order-1", "Placed");
  append_event("account-1", "Deposited");
  append_event("order-1", "Shipped");
  const auto all = json_lines(read_log({}));
  ASSERT_EQ(all.size(), 4u);
  const auto after_second = json_lines(read_log({.from = all[1]["position"].get<std::string>()}));
  ASSERT_EQ(after_second.size(), 2u);
  EXPECT_EQ(after_second[0], all[2]);
  EXPECT_EQ(after_second[1], all[3]);
  EXPECT_EQ(read_log({.from = all[3]["position"].get<std::string>()}), "");
  EXPECT_EQ(json_lines(read_log({.from = Position::start().to_string()})).size(), 4u);
  EXPECT_EQ(json_lines(read_log({.limit = 1})).size(), 1u);
  EXPECT_EQ(json_lines(read_log({.page_size = 1})), all);
  EXPECT_EQ(json_lines(read_log({.limit = 3, .page_size = 2})).size(), 3u);
}

TEST_F(CliCommandsTest, ReadAllFiltersByCategoryAndTypes) {
  append_event("account-1", "Opened");
  append_event("order-1", "Placed");
  append_event("account-2", "Opened");
  append_event("account-1", "Deposited");
  append_event("accounting-1", "Opened");
  const auto streams_and_types = [](const std::string& text) {
    std::vector<std::string> out;
    for (const auto& j : json_lines(text)) {
      out.push_back(j["stream"].get<std::string>() + "/" + j["type"].get<std::string>());
    }
    return out;
  };
  EXPECT_EQ(
      streams_and_types(read_log({.category = "account"})),
      (std::vector<std::string>{"account-1/Opened", "account-2/Opened", "account-1/Deposited"}));
  EXPECT_EQ(streams_and_types(read_log({.output = {.types = {"Placed", "Deposited"}}})),
            (std::vector<std::string>{"order-1/Placed", "account-1/Deposited"}));
  EXPECT_EQ(streams_and_types(read_log({.category = "account", .output = {.types = {"Opened"}}})),
            (std::vector<std::string>{"account-1/Opened", "account-2/Opened"}));
  EXPECT_EQ(streams_and_types(read_log({.category = "account", .page_size = 1})).size(), 3u);
}

// --- read --as-of / --at-version, --since / --until, read's --type, the human form ----------

// The recorded_at of each line of JSON output.
std::vector<std::string> times(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& j : json_lines(text)) out.push_back(j.at("recorded_at").get<std::string>());
  return out;
}

TEST_F(CliCommandsTest, ReadAtVersionPrintsTheStreamAsItWasForwardAndBackward) {
  for (int i = 0; i < 5; ++i) append_event("account-1", "Deposited");
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .at_version = 3, .page_size = 2})),
            (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .backward = true, .at_version = 3})),
            (std::vector<std::int64_t>{3, 2, 1}));
  // --from above the cut backward starts at the cut; --from below it starts at --from.
  EXPECT_EQ(
      versions(read_stream({.stream = "account-1", .from = 5, .backward = true, .at_version = 2})),
      (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .from = 4, .at_version = 3})),
            (std::vector<std::int64_t>{}));
  EXPECT_EQ(read_stream({.stream = "account-1", .at_version = 0}), "");
  EXPECT_EQ(read_stream({.stream = "account-1", .backward = true, .at_version = 0}), "");
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .at_version = 99})).size(), 5U);
}

TEST_F(CliCommandsTest, ReadAsOfPrintsTheEventsRecordedUpToThatTime) {
  for (int i = 0; i < 4; ++i) append_event("account-1", "Deposited");
  const auto all = times(read_stream({.stream = "account-1"}));
  ASSERT_EQ(all.size(), 4U);
  for (std::size_t cut = 0; cut < all.size(); ++cut) {
    // Every event recorded at or before the cut's time (two may share a microsecond).
    std::vector<std::string> expected;
    for (const auto& t : all) {
      if (t <= all[cut]) expected.push_back(t);
    }
    EXPECT_EQ(times(read_stream({.stream = "account-1", .as_of = all[cut]})), expected);
    std::vector<std::string> backward(expected.rbegin(), expected.rend());
    EXPECT_EQ(times(read_stream({.stream = "account-1", .backward = true, .as_of = all[cut]})),
              backward);
  }
  EXPECT_EQ(read_stream({.stream = "account-1", .as_of = "2000-01-01"}), "");
}

TEST_F(CliCommandsTest, SinceAndUntilSelectByRecordedTimeOnBothReads) {
  for (int i = 0; i < 3; ++i) append_event("account-1", "Deposited");
  const auto all = times(read_log({}));
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(times(read_log({.output = {.since = all[1]}})).front(), all[1]);
  EXPECT_EQ(times(read_log({.output = {.until = all[1]}})).back(), all[1]);
  EXPECT_EQ(times(read_stream({.stream = "account-1", .output = {.since = all[2]}})).front(),
            all[2]);
  EXPECT_EQ(read_log({.output = {.since = "2200-01-01"}}), "");
  EXPECT_EQ(read_log({.output = {.until = "2000-01-01T00:00:00Z"}}), "");
  EXPECT_EQ(times(read_log({.output = {.since = "2000-01-01", .until = "2200-12-31"}})), all);
  // --limit counts what is printed, after the time filter.
  EXPECT_EQ(times(read_log({.limit = 1, .output = {.since = all[1]}})),
            (std::vector<std::string>{all[1]}));
}

TEST_F(CliCommandsTest, ReadTypeFiltersOneStreamAndLimitCountsPrintedEvents) {
  append_event("account-1", "Opened");
  append_event("account-1", "Deposited");
  append_event("account-1", "Withdrawn");
  append_event("account-1", "Deposited");
  EXPECT_EQ(versions(read_stream({.stream = "account-1", .output = {.types = {"Deposited"}}})),
            (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(versions(read_stream(
                {.stream = "account-1", .limit = 1, .output = {.types = {"Deposited"}}})),
            (std::vector<std::int64_t>{2}));
  EXPECT_EQ(versions(read_stream({.stream = "account-1",
                                  .backward = true,
                                  .output = {.types = {"Opened", "Withdrawn"}},
                                  .page_size = 1})),
            (std::vector<std::int64_t>{3, 1}));
}

TEST_F(CliCommandsTest, BadTimesAndCombinationsAreRefusedNamingTheFlag) {
  append_event("account-1", "Opened");
  const auto refused = [&](const auto& call, const std::string& flag) {
    try {
      call();
      ADD_FAILURE() << "accepted " << flag;
    } catch (const InvalidArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  std::ostringstream out;
  refused([&] { read(*store_, {.stream = "account-1", .as_of = "yesterday"}, out); }, "--as-of");
  refused([&] { read(*store_, {.stream = "account-1", .at_version = -1}, out); }, "--at-version");
  refused(
      [&] { read(*store_, {.stream = "account-1", .as_of = "2026-01-01", .at_version = 1}, out); },
      "--at-version");
  refused([&] { read_all(*store_, {.output = {.since = "2026-13-01"}}, out); }, "--since");
  refused([&] { read_all(*store_, {.output = {.until = "12:00"}}, out); }, "--until");
  refused(
      [&] { read_all(*store_, {.output = {.since = "2026-02-02", .until = "2026-02-01"}}, out); },
      "--until");
  EXPECT_EQ(out.str(), "");
}

TEST_F(CliCommandsTest, HumanFormIsOneLinePerEventAndJsonWins) {
  append_event("account-1", "Opened", R"({"owner":"Ada"})");
  const auto human = read_log({.output = {.human = true}});
  EXPECT_TRUE(std::regex_match(
      human,
      std::regex(R"(\d+:\d+  \d{4}-\d\d-\d\dT[\d:.]+Z  account-1@1  Opened  \{"owner":"Ada"\}\n)")))
      << human;
  EXPECT_EQ(json_lines(read_log({.output = {.json = true, .human = true}})).size(), 1U);
  const auto stream_line = read_stream({.stream = "account-1", .output = {.human = true}});
  EXPECT_TRUE(std::regex_match(stream_line, std::regex(R"(\d{4}-\S+Z  account-1@1  Opened  .*\n)")))
      << stream_line;
  // Long data is cut for the screen, never inside a UTF-8 character.
  append_event("account-2", "Opened", R"({"note":")" + std::string(200, 'x') + "\u00e9\"}");
  const auto line = read_stream({.stream = "account-2", .output = {.human = true}});
  EXPECT_NE(line.find("..."), std::string::npos);
  EXPECT_LT(line.size(), 200U);
}

// --- read-all --follow / tail -----------------------------------------------------------------

// An output the follower writes on its subscription's thread while the test reads it.
class LockedOutput : public std::stringbuf {
 public:
  [[nodiscard]] std::string text() {
    std::lock_guard lock(mutex_);
    return str();
  }

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard lock(mutex_);
    return std::stringbuf::xsputn(s, n);
  }
  int_type overflow(int_type c) override {
    std::lock_guard lock(mutex_);
    return std::stringbuf::overflow(c);
  }

 private:
  std::recursive_mutex mutex_;  // xsputn may call overflow
};

TEST_F(CliCommandsTest, FollowPrintsTheLogThenLiveEventsUntilTheLimit) {
  append_event("account-1", "Opened");
  std::ostringstream out;
  std::size_t undecodable = 1;
  std::thread follower(
      [&] { undecodable = follow_all(*store_, {.limit = 3}, out, nullptr, [] { return false; }); });
  // The follower prints the stored event, then these as they are appended.
  append_event("account-1", "Deposited");
  append_event("order-1", "Placed");
  append_event("order-1", "Shipped");  // past the limit: not printed
  follower.join();
  EXPECT_EQ(undecodable, 0U);
  const auto lines = json_lines(out.str());
  ASSERT_EQ(lines.size(), 3U);
  EXPECT_EQ(lines[0]["type"], "Opened");
  EXPECT_EQ(lines[1]["type"], "Deposited");
  EXPECT_EQ(lines[2]["type"], "Placed");
}

TEST_F(CliCommandsTest, FollowResumesAfterFromAppliesFiltersAndStopsWhenInterrupted) {
  append_event("account-1", "Opened");
  append_event("order-1", "Placed");
  const auto first = json_lines(read_log({.limit = 1})).at(0)["position"].get<std::string>();
  LockedOutput buffer;
  std::ostream out(&buffer);
  std::atomic<bool> stop{false};
  std::thread follower([&] {
    follow_all(*store_, {.from = first, .category = "order"}, out, nullptr,
               [&] { return stop.load(); });
  });
  append_event("account-1", "Deposited");  // another category: not printed
  append_event("order-1", "Shipped");
  // Wait (bounded) until both order events are out, then interrupt as Ctrl-C would.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (json_lines(buffer.text()).size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  stop = true;
  follower.join();
  const auto lines = json_lines(buffer.text());
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(lines[0]["type"], "Placed");
  EXPECT_EQ(lines[1]["type"], "Shipped");
}

TEST_F(CliCommandsTest, FollowRefusesUntil) {
  std::ostringstream out;
  EXPECT_THROW(
      follow_all(*store_, {.output = {.until = "2026-01-01"}}, out, nullptr, [] { return false; }),
      InvalidArgumentError);
}

}  // namespace
}  // namespace annals::cli
