// `annals forget SUBJECT` and the decryption of personal data in `annals read` (docs/cli.md,
// docs/personal-data.md): the real binary against PostgreSQL. Each test runs in its own process
// (gtest_discover_tests), so each gets a fresh database.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/framework/personal_data.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_subject_key_store.hpp"
#include "run_process.hpp"
#include "test_database.hpp"

namespace {

annals::testing::ProcessResult annals_db(std::vector<std::string> args) {
  std::vector<std::string> argv{ANNALS_CLI_PATH, "--db", annals::testing::test_database_url()};
  argv.insert(argv.end(), args.begin(), args.end());
  return annals::testing::run_process(argv, "",
                                      annals::testing::environment_without("ANNALS_MASTER_KEY"));
}

nlohmann::json data_of(const annals::testing::ProcessResult& r) {
  return nlohmann::json::parse(r.out).at("data");
}

TEST(CliForgetTest, ForgetRedactsReadOutputAndVerifyStillPasses) {
  const auto url = annals::testing::test_database_url();
  auto store = annals::postgres::make_postgres_event_store({.connection_string = url});
  auto keys = annals::postgres::make_postgres_subject_key_store({.connection_string = url});
  annals::PersonalData personal(*keys, *store);
  const std::string subject = "account-" + annals::testing::random_hex(8);
  std::vector<annals::NewEvent> events;
  events.push_back(annals::NewEvent{
      .type = "Opened", .data = {{"owner", personal.seal(subject, "owner", "Ada")}, {"limit", 5}}});
  static_cast<void>(store->append(annals::StreamId(subject), annals::ExpectedVersion::no_stream(),
                                  std::move(events)));

  const auto before = annals_db({"read", subject});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(data_of(before).at("owner"), "Ada");  // the tool's role can read the keys

  // A live tail opens personal data as read does (the database is this test's own: the event
  // is the log's first).
  const auto tail = annals_db({"read-all", "--follow", "--limit", "1", "--json"});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  EXPECT_EQ(data_of(tail).at("owner"), "Ada");

  const auto forgot = annals_db({"forget", subject, "--json"});
  ASSERT_EQ(forgot.exit_code, 0) << forgot.err;
  const auto result = nlohmann::json::parse(forgot.out);
  EXPECT_EQ(result.at("subject"), subject);
  EXPECT_EQ(result.at("keys_destroyed"), 1);
  EXPECT_EQ(result.at("stream"), "annals.subject-" + subject);

  const auto after = annals_db({"read", subject});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(data_of(after).at("owner"), "[redacted]");
  EXPECT_EQ(data_of(after).at("limit"), 5);
  const auto tail_after = annals_db({"read-all", "--follow", "--limit", "1", "--json"});
  ASSERT_EQ(tail_after.exit_code, 0) << tail_after.err;
  EXPECT_EQ(data_of(tail_after).at("owner"), "[redacted]");
  EXPECT_TRUE(result.at("snapshot_removed").get<bool>());

  const auto again = annals_db({"forget", subject, "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out).at("keys_destroyed"), 0);
  EXPECT_EQ(nlohmann::json::parse(again.out).at("position"), result.at("position"));

  const auto text = annals_db({"forget", subject});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("0 key(s) destroyed now"), std::string::npos) << text.out;

  const auto verify = annals_db({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST(CliForgetTest, InvalidSubjectExitsTwo) {
  const auto empty = annals_db({"forget", ""});
  EXPECT_EQ(empty.exit_code, 2) << empty.err;
  const auto control = annals_db({"forget", "account-\n1"});
  EXPECT_EQ(control.exit_code, 2) << control.err;
}

}  // namespace
