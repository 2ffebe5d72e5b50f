// The `annals projections ...` and `annals dead-letters ...` verbs against the in-memory
// stores (no server): tables, JSON lines, lag, rebuild following (scripted request states, so
// every progress line is deterministic), exit outcomes. tests/cli/cli_projections_test.cpp and
// tests/system/projections drive the real binary against PostgreSQL.
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/partitions.hpp"
#include "annals/projections/runner.hpp"
#include "dead_letter_actions.hpp"
#include "exit_code.hpp"
#include "projection_commands.hpp"

namespace annals::cli {
namespace {

using namespace std::chrono_literals;
using projections::DeadLetterState;
using projections::ProjectionStore;
using projections::RebuildRequest;
using projections::RebuildState;

class Counter final : public projections::InProcessProjection {
 public:
  explicit Counter(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void handle(const RecordedEvent&) override { ++count; }
  void clear() override { count = 0; }
  std::int64_t count = 0;

 private:
  std::string name_;
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<nlohmann::ordered_json> json_lines(const std::string& text) {
  std::vector<nlohmann::ordered_json> out;
  for (const auto& line : lines(text)) out.push_back(nlohmann::ordered_json::parse(line));
  return out;
}

std::vector<std::string> keys(const nlohmann::ordered_json& object) {
  std::vector<std::string> out;
  for (const auto& item : object.items()) out.push_back(item.key());
  return out;
}

// Forwards to a real store, except that rebuild_request() answers from a script: each call
// returns the next state (the last one repeats), so the CLI's polls see a fixed sequence.
class ScriptedRebuilds final : public ProjectionStore {
 public:
  ScriptedRebuilds(ProjectionStore& inner, std::deque<RebuildRequest> script)
      : inner_(inner), script_(std::move(script)) {}

  std::optional<RebuildRequest> rebuild_request(std::int64_t) override {
    auto next = script_.front();
    if (script_.size() > 1) script_.pop_front();
    return next;
  }

  void prepare(projections::Projection& p) override { inner_.prepare(p); }
  std::optional<projections::Lease> try_acquire(const std::string& p, const std::string& o,
                                                std::chrono::milliseconds t) override {
    return inner_.try_acquire(p, o, t);
  }
  std::optional<projections::Lease> renew(const projections::Lease& l,
                                          std::chrono::milliseconds t) override {
    return inner_.renew(l, t);
  }
  void release(const projections::Lease& l) override { inner_.release(l); }
  Position checkpoint(const std::string& p) override { return inner_.checkpoint(p); }
  std::unique_ptr<projections::Batch> begin(const projections::Lease& l, Position c) override {
    return inner_.begin(l, c);
  }
  void report(const projections::Lease& l, const projections::ProjectionReport& r) override {
    inner_.report(l, r);
  }
  std::vector<projections::ProjectionRecord> list() override { return inner_.list(); }
  std::vector<projections::DeadLetter> list_dead_letters(
      const projections::DeadLetterQuery& q) override {
    return inner_.list_dead_letters(q);
  }
  void request_retry(std::int64_t id) override { inner_.request_retry(id); }
  void skip(std::int64_t id) override { inner_.skip(id); }
  void retry_failed(std::int64_t id, const std::string& e) override { inner_.retry_failed(id, e); }
  RebuildRequest request_rebuild(const std::string& p) override {
    return inner_.request_rebuild(p);
  }
  std::optional<RebuildRequest> open_rebuild(const std::string& p) override {
    return inner_.open_rebuild(p);
  }
  void update_rebuild(const RebuildRequest& r) override { inner_.update_rebuild(r); }

 private:
  ProjectionStore& inner_;
  std::deque<RebuildRequest> script_;
};

RebuildRequest step(RebuildState state, std::optional<std::int64_t> done = std::nullopt,
                    std::optional<std::string> message = std::nullopt) {
  RebuildRequest r;
  r.id = 1;
  r.projection = "balances";
  r.state = state;
  if (state != RebuildState::kRequested) r.target = Position(90, 1000);
  if (done) r.progress = Position(50, *done);
  r.message = std::move(message);
  return r;
}

class ProjectionCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_->prepare(counter_);
    for (int i = 0; i < 5; ++i) {
      positions_.push_back(events_
                               ->append(StreamId("account-" + std::to_string(i)),
                                        ExpectedVersion::any(), {NewEvent{.type = "Opened"}})
                               .position);
    }
  }

