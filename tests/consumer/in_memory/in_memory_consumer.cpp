// A downstream program that uses only the in-memory parts of an installed annals (components
// eventstore, framework, projections, testkit): a decider tested with given/when/then, the
// command bus on the in-memory store, and a projection runner on the in-memory projection store.
// Built and run by tests/consumer/run_consumer.cmake with libpqxx and libpq hidden.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <annals/eventstore/error.hpp>
#include <annals/eventstore/in_memory_event_store.hpp>
#include <annals/framework/command_bus.hpp>
#include <annals/framework/event_registry.hpp>
#include <annals/projections/in_memory_projection_store.hpp>
#include <annals/projections/projection.hpp>
#include <annals/projections/runner.hpp>
#include <annals/testkit/decider_spec.hpp>

namespace counter {

struct Incremented {
  static constexpr std::string_view kTypeName = "Incremented";
  static constexpr int kSchemaVersion = 1;
  std::int64_t by = 0;
  friend bool operator==(const Incremented&, const Incremented&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Incremented, by)

struct Increment {
  std::string id;
  std::int64_t by = 0;
};

class TooMuch : public annals::DomainError {
 public:
  TooMuch() : annals::DomainError("a counter stops at 10") {}
};

struct Counter {
  static constexpr std::string_view kCategory = "counter";
  struct State {
    std::int64_t value = 0;
  };
  using Event = std::variant<Incremented>;
  static State evolve(State state, const Incremented& e) {
    state.value += e.by;
    return state;
  }
  static Incremented decide(const State& state, const Increment& c) {
    if (state.value + c.by > 10) throw TooMuch();
    return Incremented{c.by};
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Counter::State, value)

// Sums every increment, in memory.
class Total final : public annals::projections::InProcessProjection {
 public:
  std::string name() const override { return "total"; }
  void handle(const annals::RecordedEvent& event) override {
    sum += event.data.at("by").get<std::int64_t>();
  }
  std::atomic<std::int64_t> sum{0};
};

}  // namespace counter

namespace {

TEST(InMemoryConsumerTest, GivenWhenThen) {
  annals::testkit::given<counter::Counter>(counter::Incremented{4})
      .when(counter::Increment{"c1", 3})
      .then(counter::Incremented{3});
  annals::testkit::given<counter::Counter>(counter::Incremented{9})
      .when(counter::Increment{"c1", 3})
      .then_throws<counter::TooMuch>();
}

TEST(InMemoryConsumerTest, CommandsReachAProjection) {
  auto events = annals::make_in_memory_event_store();
  auto projection_store = annals::projections::make_in_memory_projection_store();
  annals::EventRegistry registry;
  registry.register_events<counter::Counter>();
  annals::CommandBus bus(*events, registry);
  bus.handle<counter::Counter>(&counter::Increment::id);

  annals::projections::ProjectionRunner runner(*events, *projection_store);
  auto total = std::make_shared<counter::Total>();
  runner.add(total);
  runner.start();
  (void)bus.send(counter::Increment{"a", 4});
  const auto last = bus.send(counter::Increment{"b", 5});
  EXPECT_THROW((void)bus.send(counter::Increment{"a", 7}), counter::TooMuch);
  ASSERT_TRUE(runner.wait_for("total", last.position, std::chrono::seconds(30)));
  EXPECT_EQ(total->sum.load(), 9);
  runner.stop();
}

}  // namespace
