// Unit tests of the subscription engine (annals/eventstore/detail/catch_up_subscription.hpp)
// over a scripted reader and change signal.
#include "annals/eventstore/detail/catch_up_subscription.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "annals/eventstore/error.hpp"
#include "annals/testkit/event_collector.hpp"
#include "annals/testkit/printers.hpp"

namespace annals::detail {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kTimeout = 30s;  // bound for asynchronous delivery
constexpr std::chrono::milliseconds kNeverPoll = std::chrono::hours(1);

// A global log in memory whose reads are recorded and can be made to fail.
class FakeLog final : public EventReader {
 public:
  /// Appends `count` events of `type`, each in its own commit group; returns the last position.
  Position add(int count, const std::string& type = "Happened") {
    std::lock_guard lock(mutex_);
    for (int i = 0; i < count; ++i) {
      const auto n = static_cast<std::int64_t>(events_.size()) + 1;
      events_.push_back(RecordedEvent{.stream_id = StreamId("test-" + std::to_string(n % 3)),
                                      .version = n,
                                      .position = Position(static_cast<std::uint64_t>(n) * 10, n),
                                      .id = EventId::generate(),
                                      .type = type,
                                      .schema_version = 1,
                                      .data = {{"n", n}},
                                      .metadata = nlohmann::json::object(),
                                      .recorded_at = std::chrono::system_clock::now()});
    }
    return events_.back().position;
  }

  std::vector<RecordedEvent> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

  /// The options of every read_all so far.
  std::vector<ReadAllOptions> reads() const {
    std::lock_guard lock(mutex_);
    return reads_;
  }

  /// Makes the next `count` reads return nothing, as a store does while an earlier transaction
  /// holds committed events back (ARCHITECTURE decision 5).
  void hold_back_next_reads(int count) {
    std::lock_guard lock(mutex_);
    held_back_reads_ = count;
  }

  /// Makes the next reads throw `error`.
  void fail_with(std::exception_ptr error) {
    std::lock_guard lock(mutex_);
    failure_ = std::move(error);
  }

  std::vector<RecordedEvent> read_stream(const StreamId&, const ReadStreamOptions&) override {
    return {};
  }

  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    std::lock_guard lock(mutex_);
    reads_.push_back(options);
    if (failure_) std::rethrow_exception(failure_);
    if (held_back_reads_ > 0) {
      --held_back_reads_;
      return {};
    }
    std::vector<RecordedEvent> out;
    for (const auto& event : events_) {
      if (out.size() == options.max_count) break;
      if (options.after < event.position && options.filter.matches(event)) out.push_back(event);
    }
    return out;
  }

  std::optional<StreamVersion> stream_version(const StreamId&) override { return std::nullopt; }
  Position head_position() override {
    std::lock_guard lock(mutex_);
    return events_.empty() ? Position::start() : events_.back().position;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<RecordedEvent> events_;
  std::vector<ReadAllOptions> reads_;
  std::exception_ptr failure_;
  int held_back_reads_ = 0;
};

// A change signal driven by the test; it also reports when the subscription starts waiting.
struct SignalState {
  std::mutex mutex;
  std::condition_variable changed;
  std::uint64_t generation = 0;
  bool interrupted = false;
  int waits_started = 0;

  void notify() {
    {
      std::lock_guard lock(mutex);
      ++generation;
    }
    changed.notify_all();
  }

  /// Blocks until the subscription has entered wait() at least `count` times.
  bool await_waits(int count) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, kTimeout, [&] { return waits_started >= count; });
  }
};

class FakeSignal final : public ChangeSignal {
 public:
  explicit FakeSignal(std::shared_ptr<SignalState> state) : state_(std::move(state)) {}

  std::uint64_t observe() override {
    std::lock_guard lock(state_->mutex);
    return state_->generation;
  }

  bool wait(std::uint64_t token, std::chrono::milliseconds timeout) override {
    std::unique_lock lock(state_->mutex);
    ++state_->waits_started;
    state_->changed.notify_all();
    state_->changed.wait_for(lock, timeout,
                             [&] { return state_->generation != token || state_->interrupted; });
    state_->interrupted = false;
    return state_->generation != token;
  }

  void interrupt() override {
    {
      std::lock_guard lock(state_->mutex);
      state_->interrupted = true;
    }
    state_->changed.notify_all();
  }

 private:
  std::shared_ptr<SignalState> state_;
};