  std::string status(ProjectionStatusArgs args) {
    std::ostringstream out;
    projections_status(*store_, *events_, args, out);
    return out.str();
  }

  // Parks the first event as a dead letter of "balances"; returns its id.
  std::int64_t park_one(const std::string& owner = "runner-1") {
    const auto lease = store_->try_acquire("balances", owner, 10s);
    EXPECT_TRUE(lease.has_value());
    const auto event = events_->read_all().front();
    auto batch = store_->begin(*lease, store_->checkpoint("balances"));
    batch->park(event, "boom\nsecond line", 3);
    batch->commit(event.position);
    return store_->list_dead_letters({}).back().id;
  }

  std::unique_ptr<EventStore> events_ = make_in_memory_event_store();
  std::unique_ptr<ProjectionStore> store_ = projections::make_in_memory_projection_store();
  Counter counter_{"balances"};
  std::vector<Position> positions_;
};

TEST(ProjectionExitCodeTest, NotFoundIsFourAndTimeoutIsFive) {
  EXPECT_EQ(static_cast<int>(ExitCode::kNotFound), 4);
  EXPECT_EQ(static_cast<int>(ExitCode::kTimeout), 5);
  // A library NotFoundError (e.g. the schema is missing) keeps exit 1.
  EXPECT_EQ(exit_code_for(ErrorCode::kNotFound), ExitCode::kError);
}

TEST_F(ProjectionCommandsTest, ListPrintsATableWithLagBehindTheHead) {
  const auto table = lines(status({}));
  ASSERT_EQ(table.size(), 2U);
  EXPECT_EQ(table[0].rfind("NAME", 0), 0U);
  for (const auto* column : {"OWNER", "POSITION", "LAG", "STATE", "LEASE EXPIRES"}) {
    EXPECT_NE(table[0].find(column), std::string::npos) << column;
  }
  EXPECT_EQ(table[1].rfind("balances", 0), 0U);
  // Not owned, at the start of the log, five events behind.
  std::istringstream row(table[1]);
  std::string name, owner, position, lag;
  row >> name >> owner >> position >> lag;
  EXPECT_EQ(owner, "-");
  EXPECT_EQ(position, "0");
  EXPECT_EQ(lag, "5");
}

TEST_F(ProjectionCommandsTest, ListJsonHasOneObjectPerProjectionWithKeysInOrder) {
  const auto lease = store_->try_acquire("balances", "runner-1", 10s);
  ASSERT_TRUE(lease);
  auto batch = store_->begin(*lease, Position::start());
  batch->commit(positions_[2]);

  const auto rows = json_lines(status({.json = true}));
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(keys(rows[0]),
            (std::vector<std::string>{"name", "owner", "owned", "position", "head", "lag", "state",
                                      "lease_expires_at", "read_schema", "generation_of",
                                      "partition", "runner_seat_of"}));
  EXPECT_TRUE(rows[0]["read_schema"].is_null());
  EXPECT_TRUE(rows[0]["generation_of"].is_null());
  EXPECT_EQ(rows[0]["name"], "balances");
  EXPECT_EQ(rows[0]["owner"], "runner-1");
  EXPECT_EQ(rows[0]["owned"], true);
  EXPECT_EQ(rows[0]["position"], positions_[2].to_string());
  EXPECT_EQ(rows[0]["head"], positions_[4].to_string());
  EXPECT_EQ(rows[0]["lag"], positions_[4].sequence() - positions_[2].sequence());
  EXPECT_TRUE(rows[0]["lease_expires_at"].is_string());
}

TEST_F(ProjectionCommandsTest, StatusOfOneNameAndUnknownNameIsNotFound) {
  Counter other{"other"};
  store_->prepare(other);
  EXPECT_EQ(json_lines(status({.json = true})).size(), 2U);
  const auto one = json_lines(status({.name = "other", .json = true}));
  ASSERT_EQ(one.size(), 1U);
  EXPECT_EQ(one[0]["name"], "other");
  try {
    (void)status({.name = "nope"});
    FAIL() << "no ExitError";
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code(), ExitCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  }
}

TEST_F(ProjectionCommandsTest, StatusDetailsRebuildsDeadLettersAndErrors) {
  (void)park_one();
  const auto request = store_->request_rebuild("balances");
  const auto rows = json_lines(status({.json = true, .detailed = true}));
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(keys(rows[0]),
            (std::vector<std::string>{
                "name", "owner", "owned", "position", "head", "lag", "state", "lease_expires_at",
                "fencing_token", "events_applied", "last_error", "updated_at", "rebuild",
                "dead_letters", "read_schema", "generation_of", "partition", "runner_seat_of"}));
  EXPECT_EQ(rows[0]["rebuild"]["id"], request.id);
  EXPECT_EQ(rows[0]["rebuild"]["state"], "requested");
  EXPECT_TRUE(rows[0]["rebuild"]["percent"].is_null());
  EXPECT_EQ(rows[0]["dead_letters"]["parked"], 1);
  EXPECT_EQ(rows[0]["dead_letters"]["retry_requested"], 0);

  const auto text = status({.detailed = true});
  EXPECT_NE(text.find("TOKEN"), std::string::npos) << text;
  EXPECT_NE(text.find("balances: rebuild " + std::to_string(request.id) + " requested"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("balances: dead letters: 1 parked, 0 retry requested"), std::string::npos)
      << text;
}

// A partitioned projection (docs/scaling.md): status NAME shows its partitions and runner
// seats with a line on how they are spread; repartition changes the count once its runners
// stopped; rebuild refuses it (a partition cannot be reset alone).
TEST_F(ProjectionCommandsTest, PartitionedProjectionStatusRepartitionAndRebuild) {
  {
    projections::RunnerOptions options;
    options.owner = "runner-p";
    options.acquire_interval = 10ms;
    options.poll_interval = 50ms;
    projections::ProjectionRunner runner(*events_, *store_, options);
    runner.add(std::make_shared<Counter>("parted"), {.partitions = 2});
    runner.start();
    ASSERT_TRUE(
        projections::wait_for_checkpoint(*store_, "parted.part-1-of-2", positions_[4], 10s));
    ASSERT_TRUE(
        projections::wait_for_checkpoint(*store_, "parted.part-0-of-2", positions_[4], 10s));
    const auto text = status({.name = "parted"});
    for (const auto* row : {"parted.part-0-of-2", "parted.part-1-of-2", "parted.runner-0"}) {
      EXPECT_NE(text.find(row), std::string::npos) << row << " in\n" << text;
    }
    EXPECT_NE(text.find("parted: 2 partitions, 1 live runner: runner-p holds 2"), std::string::npos)
        << text;
    const auto rows = json_lines(status({.name = "parted", .json = true}));
    ASSERT_EQ(rows.size(), 5U);  // the projection, 2 partitions, 2 seats
    EXPECT_EQ(rows[1]["name"], "parted.part-0-of-2");
    EXPECT_EQ(rows[1]["partition"]["of"], "parted");
    EXPECT_EQ(rows[1]["partition"]["index"], 0);
    EXPECT_EQ(rows[1]["partition"]["count"], 2);
    EXPECT_EQ(rows[3]["runner_seat_of"], "parted");
    // Rows without progress of their own: no lag (the partitions carry it).
    EXPECT_TRUE(rows[0]["lag"].is_null());
    EXPECT_TRUE(rows[3]["lag"].is_null());
    EXPECT_EQ(rows[1]["lag"], 0);

    // Running: the runner holds the partitions, so the change is refused and nothing changes.
    std::ostringstream refused;
    EXPECT_THROW(projections_repartition(*store_, {.name = "parted", .partitions = 3}, refused),
                 UnavailableError);
  }
  std::ostringstream out;
  projections_repartition(*store_, {.name = "parted", .partitions = 3, .json = true}, out);
  const auto done = json_lines(out.str());
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0]["from"], 2);
  EXPECT_EQ(done[0]["to"], 3);
  EXPECT_EQ(done[0]["position"], positions_[4].to_string());
  EXPECT_EQ(projections::stored_partition_count(*store_, "parted"), 3);

