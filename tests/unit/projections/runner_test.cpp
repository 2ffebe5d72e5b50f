// The ProjectionRunner on the in-memory event store and projection store: delivery order and
// exactly-once on the happy path, batching, ownership and failover, the failure policy, dead
// letters, rebuilds, read-your-writes, status and shutdown.
#include "annals/projections/runner.hpp"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/testkit/printers.hpp"
#include "runner_support.hpp"

namespace annals::projections {
namespace {

using std::chrono::milliseconds;
using test::eventually;
using test::Recorder;
using test::Sink;

constexpr milliseconds kTimeout{20'000};

class RunnerTest : public ::testing::Test {
 protected:
  /// Fast options for tests: short intervals, so that nothing waits on a default second.
  static RunnerOptions options(const std::string& owner = "runner-a") {
    RunnerOptions out;
    out.owner = owner;
    out.lease_ttl = milliseconds(10'000);
    out.acquire_interval = milliseconds(10);
    out.poll_interval = milliseconds(1'000);
    out.request_interval = milliseconds(20);
    return out;
  }

  /// Fast retries: 3 attempts, 1-4 ms apart.
  static ProjectionOptions retrying(OnFailure on_failure, std::size_t batch_size = 500) {
    ProjectionOptions out;
    out.batch_size = batch_size;
    out.max_attempts = 3;
    out.initial_backoff = milliseconds(1);
    out.max_backoff = milliseconds(4);
    out.on_failure = on_failure;
    return out;
  }

  AppendResult append(const std::string& stream, const std::string& type,
                      nlohmann::json data = nlohmann::json::object()) {
    NewEvent event;
    event.type = type;
    event.data = std::move(data);
    return events_->append(StreamId(stream), ExpectedVersion::any(), {event});
  }

  /// Appends `count` events "Deposited" {"n": i} to "account-<i % 3>"; returns the last.
  AppendResult append_many(int count, int first = 0) {
    AppendResult last{StreamId("x"), 0, 0, Position::start()};
    for (int i = first; i < first + count; ++i) {
      last = append("account-" + std::to_string(i % 3), "Deposited", {{"n", i}});
    }
    return last;
  }

  /// Every event of the log that `filter` matches, in order.
  std::vector<RecordedEvent> log(const EventFilter& filter = {}) {
    std::vector<RecordedEvent> out;
    Position after = Position::start();
    for (;;) {
      ReadAllOptions read;
      read.after = after;
      read.filter = filter;
      auto page = events_->read_all(read);
      if (page.empty()) return out;
      after = page.back().position;
      out.insert(out.end(), page.begin(), page.end());
    }
  }

  static std::vector<EventId> ids(const std::vector<RecordedEvent>& events) {
    std::vector<EventId> out;
    for (const auto& event : events) out.push_back(event.id);
    return out;
  }

  ProjectionRecord record(const std::string& name) {
    for (const auto& r : store_->list()) {
      if (r.name == name) return r;
    }
    ADD_FAILURE() << name << " is not in list()";
    return {};
  }

  std::unique_ptr<EventStore> events_ = make_in_memory_event_store();
  std::unique_ptr<ProjectionStore> store_ = make_in_memory_projection_store();
};

// ---- Delivery ----------------------------------------------------------------------------

TEST_F(RunnerTest, CatchesUpThenFollowsLiveEventsExactlyOnceInOrder) {
  append_many(25);
  auto projection = std::make_shared<Recorder>("all");
  ProjectionRunner runner(*events_, *store_, options());
  ProjectionOptions small;
  small.batch_size = 7;
  runner.add(projection, small);
  runner.start();
  const auto caught_up = append_many(1, 25);
  ASSERT_TRUE(runner.wait_for("all", caught_up.position, kTimeout));
  const auto live = append_many(10, 26);
  ASSERT_TRUE(runner.wait_for("all", live.position, kTimeout));
  EXPECT_EQ(ids(projection->sink().events()), ids(log()));
  EXPECT_EQ(projection->sink().events().size(), 36u);
  EXPECT_EQ(projection->applies.load(), 36);
}

TEST_F(RunnerTest, FilterDeliversOnlyMatchingEventsAndTheCheckpointFollowsTheHead) {
  EventFilter filter;
  filter.category = "account";
  filter.event_types = {"Deposited"};
  for (int i = 0; i < 5; ++i) {
    append("account-" + std::to_string(i), "Deposited", {{"n", i}});
    append("account-" + std::to_string(i), "Withdrawn", {{"n", i}});
    append("order-" + std::to_string(i), "Deposited", {{"n", i}});
  }
  const auto last = append("order-9", "Shipped");  // not matched: the head moves past it
  auto projection = std::make_shared<Recorder>("deposits", filter);
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection);
  runner.start();
  ASSERT_TRUE(runner.wait_for("deposits", last.position, kTimeout));
  const auto delivered = projection->sink().events();
  EXPECT_EQ(ids(delivered), ids(log(filter)));
  ASSERT_EQ(delivered.size(), 5u);
  for (const auto& event : delivered) {
    EXPECT_EQ(event.type, "Deposited");
    EXPECT_EQ(event.stream_id.category(), "account");
  }
  // The stored checkpoint reaches the head too (an idle commit, at most 200 ms later).
  EXPECT_TRUE(wait_for_checkpoint(*store_, "deposits", last.position, kTimeout));
}

TEST_F(RunnerTest, RestartContinuesFromTheCheckpoint) {
  const auto first = append_many(10);
  auto before = std::make_shared<Recorder>("counter");
  {
    ProjectionRunner runner(*events_, *store_, options());
    runner.add(before);
    runner.start();
    ASSERT_TRUE(runner.wait_for("counter", first.position, kTimeout));
    runner.stop();
  }
  EXPECT_EQ(store_->checkpoint("counter"), first.position);
  const auto second = append_many(5, 10);
  auto after = std::make_shared<Recorder>("counter");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(after);
  runner.start();
  ASSERT_TRUE(runner.wait_for("counter", second.position, kTimeout));
  const auto all = log();
  EXPECT_EQ(ids(after->sink().events()), ids({all.begin() + 10, all.end()}));
  EXPECT_EQ(before->sink().events().size(), 10u);
}

TEST_F(RunnerTest, BatchesHoldAtMostBatchSizeEvents) {
  const auto last = append_many(23);
  auto projection = std::make_shared<Recorder>("batched");
  test::DecoratedStore counting(*store_, projection->applies);
  ProjectionRunner runner(*events_, counting, options());
  ProjectionOptions small;
  small.batch_size = 5;
  runner.add(projection, small);
  runner.start();
  ASSERT_TRUE(runner.wait_for("batched", last.position, kTimeout));
  runner.stop();
  std::vector<int> with_events;
  for (const int n : counting.applies_per_commit()) {
    if (n > 0) with_events.push_back(n);
  }
  EXPECT_EQ(with_events, (std::vector<int>{5, 5, 5, 5, 3}));
  EXPECT_EQ(ids(projection->sink().events()), ids(log()));
}

// ---- Ownership ---------------------------------------------------------------------------

TEST_F(RunnerTest, SecondRunnerStandsByAndTakesOverExactlyWhereTheOwnerStopped) {
  auto sink = std::make_shared<Sink>();
  auto a_projection = std::make_shared<Recorder>("shared", EventFilter{}, sink);
  auto b_projection = std::make_shared<Recorder>("shared", EventFilter{}, sink);
  ProjectionRunner a(*events_, *store_, options("runner-a"));
  ProjectionRunner b(*events_, *store_, options("runner-b"));
  a.add(a_projection);
  b.add(b_projection);

  const auto first = append_many(10);
  a.start();
  ASSERT_TRUE(a.wait_for("shared", first.position, kTimeout));
  b.start();
  ASSERT_TRUE(eventually([&] { return b.status("shared").state == ProjectionState::kStandby; }));
  const auto a_lease = a.status("shared").lease;
  ASSERT_TRUE(a_lease.has_value());
  EXPECT_EQ(a_lease->owner, "runner-a");
  EXPECT_FALSE(b.status("shared").lease.has_value());

  const auto second = append_many(10, 10);
  ASSERT_TRUE(a.wait_for("shared", second.position, kTimeout));
  a.stop();  // releases the lease: b takes over within acquire_interval
  const auto third = append_many(10, 20);
  ASSERT_TRUE(b.wait_for("shared", third.position, kTimeout));

  EXPECT_EQ(ids(sink->events()), ids(log())) << "an event was skipped or applied twice";
  EXPECT_EQ(b_projection->applies.load(), 10);
  const auto b_lease = b.status("shared").lease;
  ASSERT_TRUE(b_lease.has_value());
  EXPECT_EQ(b_lease->owner, "runner-b");
  EXPECT_GT(b_lease->fencing_token, a_lease->fencing_token);
  EXPECT_EQ(record("shared").owner, "runner-b");
}

TEST_F(RunnerTest, LostRenewalDropsTheWorkAndReacquires) {
  auto projection = std::make_shared<Recorder>("renewed");
  test::DecoratedStore faulty(*store_, projection->applies);
  auto opts = options();
  opts.lease_ttl = milliseconds(30);  // renewed every 10 ms
  ProjectionRunner runner(*events_, faulty, opts);
  runner.add(projection);
  const auto first = append_many(5);
  runner.start();
  ASSERT_TRUE(runner.wait_for("renewed", first.position, kTimeout));
  faulty.refused_renewals = 1;
  ASSERT_TRUE(eventually([&] { return faulty.refused_renewals.load() <= 0; }));
  const auto second = append_many(5, 5);
  ASSERT_TRUE(runner.wait_for("renewed", second.position, kTimeout));
  EXPECT_EQ(ids(projection->sink().events()), ids(log()));
  ASSERT_TRUE(runner.status("renewed").lease.has_value());
}

TEST_F(RunnerTest, UnavailableCommitIsRetriedFromTheStoredCheckpoint) {
  const auto last = append_many(12);
  auto projection = std::make_shared<Recorder>("flaky");
  test::DecoratedStore faulty(*store_, projection->applies);
  faulty.failing_commits = 1;  // the first batch's commit is lost
  ProjectionRunner runner(*events_, faulty, options());
  ProjectionOptions opts = retrying(OnFailure::kStop, 4);
  runner.add(projection, opts);
  runner.start();
  ASSERT_TRUE(runner.wait_for("flaky", last.position, kTimeout));
  // At least once: the first batch came again after the lost commit.
  const auto delivered = projection->sink().events();
  ASSERT_EQ(delivered.size(), 16u);
  std::vector<RecordedEvent> deduplicated;
  for (const auto& event : delivered) {
    if (deduplicated.empty() || event.position > deduplicated.back().position) {
      deduplicated.push_back(event);
    }
  }
  EXPECT_EQ(ids(deduplicated), ids(log()));
  EXPECT_EQ(runner.status("flaky").errors, 0u) << "infrastructure errors are not event errors";
}

// ---- Failure policy and dead letters -----------------------------------------------------

TEST_F(RunnerTest, TransientFailureIsRetriedAndAppliedOnce) {
  append_many(3);
  const auto last = append_many(1, 3);
  auto projection = std::make_shared<Recorder>("transient");
  projection->transient_failures = 2;  // the first two attempts at the first event fail
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, retrying(OnFailure::kStop));
  runner.start();
  ASSERT_TRUE(runner.wait_for("transient", last.position, kTimeout));
  EXPECT_EQ(ids(projection->sink().events()), ids(log()));
  const auto status = runner.status("transient");
  EXPECT_EQ(status.errors, 2u);
  EXPECT_EQ(status.dead_letters, 0u);
  EXPECT_EQ(status.state, ProjectionState::kLive);
}

TEST_F(RunnerTest, FailureInTheMiddleOfABatchKeepsTheEventsBeforeItExactlyOnce) {
  append_many(4);
  const auto poison = append("account-9", "Deposited", {{"poison", true}});
  const auto last = append_many(4, 5);
  auto projection = std::make_shared<Recorder>("middle");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, retrying(OnFailure::kDeadLetter));
  runner.start();
  ASSERT_TRUE(runner.wait_for("middle", last.position, kTimeout));
  auto expected = log();
  std::erase_if(expected, [&](const auto& e) { return e.position == poison.position; });
  EXPECT_EQ(ids(projection->sink().events()), ids(expected));
}

TEST_F(RunnerTest, OnFailureStopFailsTheProjectionAndKeepsTheCheckpointBeforeTheEvent) {
  const auto good = append_many(3);
  const auto poison = append("account-9", "Deposited", {{"poison", true}});
  const auto last = append_many(2, 3);
  auto projection = std::make_shared<Recorder>("stopper");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, retrying(OnFailure::kStop));
  runner.start();
  EXPECT_FALSE(runner.wait_for("stopper", last.position, kTimeout));