class CatchUpSubscriptionTest : public ::testing::Test {
 protected:
  std::unique_ptr<Subscription> subscribe(EventHandler handler, std::size_t batch_size = 500,
                                          Position after = Position::start(),
                                          EventFilter filter = {}) {
    SubscriptionOptions options;
    options.after = after;
    options.filter = std::move(filter);
    options.batch_size = batch_size;
    options.poll_interval = kNeverPoll;  // only the signal may wake the subscription
    return make_catch_up_subscription(log_, std::make_unique<FakeSignal>(signal_),
                                      std::move(options), std::move(handler));
  }

  FakeLog log_;
  std::shared_ptr<SignalState> signal_ = std::make_shared<SignalState>();
};

TEST_F(CatchUpSubscriptionTest, DeliversTheBacklogInBatchesInOrder) {
  const auto last = log_.add(25);
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler(), 10);
  ASSERT_TRUE(subscription->wait_for(last, kTimeout));
  ASSERT_TRUE(signal_->await_waits(1));
  subscription->stop();

  EXPECT_EQ(collector.events(), log_.events());
  const auto reads = log_.reads();
  ASSERT_EQ(reads.size(), 3u);  // 10 + 10 + 5: the short read ends the catch-up
  const auto events = log_.events();
  EXPECT_EQ(reads[0].after, Position::start());
  EXPECT_EQ(reads[1].after, events[9].position);
  EXPECT_EQ(reads[2].after, events[19].position);
  for (const auto& read : reads) EXPECT_EQ(read.max_count, 10u);
  EXPECT_TRUE(subscription->is_live());
}

TEST_F(CatchUpSubscriptionTest, StartsAfterTheGivenPosition) {
  log_.add(10);
  const auto events = log_.events();
  testkit::EventCollector collector;
  std::promise<void> gate;  // holds the first delivery until the start position is checked
  auto opened = gate.get_future().share();
  auto subscription = subscribe(
      [&, deliver = collector.handler()](const RecordedEvent& e) {
        opened.wait();
        deliver(e);
      },
      500, events[6].position);
  EXPECT_EQ(subscription->position(), events[6].position);
  gate.set_value();
  ASSERT_TRUE(subscription->wait_for(events.back().position, kTimeout));
  subscription->stop();
  EXPECT_EQ(collector.events(), std::vector<RecordedEvent>(events.begin() + 7, events.end()));
}

TEST_F(CatchUpSubscriptionTest, PassesTheFilterToTheReaderAndAdvancesToTheLastDelivered) {
  log_.add(3, "Wanted");
  log_.add(2, "Other");
  EventFilter filter{.category = std::nullopt, .event_types = {"Wanted"}};
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler(), 500, Position::start(), filter);
  ASSERT_TRUE(signal_->await_waits(1));
  subscription->stop();
  EXPECT_EQ(collector.events().size(), 3u);
  EXPECT_EQ(log_.reads().at(0).filter.event_types, filter.event_types);
  EXPECT_EQ(subscription->position(), log_.events()[2].position);
}

TEST_F(CatchUpSubscriptionTest, WakesOnTheSignalWithoutWaitingForThePollInterval) {
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler());
  ASSERT_TRUE(signal_->await_waits(1));  // caught up with the empty log, now waiting
  EXPECT_TRUE(subscription->is_live());
  const auto last = log_.add(4);
  signal_->notify();
  ASSERT_TRUE(subscription->wait_for(last, kTimeout));
  EXPECT_EQ(collector.events(), log_.events());
}

// A signalled change that reads do not show yet (held back until earlier transactions settle)
// is read again soon, with back-off, not at the next poll: the transaction that held it back
// may end without any signal of its own.
TEST_F(CatchUpSubscriptionTest, RereadsSoonWhenASignalledChangeIsHeldBack) {
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler());
  ASSERT_TRUE(signal_->await_waits(1));
  const auto last = log_.add(2);
  log_.hold_back_next_reads(3);
  signal_->notify();  // the only signal; the poll interval is an hour
  ASSERT_TRUE(subscription->wait_for(last, kTimeout));
  EXPECT_EQ(collector.events(), log_.events());
  EXPECT_GE(log_.reads().size(), 5u);  // initial read, three held back, the one that delivered
}

TEST_F(CatchUpSubscriptionTest, StopInterruptsAPendingWait) {
  testkit::EventCollector collector;
  auto subscription = subscribe(collector.handler());
  ASSERT_TRUE(signal_->await_waits(1));
  subscription->stop();  // would block for the hour-long poll interval without interrupt()
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(subscription->stop_reason(), nullptr);
}

TEST_F(CatchUpSubscriptionTest, StopIsIdempotentAndSafeFromSeveralThreads) {
  auto subscription = subscribe([](const RecordedEvent&) {});
  {
    std::vector<std::jthread> stoppers;
    for (int i = 0; i < 4; ++i) stoppers.emplace_back([&] { subscription->stop(); });
  }
  subscription->stop();
  EXPECT_FALSE(subscription->is_running());
}