  for (const auto* name : {"parted", "parted.part-0-of-3"}) {
    try {
      projections_rebuild(*store_, {.name = name, .no_wait = true}, out);
      ADD_FAILURE() << "rebuild of " << name << " was filed";
    } catch (const ExitError& e) {
      EXPECT_EQ(e.code(), ExitCode::kUsage);
      EXPECT_NE(std::string(e.what()).find("rebuild_partitions()"), std::string::npos);
    }
  }
  try {
    projections_repartition(*store_, {.name = "nope", .partitions = 2}, out);
    ADD_FAILURE() << "no ExitError";
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code(), ExitCode::kNotFound);
  }
  EXPECT_THROW(projections_repartition(*store_, {.name = "parted", .partitions = 0}, out),
               InvalidArgumentError);
}

TEST_F(ProjectionCommandsTest, EmptyStoreSaysNoProjections) {
  auto empty = projections::make_in_memory_projection_store();
  std::ostringstream out;
  projections_status(*empty, *events_, {}, out);
  EXPECT_EQ(out.str(),
            "no projections registered (a runner registers its projections when it "
            "starts)\n");
  std::ostringstream json;
  projections_status(*empty, *events_, {.json = true}, json);
  EXPECT_EQ(json.str(), "");
}

TEST_F(ProjectionCommandsTest, RebuildFollowsTheOwnersProgressUntilDone) {
  ASSERT_TRUE(store_->try_acquire("balances", "runner-1", 10s));
  ScriptedRebuilds scripted(*store_,
                            {step(RebuildState::kRequested), step(RebuildState::kRunning, 0),
                             step(RebuildState::kRunning, 410), step(RebuildState::kRunning, 410),
                             step(RebuildState::kRunning, 1000), step(RebuildState::kDone, 1000)});
  std::ostringstream out;
  projections_rebuild(scripted, {.name = "balances", .poll_interval = 0ms}, out);
  const auto id = store_->open_rebuild("balances")->id;
  EXPECT_EQ(
      lines(out.str()),
      (std::vector<std::string>{
          "rebuild balances: request " + std::to_string(id) + " requested",
          "rebuild balances: owned by runner-1; waiting for it to start the rebuild",
          "rebuild balances: running on runner-1", "rebuild balances: 0% (0 of 1000 events)",
          "rebuild balances: 41% (410 of 1000 events)",
          "rebuild balances: 100% (1000 of 1000 events)", "rebuild balances: done (1000 events)"}));
}

