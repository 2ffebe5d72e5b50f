// The runner's failure isolation on its own (projections/src/batch_applier.hpp), on the
// in-memory stores: which events a failing page commits, retries, parks or blames, and what a
// commit applies, without a runner thread in the way.
#include "batch_applier.hpp"

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/testkit/printers.hpp"
#include "runner_support.hpp"

namespace annals::projections::detail {
namespace {

using std::chrono::milliseconds;
using test::DecoratedStore;
using test::Recorder;

/// A projection whose effects live in the store's batch (not in process), with a script of
/// failures: the events it was asked to apply are recorded in order, failed attempts included.
class ScriptedProjection final : public Projection {
 public:
  std::string name() const override { return "scripted"; }
  void apply(const RecordedEvent& event, UnitOfWork&) override {
    attempts.push_back(event.data.value("n", -1));
    if (apply_hook) apply_hook(event);
  }
  void reset(UnitOfWork&) override {}

  std::function<void(const RecordedEvent&)> apply_hook;
  std::vector<int> attempts;  // the "n" of every event given to apply()
};

class BatchApplierTest : public ::testing::Test {
 protected:
  static RunnerOptions runner_options() {
    RunnerOptions out;
    out.owner = "applier-test";
    return out;
  }

  /// Fast retries: 3 attempts, 1-2 ms apart.
  static ProjectionOptions projection_options(OnFailure on_failure) {
    ProjectionOptions out;
    out.max_attempts = 3;
    out.initial_backoff = milliseconds(1);
    out.max_backoff = milliseconds(2);
    out.on_failure = on_failure;
    return out;
  }

  /// Appends `count` events {"n": i}, event `poison` with "poison": true; returns the log.
  std::vector<RecordedEvent> page(int count, int poison = -1) {
    for (int i = 0; i < count; ++i) {
      NewEvent event;
      event.type = "Deposited";
      event.data = {{"n", i}};
      if (i == poison) event.data["poison"] = true;
      static_cast<void>(events_->append(StreamId("account-1"), ExpectedVersion::any(), {event}));
    }
    return events_->read_all({});
  }

  /// The parts of a worker around a BatchApplier of `projection`, holding the lease.
  struct Parts {
    Parts(ProjectionStore& store, Projection& projection, OnFailure on_failure)
        : options(projection_options(on_failure)),
          status(projection.name(), nullptr),
          lease(store, projection.name(), runner, status),
          reporter(store, projection.name(), lease, status),
          checkpoint(store, projection.name(), lease, status, reporter),
          backoff(options.initial_backoff, options.max_backoff),
          applier(store, projection, projection.name(), options, status, lease, checkpoint,
                  reporter, backoff) {
      store.prepare(projection);
      EXPECT_TRUE(lease.try_acquire());
      checkpoint.reload();
    }

    const RunnerOptions runner = runner_options();
    const ProjectionOptions options;
    WorkerStatus status;
    LeaseKeeper lease;
    StatusReporter reporter;
    CheckpointKeeper checkpoint;
    Backoff backoff;
    BatchApplier applier;
  };

  std::unique_ptr<EventStore> events_ = make_in_memory_event_store();
  std::unique_ptr<ProjectionStore> inner_ = make_in_memory_projection_store();
};

TEST_F(BatchApplierTest, InProcessFailureKeepsTheEventsBeforeItWithoutApplyingThemTwice) {
  const auto log = page(5, 2);
  Recorder projection("in-process");
  DecoratedStore store(*inner_, projection.applies);
  Parts parts(store, projection, OnFailure::kDeadLetter);

  EXPECT_TRUE(parts.applier.apply_page(log, log.back().position));

  // 0, 1 and the failed first attempt at 2 took effect in one batch, which was rolled back:
  // [0, 2) is committed without applying it again, 2 is parked alone, then 3 and 4.
  EXPECT_EQ(store.applies_per_commit(), (std::vector<int>{0, 0, 2}));
  EXPECT_EQ(projection.applies.load(), 3 + 2 + 2);
  ASSERT_EQ(projection.sink().events().size(), 4u);
  EXPECT_EQ(store.checkpoint("in-process"), log.back().position);
  const auto letters = store.list_dead_letters({});
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].event.position, log[2].position);
  EXPECT_EQ(letters[0].attempts, 3);
  const auto status = parts.status.snapshot();
  EXPECT_EQ(status.errors, 3u);
  EXPECT_EQ(status.dead_letters, 1u);
  EXPECT_EQ(status.events_applied, 4u);
}