  const auto status = runner.status("stopper");
  EXPECT_EQ(status.state, ProjectionState::kFailed);
  EXPECT_EQ(status.errors, 3u);
  ASSERT_TRUE(status.last_error.has_value());
  EXPECT_THAT(*status.last_error, ::testing::HasSubstr("cannot apply poison event"));
  EXPECT_THAT(*status.last_error, ::testing::HasSubstr(poison.position.to_string()));
  EXPECT_FALSE(status.lease.has_value());
  EXPECT_EQ(projection->sink().events().size(), 3u);
  EXPECT_EQ(store_->checkpoint("stopper"), good.position);

  const auto r = record("stopper");
  EXPECT_EQ(r.state, "failed");
  EXPECT_EQ(r.last_error, status.last_error);
  EXPECT_FALSE(r.owned) << "a failed projection gives its lease up for a fixed runner";
  EXPECT_TRUE(store_->list_dead_letters({}).empty());
  // Once failed, wait_for answers at once.
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(runner.wait_for("stopper", last.position, kTimeout));
  EXPECT_LT(std::chrono::steady_clock::now() - started, milliseconds(5'000));
}

TEST_F(RunnerTest, OnFailureDeadLetterParksTheEventAndContinues) {
  append_many(3);
  const auto poison = append("account-9", "Deposited", {{"poison", true}});
  const auto last = append_many(2, 3);
  auto projection = std::make_shared<Recorder>("parker");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, retrying(OnFailure::kDeadLetter));
  runner.start();
  ASSERT_TRUE(runner.wait_for("parker", last.position, kTimeout));

  EXPECT_EQ(projection->sink().events().size(), 5u);
  DeadLetterQuery query;
  query.projection = "parker";
  const auto letters = store_->list_dead_letters(query);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].event.position, poison.position);
  EXPECT_EQ(letters[0].event.data, (nlohmann::json{{"poison", true}}));
  EXPECT_EQ(letters[0].attempts, 3);
  EXPECT_THAT(letters[0].error, ::testing::HasSubstr("cannot apply poison event"));
  EXPECT_EQ(letters[0].state, DeadLetterState::kParked);
  const auto status = runner.status("parker");
  EXPECT_EQ(status.errors, 3u);
  EXPECT_EQ(status.dead_letters, 1u);
  EXPECT_EQ(status.state, ProjectionState::kLive);
}