TEST_F(ProjectionCommandsTest, RebuildJsonPrintsOneObjectPerStepEvenOnATerminal) {
  ASSERT_TRUE(store_->try_acquire("balances", "runner-1", 10s));
  ScriptedRebuilds scripted(*store_,
                            {step(RebuildState::kRequested), step(RebuildState::kRunning, 410),
                             step(RebuildState::kRunning, 410), step(RebuildState::kDone, 1000)});
  std::ostringstream out;
  projections_rebuild(
      scripted, {.name = "balances", .json = true, .poll_interval = 0ms, .terminal = true}, out);
  const auto id = store_->open_rebuild("balances")->id;
  EXPECT_EQ(lines(out.str()), (std::vector<std::string>{
                                  R"({"event":"filed","projection":"balances","request":)" +
                                      std::to_string(id) + R"(,"state":"requested"})",
                                  R"({"event":"waiting","owner":"runner-1"})",
                                  R"({"event":"running","owner":"runner-1"})",
                                  R"({"event":"progress","percent":41,"done":410,"total":1000})",
                                  R"({"event":"done","events":1000})"}));
}

TEST_F(ProjectionCommandsTest, RebuildDrawsABarOnATerminal) {
  ScriptedRebuilds scripted(*store_,
                            {step(RebuildState::kRunning, 410), step(RebuildState::kDone, 1000)});
  std::ostringstream out;
  projections_rebuild(scripted, {.name = "balances", .poll_interval = 0ms, .terminal = true}, out);
  const auto text = out.str();
  EXPECT_NE(text.find("\rrebuild balances: [############..................] 41% (410 of 1000 "
                      "events)\nrebuild balances: done (1000 events)\n"),
            std::string::npos)
      << text;
}