TEST_F(BatchApplierTest, OnFailureStopThrowsProjectionFailedAfterCommittingTheEventsBeforeIt) {
  const auto log = page(5, 3);
  Recorder projection("stopper");
  DecoratedStore store(*inner_, projection.applies);
  Parts parts(store, projection, OnFailure::kStop);

  try {
    static_cast<void>(parts.applier.apply_page(log, log.back().position));
    ADD_FAILURE() << "apply_page() returned";
  } catch (const ProjectionFailed& failed) {
    EXPECT_THAT(failed.error, ::testing::HasSubstr("failed 3 times: cannot apply poison event"));
    EXPECT_THAT(failed.error, ::testing::HasSubstr(log[3].position.to_string()));
  }
  EXPECT_EQ(store.checkpoint("stopper"), log[2].position);
  EXPECT_EQ(projection.sink().events().size(), 3u);
  EXPECT_TRUE(store.list_dead_letters({}).empty());
  EXPECT_EQ(parts.status.snapshot().errors, 3u);
}

TEST_F(BatchApplierTest, UndecodableEventIsParkedWithOneAttemptWhateverThePolicy) {
  auto log = page(3);
  log[1].decode_failure = DecodeFailure{.reason = "invalid stream id"};
  Recorder projection("undecodable");
  DecoratedStore store(*inner_, projection.applies);
  Parts parts(store, projection, OnFailure::kStop);

  EXPECT_TRUE(parts.applier.apply_page(log, log.back().position));

  EXPECT_EQ(store.applies_per_commit(), (std::vector<int>{2}));
  const auto letters = store.list_dead_letters({});
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].event.position, log[1].position);
  EXPECT_EQ(letters[0].attempts, 1);
  EXPECT_EQ(letters[0].error, "undecodable event: invalid stream id");
  const auto status = parts.status.snapshot();
  EXPECT_EQ(status.errors, 0u);
  EXPECT_EQ(status.dead_letters, 1u);
  EXPECT_EQ(status.last_error, "parked undecodable events (1)");
  EXPECT_EQ(store.checkpoint("undecodable"), log.back().position);
}

TEST_F(BatchApplierTest, DeferredWriteFailureIsBlamedOnItsEventByApplyingAgainUnpipelined) {
  const auto log = page(5);
  ScriptedProjection projection;
  // Event 2 queues a write that fails when sent: pipelined, the failure surfaces at the
  // apply of 3 and names nobody; unpipelined, 2 fails on its own.
  bool unpipelined = false;
  projection.apply_hook = [&](const RecordedEvent& event) {
    const int n = event.data.value("n", -1);
    if (n == 3 && !unpipelined) {
      unpipelined = true;
      throw DeferredWriteError(
          "queued write failed",
          std::make_exception_ptr(InvalidArgumentError("violates a constraint of the read model")));
    }
    if (n == 2 && unpipelined) throw std::runtime_error("write of 2 refused");
  };
  Parts parts(*inner_, projection, OnFailure::kDeadLetter);

  EXPECT_TRUE(parts.applier.apply_page(log, log.back().position));

  // Pipelined 0..3; unpipelined 0..2; [0, 2) again on its own; 2 twice more; then 3 and 4.
  EXPECT_EQ(projection.attempts, (std::vector<int>{0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 2, 3, 4}));
  const auto letters = inner_->list_dead_letters({});
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].event.position, log[2].position);
  EXPECT_EQ(letters[0].error, "write of 2 refused");
  EXPECT_EQ(inner_->checkpoint("scripted"), log.back().position);
}

TEST_F(BatchApplierTest, DeferredWriteFailureOfAnUnpipelinedBatchIsNotAnEventsAndPropagates) {
  const auto log = page(3);
  ScriptedProjection projection;
  projection.apply_hook = [](const RecordedEvent& event) {
    if (event.data.value("n", -1) == 1) {
      throw DeferredWriteError(
          "queued write failed",
          std::make_exception_ptr(InvalidArgumentError("violates a constraint of the read model")));
    }
  };
  Parts parts(*inner_, projection, OnFailure::kDeadLetter);

  EXPECT_THROW(static_cast<void>(parts.applier.apply_page(log, log.back().position)),
               DeferredWriteError);
  EXPECT_EQ(projection.attempts, (std::vector<int>{0, 1, 0, 1}));
  EXPECT_EQ(inner_->checkpoint("scripted"), Position::start());
  EXPECT_TRUE(inner_->list_dead_letters({}).empty());
}

TEST_F(BatchApplierTest, StopRequestEndsThePageBeforeTheNextBatch) {
  const auto log = page(3);
  Recorder projection("stopping");
  DecoratedStore store(*inner_, projection.applies);
  Parts parts(store, projection, OnFailure::kStop);
  parts.status.request_stop();

  EXPECT_FALSE(parts.applier.apply_page(log, log.back().position));
  EXPECT_EQ(projection.applies.load(), 0);
  EXPECT_EQ(store.checkpoint("stopping"), Position::start());
}

}  // namespace
}  // namespace annals::projections::detail
