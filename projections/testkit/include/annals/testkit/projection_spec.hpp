// Given/when/then for projections: given events (typed, or raw, e.g. stored under an old
// schema version or an old name, to exercise upcasters), when projected by a real
// ProjectionRunner, then the read model equals the expected state. A failure is reported at
// the caller's line.
//
//   annals::testkit::ProjectionSpec spec(registry);   // in-memory event and projection stores
//   Totals totals(registry);
//   spec.given("account-1", MoneyDeposited{.amount = 10})
//       .given("account-1", annals::NewEvent{.type = "Deposited", .schema_version = 1,
//                                            .data = {{"cents", 500}}})   // an old name
//       .when(totals)
//       .then_equals(std::map<std::string, std::int64_t>{{"account-1", 15}},
//                    [&] { return totals.totals; });
//
// The PostgreSQL variant, for ReadModelProjection, is ReadModelSpec
// (annals/testkit/read_model_spec.hpp, target annals::testkit_read_models).
//
// when() appends the given events in order (ExpectedVersion::any()), runs the projection with
// a runner until it has processed the last of them, and stops the runner. Options: one attempt
// per event and OnFailure::kStop by default, so that a failing event shows at once (then_fails).
//
// Thread safety: a spec is used from one thread; the projection is run on the runner's thread
// and the runner is stopped (joined) before when() returns, so then() reads it safely.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <source_location>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/projection_store.hpp"
#include "annals/projections/runner.hpp"

namespace annals::testkit {

/// How a spec runs its projection.
struct ProjectionSpecOptions {
  /// Passed to the runner: one attempt and kStop by default (a failure shows at once).
  projections::ProjectionOptions projection{.batch_size = 100,
                                            .max_attempts = 1,
                                            .initial_backoff = std::chrono::milliseconds(1),
                                            .max_backoff = std::chrono::milliseconds(1),
                                            .on_failure = projections::OnFailure::kStop};
  /// Longest wait for the projection to process the given events.
  std::chrono::milliseconds timeout{30'000};
};

/// The outcome of when(): whether the projection processed every given event, and its status.
struct ProjectionOutcome {
  bool reached = false;
  projections::ProjectionStatus status;
};

namespace projection_spec_detail {

/// The given events and the run shared by ProjectionSpec and ReadModelSpec.
class SpecCore {
 public:
  explicit SpecCore(const EventRegistry& registry) : registry_(registry) {}

  template <EventType E>
  void given(std::string_view stream, const E& event, nlohmann::json metadata) {
    given(stream, registry_.encode(event, std::move(metadata)));
  }
  void given(std::string_view stream, NewEvent event) {
    if (!event.id) event.id = EventId::generate();
    ids_.insert(event.id->to_string());
    givens_.emplace_back(std::string(stream), std::move(event));
  }

  /// Appends the given events to `events` and returns the position of the last one.
  Position append(EventStore& events) {
    Position last = Position::start();
    for (auto& [stream, event] : givens_) {
      const auto result = events.append(StreamId(stream), ExpectedVersion::any(), {event});
      last = result.position;
    }
    return last;
  }

