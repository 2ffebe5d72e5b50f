// Drives the real `annals` binary's projection and dead-letter verbs against PostgreSQL:
// exit codes (0, 2 usage, 4 not found, 5 rebuild timeout), the empty-store output, lag, and a
// rebuild request that waits for a runner (no runner here: tests/system/projections runs real
// runner processes against these verbs).
//
// Each test runs in its own process (gtest_discover_tests), so each gets a fresh database.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "run_process.hpp"
#include "test_database.hpp"

namespace {

using Result = annals::testing::ProcessResult;

// Runs `annals --db <test database> args...` with stdout and stderr in files (not a terminal).
Result annals(std::vector<std::string> args) {
  args.insert(args.begin(), {ANNALS_CLI_PATH, "--db", annals::testing::test_database_url()});
  return annals::testing::run_process(args);
}

class Noop final : public annals::projections::InProcessProjection {
 public:
  std::string name() const override { return "noop"; }
  void handle(const annals::RecordedEvent&) override {}
};

// Registers projection "noop" (as a runner would on start) and appends `events` events, then
// waits (bounded) until they are settled: while a transaction runs anywhere in the cluster
// (another test process's, under ctest -j), the head of the log the CLI reads stays behind.
void register_noop_behind(int events) {
  auto store = annals::projections::make_postgres_projection_store(
      {.connection_string = annals::testing::test_database_url(), .pool_size = 1});
  Noop noop;
  store->prepare(noop);
  auto log = annals::postgres::make_postgres_event_store(
      {.connection_string = annals::testing::test_database_url(), .pool_size = 1});
  annals::Position last;
  for (int i = 0; i < events; ++i) {
    last = log->append(annals::StreamId("acct-1"), annals::ExpectedVersion::any(),
                       {annals::NewEvent{.type = "Deposited"}})
               .position;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (log->head_position() < last) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "appended events did not settle";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void expect_exit(const Result& r, int code) {
  EXPECT_EQ(r.exit_code, code) << r;
  if (code != 0) {
    EXPECT_EQ(r.err.rfind("annals: ", 0), 0U) << r;
  }
}

TEST(CliProjectionsTest, EmptyStoreListsNothing) {
  auto r = annals({"projections", "list"});
  expect_exit(r, 0);
  EXPECT_EQ(r.out,
            "no projections registered (a runner registers its projections when it "
            "starts)\n");
  r = annals({"projections", "status", "--json"});
  expect_exit(r, 0);
  EXPECT_EQ(r.out, "");
  r = annals({"dead-letters", "list"});
  expect_exit(r, 0);
  EXPECT_EQ(r.out, "no dead letters\n");
}

TEST(CliProjectionsTest, UnknownNamesAndIdsExitFour) {
  expect_exit(annals({"projections", "status", "nope"}), 4);
  expect_exit(annals({"projections", "rebuild", "nope"}), 4);
  expect_exit(annals({"projections", "rebuild", "nope", "--no-wait"}), 4);
  expect_exit(annals({"dead-letters", "retry", "42"}), 4);
  expect_exit(annals({"dead-letters", "skip", "42"}), 4);
}

TEST(CliProjectionsTest, BadUsageExitsTwo) {
  expect_exit(annals({"projections"}), 2);
  expect_exit(annals({"projections", "frobnicate"}), 2);
  expect_exit(annals({"projections", "rebuild"}), 2);
  expect_exit(annals({"dead-letters"}), 2);
  expect_exit(annals({"dead-letters", "retry", "abc"}), 2);
  expect_exit(annals({"dead-letters", "retry", "0"}), 2);
  expect_exit(annals({"dead-letters", "list", "--state", "bogus"}), 2);
  register_noop_behind(0);
  expect_exit(annals({"projections", "rebuild", "noop", "--timeout", "0"}), 2);
  expect_exit(annals({"projections", "rebuild", "noop", "--timeout", "soon"}), 2);
}

TEST(CliProjectionsTest, StatusShowsLagBehindTheHead) {
  register_noop_behind(7);
  const auto r = annals({"projections", "status", "noop", "--json"});
  expect_exit(r, 0);
  const auto row = nlohmann::json::parse(r.out);
  EXPECT_EQ(row["name"], "noop");
  EXPECT_EQ(row["position"], "0");
  EXPECT_EQ(row["lag"], 7);
  EXPECT_EQ(row["owned"], false);
  EXPECT_TRUE(row["owner"].is_null());
  EXPECT_TRUE(row["rebuild"].is_null());
  const auto table = annals({"projections", "list"});
  expect_exit(table, 0);
  std::istringstream lines(table.out);
  std::string header, line;
  std::getline(lines, header);
  std::getline(lines, line);
  EXPECT_EQ(line.rfind("noop  ", 0), 0U) << table;
}

// Without a runner the request waits: --no-wait says so and exits 0; following it gives up
// after --timeout with exit 5, and the request stays open for a runner.
TEST(CliProjectionsTest, RebuildWithoutARunnerWaitsAndTimesOut) {
  register_noop_behind(3);
  auto r = annals({"projections", "rebuild", "noop", "--no-wait"});
  expect_exit(r, 0);
  EXPECT_NE(r.out.find("rebuild noop: request "), std::string::npos) << r;
  EXPECT_NE(r.out.find("no runner owns noop"), std::string::npos) << r;

  r = annals({"projections", "rebuild", "noop", "--timeout", "0.5"});
  expect_exit(r, 5);
  EXPECT_NE(r.out.find("no runner owns noop"), std::string::npos) << r;
  EXPECT_NE(r.err.find("not finished after --timeout"), std::string::npos) << r;

  const auto status = annals({"projections", "status", "noop", "--json"});
  expect_exit(status, 0);
  EXPECT_EQ(nlohmann::json::parse(status.out)["rebuild"]["state"], "requested") << status;
}

}  // namespace