TEST_F(RunnerTest, DeadLetterRetryFailsWhileBrokenAndSucceedsOnceFixed) {
  const auto poison = append("account-9", "Deposited", {{"poison", true}});
  const auto last = append_many(2);
  auto projection = std::make_shared<Recorder>("retrier");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, retrying(OnFailure::kDeadLetter));
  runner.start();
  ASSERT_TRUE(runner.wait_for("retrier", last.position, kTimeout));
  DeadLetterQuery query;
  query.projection = "retrier";
  const auto id = store_->list_dead_letters(query).at(0).id;

  // Still broken: the retry fails and parks it again with one more attempt.
  store_->request_retry(id);
  ASSERT_TRUE(eventually([&] {
    const auto letter = store_->list_dead_letters(query).at(0);
    return letter.state == DeadLetterState::kParked && letter.attempts == 4;
  }));

  // Fixed: the retry applies it and resolves it; the checkpoint does not move back.
  projection->broken = false;
  store_->request_retry(id);
  ASSERT_TRUE(eventually(
      [&] { return store_->list_dead_letters(query).at(0).state == DeadLetterState::kResolved; }));
  const auto delivered = projection->sink().events();
  ASSERT_EQ(delivered.size(), 3u);
  EXPECT_EQ(delivered.back().position, poison.position);
  EXPECT_EQ(store_->checkpoint("retrier"), last.position);
}