TEST_F(ProjectionCommandsTest, RebuildFailureIsAnErrorWithTheOwnersMessage) {
  ScriptedRebuilds scripted(
      *store_, {step(RebuildState::kRunning, 10), step(RebuildState::kFailed, 10, "disk full")});
  std::ostringstream out;
  try {
    projections_rebuild(scripted, {.name = "balances", .poll_interval = 0ms}, out);
    FAIL() << "no ExitError";
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code(), ExitCode::kError);
    EXPECT_EQ(std::string(e.what()), "rebuild of balances failed: disk full");
  }
}

TEST_F(ProjectionCommandsTest, RebuildWithoutAnOwnerSaysSoAndTimesOut) {
  std::ostringstream out;
  try {
    projections_rebuild(*store_,
                        {.name = "balances", .timeout_seconds = 0.05, .poll_interval = 5ms}, out);
    FAIL() << "no ExitError";
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code(), ExitCode::kTimeout);
    EXPECT_NE(std::string(e.what()).find("run the same command again"), std::string::npos);
  }
  EXPECT_NE(out.str().find("rebuild balances: no runner owns balances at the moment: the request "
                           "waits until a runner running it takes it over"),
            std::string::npos)
      << out.str();
  // The request stays open for a runner; asking again joins it.
  const auto open = store_->open_rebuild("balances");
  ASSERT_TRUE(open);
  std::ostringstream again;
  projections_rebuild(*store_, {.name = "balances", .no_wait = true}, again);
  EXPECT_EQ(lines(again.str()).at(0),
            "rebuild balances: request " + std::to_string(open->id) + " requested");
}

TEST_F(ProjectionCommandsTest, RebuildRejectsUnknownNamesAndBadTimeouts) {
  std::ostringstream out;
  try {
    projections_rebuild(*store_, {.name = "nope"}, out);
    FAIL() << "no ExitError";
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code(), ExitCode::kNotFound);
  }
  EXPECT_THROW(projections_rebuild(*store_, {.name = "balances", .timeout_seconds = 0}, out),
               InvalidArgumentError);
  EXPECT_THROW(projections_rebuild(*store_, {.name = "balances", .timeout_seconds = -1}, out),
               InvalidArgumentError);
  EXPECT_FALSE(store_->open_rebuild("balances").has_value());
}

// The whole path without a server: a real ProjectionRunner owns the projection and carries out
// the request the CLI verb files.
TEST_F(ProjectionCommandsTest, RebuildIsCarriedOutByARunner) {
  auto counter = std::make_shared<Counter>("counted");
  projections::RunnerOptions options;
  options.owner = "runner-1";
  options.request_interval = 20ms;
  options.poll_interval = 20ms;
  projections::ProjectionRunner runner(*events_, *store_, options);
  runner.add(counter);
  runner.start();
  ASSERT_TRUE(runner.wait_for("counted", positions_.back(), 10s));
  std::ostringstream out;
  projections_rebuild(*store_, {.name = "counted", .timeout_seconds = 30, .poll_interval = 10ms},
                      out);
  EXPECT_NE(out.str().find("rebuild counted: done"), std::string::npos) << out.str();
  runner.stop();
  EXPECT_EQ(counter->count, 5);
}

