// A ProjectionRunner rides out an unavailable event store: on the in-memory stores, with an
// event store whose reads fail with UnavailableError until released. No server needed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "annals/testkit/printers.hpp"
#include "log_capture.hpp"
#include "runner_support.hpp"

namespace annals::projections {
namespace {

using annals::testing::LogCapture;
using std::chrono::milliseconds;
using test::eventually;
using test::Recorder;

constexpr milliseconds kTimeout{20'000};

/// Forwards to another event store; its reads (read_all, head_position) throw
/// UnavailableError while `down` is set, and count how often they did.
class FlakyEventStore final : public EventStore {
 public:
  explicit FlakyEventStore(EventStore& inner) : inner_(inner) {}

  std::atomic<bool> down{false};
  std::atomic<int> failed_reads{0};

  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    check();
    return inner_.read_all(options);
  }
  Position head_position() override {
    check();
    return inner_.head_position();
  }
  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    return inner_.read_stream(stream, options);
  }
  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    return inner_.stream_version(stream);
  }
  void set_stream_metadata(const StreamId& stream, const StreamMetadata& metadata) override {
    inner_.set_stream_metadata(stream, metadata);
  }
  AppendResult append(const StreamId& stream, const ExpectedVersion& expected,
                      std::vector<NewEvent> events) override {
    return inner_.append(stream, expected, std::move(events));
  }
  std::vector<AppendResult> append_multi(std::vector<StreamAppend> appends) override {
    return inner_.append_multi(std::move(appends));
  }
  std::unique_ptr<ChangeSignal> watch() override { return inner_.watch(); }
  std::unique_ptr<Subscription> subscribe(SubscriptionOptions options,
                                          EventHandler handler) override {
    return inner_.subscribe(std::move(options), std::move(handler));
  }

 private:
  void check() {
    if (!down.load()) return;
    ++failed_reads;
    throw UnavailableError("injected: event store unreachable");
  }

  EventStore& inner_;
};

class RunnerReconnectTest : public ::testing::Test {
 protected:
  static RunnerOptions options() {
    RunnerOptions out;
    out.owner = "runner-a";
    out.acquire_interval = milliseconds(10);
    out.poll_interval = milliseconds(50);
    out.request_interval = milliseconds(20);
    return out;
  }
  static ProjectionOptions fast_backoff() {
    ProjectionOptions out;
    out.batch_size = 4;
    out.initial_backoff = milliseconds(1);
    out.max_backoff = milliseconds(8);
    return out;
  }

  Position append_many(int count, int first = 0) {
    Position last;
    for (int i = first; i < first + count; ++i) {
      last = inner_
                 ->append(StreamId("account-" + std::to_string(i % 3)), ExpectedVersion::any(),
                          {NewEvent{.type = "Deposited", .data = {{"n", i}}}})
                 .position;
    }
    return last;
  }

  std::vector<EventId> log_ids() {
    std::vector<EventId> out;
    for (const auto& e : inner_->read_all({.max_count = 100'000})) out.push_back(e.id);
    return out;
  }
  static std::vector<EventId> ids(const std::vector<RecordedEvent>& events) {
    std::vector<EventId> out;
    for (const auto& e : events) out.push_back(e.id);
    return out;
  }
  std::string stored_state(const std::string& name) {
    for (const auto& r : store_->list()) {
      if (r.name == name) return r.state;
    }
    return "";
  }

  std::unique_ptr<EventStore> inner_ = make_in_memory_event_store();
  FlakyEventStore events_{*inner_};
  std::unique_ptr<ProjectionStore> store_ = make_in_memory_projection_store();
};

TEST_F(RunnerReconnectTest, ReportsReconnectingAndResumesFromTheCheckpointExactlyOnce) {
  LogCapture log;
  const auto first = append_many(10);
  auto projection = std::make_shared<Recorder>("balances");
  ProjectionRunner runner(events_, *store_, options());
  runner.add(projection, fast_backoff());
  runner.start();
  ASSERT_TRUE(runner.wait_for("balances", first, kTimeout));

  events_.down = true;
  const auto last = append_many(9, 10);  // appended while the runner cannot read them
  ASSERT_TRUE(eventually([&] { return events_.failed_reads.load() >= 3; }));
  ASSERT_TRUE(eventually(
      [&] { return runner.status("balances").state == ProjectionState::kReconnecting; }));
  EXPECT_EQ(stored_state("balances"), "reconnecting") << "reported to the projection store";
  // It stays reconnecting across retries (it does not flap to catching-up between them).
  const int seen = events_.failed_reads.load();
  bool flapped = false;
  ASSERT_TRUE(eventually([&] {
    flapped |= runner.status("balances").state != ProjectionState::kReconnecting;
    return events_.failed_reads.load() >= seen + 10;
  }));
  EXPECT_FALSE(flapped);
  EXPECT_EQ(runner.status("balances").position, first) << "nothing is skipped";

  events_.down = false;
  ASSERT_TRUE(runner.wait_for("balances", last, kTimeout));
  ASSERT_TRUE(
      eventually([&] { return runner.status("balances").state == ProjectionState::kLive; }));
  EXPECT_EQ(ids(projection->sink().events()), log_ids()) << "every event once, in order";
  EXPECT_EQ(runner.status("balances").errors, 0u) << "an outage is not an event error";
  runner.stop();

  EXPECT_EQ(log.count("warning", "store unavailable"), 1) << log.text();
  EXPECT_EQ(log.count("info", "stores available again after"), 1) << log.text();
  EXPECT_EQ(log.count("error", ""), 0) << log.text();
}

TEST_F(RunnerReconnectTest, ReconnectingHasAStableName) {
  EXPECT_STREQ(to_string(ProjectionState::kReconnecting), "reconnecting");
}

}  // namespace
}  // namespace annals::projections