TEST_F(RunnerTest, SkippedDeadLetterIsNeverApplied) {
  const auto skipped = append("account-8", "Deposited", {{"poison", true}});
  const auto retried = append("account-9", "Deposited", {{"poison", true}});
  const auto last = append_many(2);
  auto projection = std::make_shared<Recorder>("skipper");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection, retrying(OnFailure::kDeadLetter));
  runner.start();
  ASSERT_TRUE(runner.wait_for("skipper", last.position, kTimeout));
  DeadLetterQuery query;
  query.projection = "skipper";
  const auto letters = store_->list_dead_letters(query);
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].event.position, skipped.position);
  EXPECT_EQ(letters[1].event.position, retried.position);

  projection->broken = false;
  store_->skip(letters[0].id);
  store_->request_retry(letters[1].id);
  // Once the retried one is resolved, the owner has looked at the dead letters since the skip.
  ASSERT_TRUE(eventually(
      [&] { return store_->list_dead_letters(query).at(1).state == DeadLetterState::kResolved; }));
  EXPECT_EQ(store_->list_dead_letters(query).at(0).state, DeadLetterState::kSkipped);
  EXPECT_THROW(store_->request_retry(letters[1].id), InvalidArgumentError);
  const auto delivered = projection->sink().positions();
  ASSERT_EQ(delivered.size(), 3u);
  EXPECT_EQ(delivered.back(), retried.position);
}