  /// Runs `projection` until it processed `until`, then stops the runner.
  static ProjectionOutcome run(EventStore& events, projections::ProjectionStore& store,
                               std::shared_ptr<projections::Projection> projection, Position until,
                               const ProjectionSpecOptions& options) {
    projections::ProjectionRunner runner(events, store,
                                         {.owner = {},
                                          .lease_ttl = std::chrono::milliseconds(10'000),
                                          .acquire_interval = std::chrono::milliseconds(20),
                                          .poll_interval = std::chrono::milliseconds(50),
                                          .request_interval = std::chrono::milliseconds(1000)});
    const std::string name = projection->name();
    runner.add(std::move(projection), options.projection);
    runner.start();
    ProjectionOutcome outcome;
    outcome.reached = runner.wait_for(name, until, options.timeout);
    runner.stop();
    outcome.status = runner.status(name);
    return outcome;
  }

  const EventRegistry& registry() const noexcept { return registry_; }
  /// The ids of the given events, as text.
  const std::set<std::string, std::less<>>& ids() const noexcept { return ids_; }

 private:
  const EventRegistry& registry_;
  std::vector<std::pair<std::string, NewEvent>> givens_;
  std::set<std::string, std::less<>> ids_;
};

inline void report(const std::source_location& where, const std::string& message) {
  ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line())) << message;
}

inline std::string describe(const ProjectionOutcome& outcome) {
  return std::string("projection '") + outcome.status.name + "' is " +
         projections::to_string(outcome.status.state) +
         (outcome.status.last_error ? ", last error: " + *outcome.status.last_error
                                    : std::string());
}

/// Gives the runner a projection the caller owns.
inline std::shared_ptr<projections::Projection> borrowed(projections::Projection& projection) {
  return {&projection, [](projections::Projection*) {}};
}

/// then()'s precondition of both specs: when() ran and the projection processed every given
/// event. Reports (a test failure at `where`) and returns false otherwise.
inline bool processed_all(const std::optional<ProjectionOutcome>& outcome,
                          const std::source_location& where) {
  if (!outcome) {
    report(where, "then() before when()");
    return false;
  }
  if (!outcome->reached || outcome->status.state == projections::ProjectionState::kFailed) {
    report(where, "the projection did not process every given event: " + describe(*outcome));
    return false;
  }
  return true;
}

/// then_fails() of both specs: the projection failed with an error that contains `text`.
inline void check_failed(const std::optional<ProjectionOutcome>& outcome, std::string_view text,
                         const std::source_location& where) {
  if (!outcome) {
    report(where, "then_fails() before when()");
  } else if (outcome->status.state != projections::ProjectionState::kFailed) {
    report(where, "expected the projection to fail, but " + describe(*outcome));
  } else if (!outcome->status.last_error ||
             outcome->status.last_error->find(text) == std::string::npos) {
    report(where, "the projection failed, but not with \"" + std::string(text) +
                      "\": " + describe(*outcome));
  }
}

}  // namespace projection_spec_detail

/// Given/when/then for a projection on in-memory stores (see the header comment). Works for
/// every InProcessProjection; a ReadModelProjection needs ReadModelSpec.
class ProjectionSpec {
 public:
  /// `registry` encodes typed given events and must outlive the spec.
  explicit ProjectionSpec(const EventRegistry& registry, ProjectionSpecOptions options = {})
      : core_(registry),
        options_(options),
        events_(make_in_memory_event_store()),
        store_(projections::make_in_memory_projection_store()) {}

  /// A typed event, encoded at its current schema version with the registry.
  template <EventType E>
  ProjectionSpec& given(std::string_view stream, const E& event,
                        nlohmann::json metadata = nlohmann::json::object()) {
    core_.given(stream, event, std::move(metadata));
    return *this;
  }
  /// A raw event, stored as given (e.g. an old schema version or a name before a rename).
  ProjectionSpec& given(std::string_view stream, NewEvent event) {
    core_.given(stream, std::move(event));
    return *this;
  }

  /// Appends the given events and runs `projection` (which must outlive the spec) over them.
  ProjectionSpec& when(projections::Projection& projection) {
    const Position until = core_.append(*events_);
    outcome_ = projection_spec_detail::SpecCore::run(
        *events_, *store_, projection_spec_detail::borrowed(projection), until, options_);
    return *this;
  }

  /// Checks that the projection processed every given event, then that `actual()` equals
  /// `expected`.
  template <typename T, typename F>
  ProjectionSpec& then_equals(const T& expected, F actual,
                              std::source_location where = std::source_location::current()) {
    if (!projection_spec_detail::processed_all(outcome_, where)) return *this;
    const auto value = actual();
    if (!(value == expected)) {
      projection_spec_detail::report(where,
                                     "the read model is not the expected state:\n  expected: " +
                                         ::testing::PrintToString(expected) +
                                         "\n  actual:   " + ::testing::PrintToString(value));
    }
    return *this;
  }
  /// Checks that the projection processed every given event, then runs `check` (assertions).
  ProjectionSpec& then(const std::function<void()>& check,
                       std::source_location where = std::source_location::current()) {
    if (projection_spec_detail::processed_all(outcome_, where)) check();
    return *this;
  }
  /// Checks that the projection failed with an error that contains `text`.
  ProjectionSpec& then_fails(std::string_view text = {},
                             std::source_location where = std::source_location::current()) {
    projection_spec_detail::check_failed(outcome_, text, where);
    return *this;
  }

  /// The outcome of when() (empty before it).
  [[nodiscard]] const std::optional<ProjectionOutcome>& outcome() const noexcept {
    return outcome_;
  }
  /// The event store the given events were appended to.
  [[nodiscard]] EventStore& events() noexcept { return *events_; }

 private:
  projection_spec_detail::SpecCore core_;
  ProjectionSpecOptions options_;
  std::unique_ptr<EventStore> events_;
  std::unique_ptr<projections::ProjectionStore> store_;
  std::optional<ProjectionOutcome> outcome_;
};

}  // namespace annals::testkit