TEST_F(ProjectionCommandsTest, DeadLettersListAsTableAndJson) {
  const auto id = park_one();
  std::ostringstream table;
  dead_letters_list(*store_, {}, table);
  const auto rows = lines(table.str());
  ASSERT_EQ(rows.size(), 2U) << table.str();
  EXPECT_EQ(rows[0].rfind("ID", 0), 0U);
  EXPECT_NE(rows[1].find("boom second line"), std::string::npos) << rows[1];

  std::ostringstream json;
  dead_letters_list(*store_, {.json = true}, json);
  const auto letters = json_lines(json.str());
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(keys(letters[0]),
            (std::vector<std::string>{"id", "projection", "state", "attempts", "stream", "version",
                                      "position", "event_id", "type", "error", "parked_at",
                                      "updated_at"}));
  EXPECT_EQ(letters[0]["id"], id);
  EXPECT_EQ(letters[0]["state"], "parked");
  EXPECT_EQ(letters[0]["attempts"], 3);
  EXPECT_EQ(letters[0]["error"], "boom\nsecond line");

  std::ostringstream none;
  dead_letters_list(*store_, {.state = "skipped"}, none);
  EXPECT_EQ(none.str(), "no dead letters\n");
  std::ostringstream other;
  dead_letters_list(*store_, {.projection = "other", .json = true}, other);
  EXPECT_EQ(other.str(), "");
  EXPECT_THROW(dead_letters_list(*store_, {.state = "bogus"}, none), InvalidArgumentError);
}

TEST_F(ProjectionCommandsTest, DeadLettersRetryAndSkip) {
  const auto id = park_one();
  std::ostringstream out;
  dead_letters_retry(*store_, id, out);
  EXPECT_EQ(store_->list_dead_letters({}).at(0).state, DeadLetterState::kRetryRequested);
  dead_letters_skip(*store_, id, out);
  EXPECT_EQ(store_->list_dead_letters({}).at(0).state, DeadLetterState::kSkipped);
  EXPECT_EQ(lines(out.str()).back(), "dead letter " + std::to_string(id) + ": skipped");
  EXPECT_THROW(dead_letters_retry(*store_, id, out), InvalidArgumentError);
  for (const auto verb : {&dead_letters_retry, &dead_letters_skip}) {
    try {
      verb(*store_, 999, out);
      FAIL() << "no ExitError";
    } catch (const ExitError& e) {
      EXPECT_EQ(e.code(), ExitCode::kNotFound);
      EXPECT_EQ(std::string(e.what()), "no dead letter with id 999");
    }
  }
}

// --- dead-letters retry|skip: --json, and --projection P --all -------------------------------

TEST_F(ProjectionCommandsTest, DeadLetterActionOnOneIdPrintsJsonWithJson) {
  const auto id = park_one();
  std::ostringstream out;
  dead_letters_act(*store_, DeadLetterAction::kRetry, {.id = std::to_string(id), .json = true},
                   out);
  EXPECT_EQ(out.str(), R"({"action":"retry","id":)" + std::to_string(id) +
                           R"(,"state":"retry-requested"})" + "\n");
  std::ostringstream text;
  dead_letters_act(*store_, DeadLetterAction::kSkip, {.id = std::to_string(id)}, text);
  EXPECT_EQ(text.str(), "dead letter " + std::to_string(id) + ": skipped\n");
}

TEST_F(ProjectionCommandsTest, DeadLetterActionRefusesMissingOrConflictingTargets) {
  std::ostringstream out;
  for (const auto& bad : std::vector<DeadLetterActionArgs>{
           {},                                     // neither an id nor --all
           {.id = "1", .all = true},               // both
           {.all = true},                          // --all without --projection
           {.id = "1", .projection = "balances"},  // --projection without --all
           {.projection = "", .all = true},        // an empty projection
           {.id = "x"}}) {                         // not an id
    EXPECT_THROW(dead_letters_act(*store_, DeadLetterAction::kRetry, bad, out),
                 InvalidArgumentError);
  }
  EXPECT_EQ(out.str(), "");
}