// ---- Rebuilds ----------------------------------------------------------------------------

TEST_F(RunnerTest, RebuildThroughTheRunnerReplaysIntoAClearedModel) {
  const auto first = append_many(12);
  auto projection = std::make_shared<Recorder>("rebuilt");
  ProjectionRunner runner(*events_, *store_, options());
  ProjectionOptions small;
  small.batch_size = 5;
  runner.add(projection, small);
  runner.start();
  ASSERT_TRUE(runner.wait_for("rebuilt", first.position, kTimeout));

  const auto request = runner.rebuild("rebuilt");
  EXPECT_EQ(request.projection, "rebuilt");
  ASSERT_TRUE(eventually(
      [&] { return store_->rebuild_request(request.id)->state == RebuildState::kDone; }));
  const auto done = *store_->rebuild_request(request.id);
  EXPECT_EQ(done.target, first.position);
  ASSERT_TRUE(done.progress.has_value());
  EXPECT_GE(*done.progress, first.position);
  EXPECT_EQ(projection->clears.load(), 1);
  EXPECT_EQ(ids(projection->sink().events()), ids(log()));
  EXPECT_EQ(projection->applies.load(), 24);
  EXPECT_FALSE(store_->open_rebuild("rebuilt").has_value());

  // Live again afterwards.
  const auto later = append_many(2, 12);
  ASSERT_TRUE(runner.wait_for("rebuilt", later.position, kTimeout));
  EXPECT_EQ(ids(projection->sink().events()), ids(log()));
  // Counted since the rebuild; the count is reported at most once a second.
  EXPECT_TRUE(eventually([&] { return record("rebuilt").events_applied == 14; }))
      << record("rebuilt").events_applied;
}

