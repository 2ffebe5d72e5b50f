// A downstream project's tests using the installed annals::testkit: given/when/then on a
// user's decider, and the EventStore and ProjectionStore contract suites run against the
// in-memory stores (as a third-party store would run them against itself).
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <annals/eventstore/error.hpp>
#include <annals/eventstore/in_memory_event_store.hpp>
#include <annals/projections/in_memory_projection_store.hpp>
#include <annals/testkit/decider_spec.hpp>
#include <annals/testkit/event_store_contract.hpp>
#include <annals/testkit/projection_store_contract.hpp>

namespace counter {

struct Incremented {
  static constexpr const char* kTypeName = "Incremented";
  static constexpr int kSchemaVersion = 1;
  int by = 0;
  friend bool operator==(const Incremented&, const Incremented&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Incremented, by)

struct Increment {
  std::string id;
  int by = 0;
};

class TooMuch : public annals::DomainError {
 public:
  TooMuch() : annals::DomainError("a counter stops at 10") {}
};

struct Counter {
  static constexpr const char* kCategory = "counter";
  struct State {
    int value = 0;
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

}  // namespace counter

namespace {

using annals::testkit::given;

TEST(ConsumerTest, GivenWhenThen) {
  given<counter::Counter>(counter::Incremented{4})
      .when(counter::Increment{"c1", 3})
      .then(counter::Incremented{3});
  given<counter::Counter>(counter::Incremented{9})
      .when(counter::Increment{"c1", 3})
      .then_throws<counter::TooMuch>();
}

struct InMemoryStoreFactory {
  static std::unique_ptr<annals::EventStore> make() { return annals::make_in_memory_event_store(); }
};

struct InMemoryProjectionStoreFactory {
  static std::unique_ptr<annals::projections::ProjectionStore> make() {
    return annals::projections::make_in_memory_projection_store();
  }
};

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, EventStoreContract, InMemoryStoreFactory);
INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, ProjectionStoreContract, InMemoryProjectionStoreFactory);