TEST_F(ProjectionCommandsTest, RetryAllRequestsEveryParkedLetterOfOneProjectionOnly) {
  const auto first = park_one();
  const auto second = park_one();
  const auto done = park_one();
  const auto other = park_one("runner-1");
  store_->skip(done);  // not open: left alone
  // A letter of another projection is not touched.
  Counter audit{"audit"};
  store_->prepare(audit);
  const auto lease = store_->try_acquire("audit", "runner-2", 10s);
  ASSERT_TRUE(lease.has_value());
  const auto event = events_->read_all().front();
  auto batch = store_->begin(*lease, store_->checkpoint("audit"));
  batch->park(event, "other projection", 1);
  batch->commit(event.position);

  std::ostringstream out;
  dead_letters_act(*store_, DeadLetterAction::kRetry,
                   {.projection = "balances", .all = true, .json = true}, out);
  const auto result = nlohmann::json::parse(out.str());
  EXPECT_EQ(result["action"], "retry");
  EXPECT_EQ(result["projection"], "balances");
  EXPECT_EQ(result["ids"], (std::vector<std::int64_t>{first, second, other}));
  EXPECT_EQ(result["changed_meanwhile"].size(), 0U);
  for (const auto& letter : store_->list_dead_letters({})) {
    const bool retried = letter.projection == "balances" && letter.id != done;
    EXPECT_EQ(letter.state,
              retried ? DeadLetterState::kRetryRequested
                      : (letter.id == done ? DeadLetterState::kSkipped : DeadLetterState::kParked))
        << letter.id;
  }
  // Nothing left to retry: a second run does nothing and says so.
  std::ostringstream again;
  dead_letters_act(*store_, DeadLetterAction::kRetry, {.projection = "balances", .all = true},
                   again);
  EXPECT_EQ(again.str(), "balances: 0 dead letter(s) retry requested\n");
}

TEST_F(ProjectionCommandsTest, SkipAllGivesUpOnParkedAndRetryRequestedLetters) {
  const auto parked = park_one();
  const auto requested = park_one();
  store_->request_retry(requested);
  std::ostringstream out;
  dead_letters_act(*store_, DeadLetterAction::kSkip, {.projection = "balances", .all = true}, out);
  EXPECT_EQ(out.str(), "balances: 2 dead letter(s) skipped (ids " + std::to_string(parked) + ", " +
                           std::to_string(requested) + ")\n");
  for (const auto& letter : store_->list_dead_letters({})) {
    EXPECT_EQ(letter.state, DeadLetterState::kSkipped);
  }
}

TEST_F(ProjectionCommandsTest, RetryAllPagesThroughMoreLettersThanOneListing) {
  // list_dead_letters returns at most 1,000 per call: 1,001 parked letters need two listings.
  const auto lease = store_->try_acquire("balances", "runner-1", 10s);
  ASSERT_TRUE(lease.has_value());
  const auto event = events_->read_all().front();
  auto batch = store_->begin(*lease, store_->checkpoint("balances"));
  for (int i = 0; i < 1001; ++i) batch->park(event, "boom", 1);
  batch->commit(event.position);
  std::ostringstream out;
  dead_letters_act(*store_, DeadLetterAction::kRetry,
                   {.projection = "balances", .all = true, .json = true}, out);
  EXPECT_EQ(nlohmann::json::parse(out.str())["ids"].size(), 1001U);
  EXPECT_TRUE(store_->list_dead_letters({.state = DeadLetterState::kParked}).empty());
}

TEST(ProjectionCommandsParseTest, DeadLetterIdsArePositiveIntegers) {
  EXPECT_EQ(parse_dead_letter_id("12"), 12);
  for (const auto* bad : {"", "0", "-3", "12a", "x", "1.5", "99999999999999999999"}) {
    EXPECT_THROW((void)parse_dead_letter_id(bad), InvalidArgumentError) << bad;
  }
}

}  // namespace
}  // namespace annals::cli