TEST_F(RunnerTest, RebuildRequestedThroughTheStoreIsCarriedOutByTheOwner) {
  const auto first = append_many(7);
  auto projection = std::make_shared<Recorder>("requested");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection);
  runner.start();
  ASSERT_TRUE(runner.wait_for("requested", first.position, kTimeout));

  const auto request = store_->request_rebuild("requested");  // as `annals projections rebuild`
  ASSERT_TRUE(eventually(
      [&] { return store_->rebuild_request(request.id)->state == RebuildState::kDone; }));
  EXPECT_EQ(projection->clears.load(), 1);
  EXPECT_EQ(ids(projection->sink().events()), ids(log()));
  EXPECT_EQ(projection->applies.load(), 14);
}

TEST_F(RunnerTest, RebuildLeftRunningByAFormerOwnerIsCarriedOnWithoutAnotherReset) {
  const auto last = append_many(6);
  auto projection = std::make_shared<Recorder>("resumed");
  store_->prepare(*projection);
  // A former owner reset the projection and marked the request running, then died.
  auto request = store_->request_rebuild("resumed");
  const auto former = store_->try_acquire("resumed", "former-owner", milliseconds(60'000));
  ASSERT_TRUE(former.has_value());
  request.state = RebuildState::kRunning;
  request.target = last.position;
  request.progress = Position::start();
  store_->update_rebuild(request);
  store_->release(*former);

  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection);
  runner.start();
  ASSERT_TRUE(eventually(
      [&] { return store_->rebuild_request(request.id)->state == RebuildState::kDone; }));
  EXPECT_EQ(projection->clears.load(), 0);
  EXPECT_EQ(ids(projection->sink().events()), ids(log()));
  EXPECT_EQ(store_->rebuild_request(request.id)->progress, last.position);
}

TEST_F(RunnerTest, RebuildWhoseResetFailsIsMarkedFailedAndTheProjectionGoesOn) {
  const auto first = append_many(3);
  auto projection = std::make_shared<Recorder>("unresettable");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection);
  runner.start();
  ASSERT_TRUE(runner.wait_for("unresettable", first.position, kTimeout));
  projection->clear_fails = true;
  const auto request = runner.rebuild("unresettable");
  ASSERT_TRUE(eventually(
      [&] { return store_->rebuild_request(request.id)->state == RebuildState::kFailed; }));
  EXPECT_EQ(store_->rebuild_request(request.id)->message, "reset failed: cannot clear the sink");
  EXPECT_EQ(store_->checkpoint("unresettable"), first.position);
  const auto later = append_many(2, 3);
  ASSERT_TRUE(runner.wait_for("unresettable", later.position, kTimeout));
  EXPECT_EQ(ids(projection->sink().events()), ids(log()));
}

TEST_F(RunnerTest, RebuildOfAnUnknownProjectionThrowsNotFoundError) {
  ProjectionRunner runner(*events_, *store_, options());
  EXPECT_THROW(static_cast<void>(runner.rebuild("nobody")), NotFoundError);
}

// ---- Read-your-writes, status, lifecycle -------------------------------------------------

TEST_F(RunnerTest, WaitForReturnsTrueWhenReachedAndFalseOnTimeout) {
  const auto last = append_many(3);
  auto projection = std::make_shared<Recorder>("waited");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection);
  runner.start();
  EXPECT_TRUE(runner.wait_for("waited", last.position, kTimeout));
  EXPECT_TRUE(runner.wait_for("waited", Position::start(), milliseconds(0)));

  const Position never(last.position.commit() + 1000, last.position.sequence() + 1000);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(runner.wait_for("waited", never, milliseconds(50)));
  EXPECT_GE(std::chrono::steady_clock::now() - started, milliseconds(50));

  EXPECT_THROW(runner.wait_for("nobody", last.position, milliseconds(1)), NotFoundError);
}