TEST_F(CatchUpSubscriptionTest, StopFromTheHandlerDoesNotDeadlock) {
  const auto last = log_.add(5);
  std::promise<Subscription*> self;
  auto self_future = self.get_future().share();
  int calls = 0;  // only touched on the subscription's thread, read after it stopped
  auto subscription = subscribe([&](const RecordedEvent&) {
    ++calls;
    self_future.get()->stop();
  });
  self.set_value(subscription.get());
  EXPECT_FALSE(subscription->wait_for(last, kTimeout));  // returns because it stopped
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(subscription->stop_reason(), nullptr);
  subscription->stop();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(subscription->position(), log_.events()[0].position);
}

TEST_F(CatchUpSubscriptionTest, HandlerExceptionStopsAndBecomesTheStopReason) {
  const auto last = log_.add(5);
  int calls = 0;
  auto subscription = subscribe([&](const RecordedEvent&) {
    if (++calls == 2) throw DomainError("cannot project this");
  });
  EXPECT_FALSE(subscription->wait_for(last, kTimeout));
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(subscription->position(), log_.events()[0].position);
  try {
    std::rethrow_exception(subscription->stop_reason());
  } catch (const DomainError& e) {
    EXPECT_STREQ(e.what(), "cannot project this");
  }
}

TEST_F(CatchUpSubscriptionTest, ReaderExceptionStopsAndIsLoggedToTheAnnalsLogger) {
  std::ostringstream output;
  auto logger = std::make_shared<spdlog::logger>(
      "annals", std::make_shared<spdlog::sinks::ostream_sink_mt>(output));
  spdlog::register_logger(logger);

  // An error no retry fixes (an UnavailableError is retried: subscription_reconnect_test).
  log_.fail_with(std::make_exception_ptr(InternalError("bad row")));
  auto subscription = subscribe([](const RecordedEvent&) {});
  EXPECT_FALSE(subscription->wait_for(Position(1, 1), kTimeout));
  EXPECT_FALSE(subscription->is_running());
  EXPECT_EQ(subscription->state(), SubscriptionState::kStopped);
  try {
    std::rethrow_exception(subscription->stop_reason());
  } catch (const InternalError& e) {
    EXPECT_STREQ(e.what(), "bad row");
  }
  spdlog::drop("annals");
  logger->flush();
  EXPECT_THAT(output.str(), HasSubstr("subscription stopped after position 0: bad row"));
}

TEST_F(CatchUpSubscriptionTest, WaitForReturnsAtOnceForAReachedPosition) {
  auto subscription = subscribe([](const RecordedEvent&) {});
  EXPECT_TRUE(subscription->wait_for(Position::start(), 0ms));
}

TEST_F(CatchUpSubscriptionTest, WaitForTimesOutWhileThePositionIsNotReached) {
  auto subscription = subscribe([](const RecordedEvent&) {});
  EXPECT_FALSE(subscription->wait_for(Position(1, 1), 20ms));
  EXPECT_TRUE(subscription->is_running());
}

TEST_F(CatchUpSubscriptionTest, DestructorStopsAWaitingSubscription) {
  auto subscription = subscribe([](const RecordedEvent&) {});
  ASSERT_TRUE(signal_->await_waits(1));
  subscription.reset();  // joins; would hang for the poll interval without interrupt()
  SUCCEED();
}

TEST_F(CatchUpSubscriptionTest, RejectsInvalidArguments) {
  auto options = [](std::size_t batch_size, std::chrono::milliseconds poll) {
    SubscriptionOptions o;
    o.batch_size = batch_size;
    o.poll_interval = poll;
    return o;
  };
  auto handler = [](const RecordedEvent&) {};
  EXPECT_THROW((void)make_catch_up_subscription(log_, std::make_unique<FakeSignal>(signal_),
                                                options(0, 1s), handler),
               InvalidArgumentError);
  EXPECT_THROW((void)make_catch_up_subscription(log_, std::make_unique<FakeSignal>(signal_),
                                                options(10, 0ms), handler),
               InvalidArgumentError);
  EXPECT_THROW((void)make_catch_up_subscription(log_, std::make_unique<FakeSignal>(signal_),
                                                options(10, 1s), EventHandler{}),
               InvalidArgumentError);
  EXPECT_THROW((void)make_catch_up_subscription(log_, nullptr, options(10, 1s), handler),
               InvalidArgumentError);
}

}  // namespace
}  // namespace annals::detail