TEST_F(RunnerTest, WaitForReturnsFalseAtOnceOnceTheRunnerStopped) {
  const auto last = append_many(2);
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(std::make_shared<Recorder>("stopped"));
  runner.start();
  ASSERT_TRUE(runner.wait_for("stopped", last.position, kTimeout));
  runner.stop();
  const Position later(last.position.commit() + 1, 0);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(runner.wait_for("stopped", later, kTimeout));
  EXPECT_LT(std::chrono::steady_clock::now() - started, milliseconds(5'000));
  EXPECT_TRUE(runner.wait_for("stopped", last.position, kTimeout)) << "reached stays reached";
}

TEST_F(RunnerTest, WaitForWakesAWaiterBlockedBeforeTheEventWasAppended) {
  auto projection = std::make_shared<Recorder>("blocked");
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(projection);
  runner.start();
  const auto first = append_many(1);
  ASSERT_TRUE(runner.wait_for("blocked", first.position, kTimeout));
  // The next append's position is not known in advance, but it is after (commit + 1, 0).
  const Position next(first.position.commit() + 1, 0);
  std::atomic<bool> reached{false};
  std::thread waiter([&] { reached = runner.wait_for("blocked", next, kTimeout); });
  append_many(1, 1);
  waiter.join();
  EXPECT_TRUE(reached.load());
}

TEST_F(RunnerTest, StatusReportsPositionLagCountersAndLease) {
  const auto last = append_many(6);
  auto projection = std::make_shared<Recorder>("observed");
  ProjectionRunner runner(*events_, *store_, options("runner-s"));
  runner.add(projection);
  ASSERT_EQ(runner.status().size(), 1u);
  EXPECT_EQ(runner.status()[0].state, ProjectionState::kStarting);
  runner.start();
  ASSERT_TRUE(runner.wait_for("observed", last.position, kTimeout));
  ASSERT_TRUE(eventually([&] { return runner.status("observed").position == last.position; }));

  const auto status = runner.status("observed");
  EXPECT_EQ(status.name, "observed");
  EXPECT_EQ(status.state, ProjectionState::kLive);
  EXPECT_EQ(status.position, last.position);
  EXPECT_EQ(status.head, last.position);
  EXPECT_EQ(status.lag_events, 0);
  EXPECT_EQ(status.lag_seconds, 0.0);
  EXPECT_GE(status.events_per_second, 0.0);
  EXPECT_EQ(status.events_applied, 6u);
  EXPECT_EQ(status.errors, 0u);
  EXPECT_EQ(status.dead_letters, 0u);
  EXPECT_FALSE(status.last_error.has_value());
  ASSERT_TRUE(status.lease.has_value());
  EXPECT_EQ(status.lease->owner, "runner-s");
  EXPECT_EQ(status.lease->projection, "observed");
  EXPECT_THROW(static_cast<void>(runner.status("nobody")), NotFoundError);

  // The store shows the same, as reported by the owner.
  ASSERT_TRUE(eventually([&] { return record("observed").events_applied == 6; }));
  const auto r = record("observed");
  EXPECT_EQ(r.state, "live");
  EXPECT_EQ(r.owner, "runner-s");
  EXPECT_TRUE(r.owned);
}

TEST_F(RunnerTest, StopIsPromptWhileLiveAndReleasesTheLease) {
  auto opts = options();
  opts.poll_interval = milliseconds(60'000);
  opts.lease_ttl = milliseconds(60'000);
  opts.request_interval = milliseconds(60'000);
  const auto last = append_many(2);
  ProjectionRunner runner(*events_, *store_, opts);
  runner.add(std::make_shared<Recorder>("prompt"));
  runner.start();
  ASSERT_TRUE(runner.wait_for("prompt", last.position, kTimeout));
  ASSERT_TRUE(eventually([&] { return runner.status("prompt").state == ProjectionState::kLive; }));
  const auto started = std::chrono::steady_clock::now();
  runner.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, milliseconds(5'000));
  EXPECT_EQ(runner.status("prompt").state, ProjectionState::kStopped);
  EXPECT_FALSE(runner.status("prompt").lease.has_value());
  const auto r = record("prompt");
  EXPECT_EQ(r.state, "stopped");
  EXPECT_FALSE(r.owned);
  EXPECT_EQ(r.checkpoint, last.position);
  runner.stop();  // idempotent
}

TEST_F(RunnerTest, RunUntilSignalStopsOnSigterm) {
  const auto last = append_many(2);
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(std::make_shared<Recorder>("signalled"));
  std::thread serving([&] { runner.run_until_signal(); });
  // Once a projection thread runs, the serving thread has blocked the signals.
  ASSERT_TRUE(runner.wait_for("signalled", last.position, kTimeout));
  ASSERT_EQ(pthread_kill(serving.native_handle(), SIGTERM), 0);
  serving.join();
  EXPECT_EQ(runner.status("signalled").state, ProjectionState::kStopped);
  EXPECT_FALSE(record("signalled").owned);
}

TEST_F(RunnerTest, AddRejectsBadProjectionsAndOptions) {
  ProjectionRunner runner(*events_, *store_, options());
  runner.add(std::make_shared<Recorder>("first"));
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const InvalidArgumentError& e) {
      return std::string(e.what());
    }
    return std::string("no InvalidArgumentError");
  };
  EXPECT_THAT(message([&] { runner.add(nullptr); }), ::testing::HasSubstr("null projection"));
  EXPECT_THAT(message([&] { runner.add(std::make_shared<Recorder>("first")); }),
              ::testing::HasSubstr("'first' was already added"));
  EXPECT_THAT(message([&] { runner.add(std::make_shared<Recorder>("bad name")); }),
              ::testing::HasSubstr("invalid projection name 'bad name'"));
  ProjectionOptions zero;
  zero.batch_size = 0;
  EXPECT_THAT(message([&] { runner.add(std::make_shared<Recorder>("second"), zero); }),
              ::testing::HasSubstr("batch_size"));
  ProjectionOptions attempts;
  attempts.max_attempts = 0;
  EXPECT_THAT(message([&] { runner.add(std::make_shared<Recorder>("second"), attempts); }),
              ::testing::HasSubstr("max_attempts"));
  runner.start();
  EXPECT_THAT(message([&] { runner.add(std::make_shared<Recorder>("late")); }),
              ::testing::HasSubstr("already started"));
  runner.start();  // idempotent
}

TEST_F(RunnerTest, RejectsNonPositiveIntervals) {
  auto opts = options();
  opts.lease_ttl = milliseconds(0);
  try {
    ProjectionRunner runner(*events_, *store_, opts);
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgumentError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("lease_ttl"));
  }
}

TEST_F(RunnerTest, DefaultOwnerNamesHostProcessAndARandomSuffix) {
  ProjectionRunner first(*events_, *store_);
  ProjectionRunner second(*events_, *store_);
  const std::regex shape("[^:]+:" + std::to_string(getpid()) + ":[0-9a-f]{4}");
  EXPECT_TRUE(std::regex_match(first.owner(), shape)) << first.owner();
  EXPECT_TRUE(std::regex_match(second.owner(), shape)) << second.owner();
}

TEST(ProjectionStateTest, NamesAreStable) {
  EXPECT_STREQ(to_string(ProjectionState::kStarting), "starting");
  EXPECT_STREQ(to_string(ProjectionState::kStandby), "standby");
  EXPECT_STREQ(to_string(ProjectionState::kCatchingUp), "catching-up");
  EXPECT_STREQ(to_string(ProjectionState::kLive), "live");
  EXPECT_STREQ(to_string(ProjectionState::kRebuilding), "rebuilding");
  EXPECT_STREQ(to_string(ProjectionState::kStopped), "stopped");
  EXPECT_STREQ(to_string(ProjectionState::kFailed), "failed");
}

}  // namespace
}  // namespace annals::projections
