// Given/when/then for deciders (STYLE 2.5, 2.7): past events, a command, and the exact,
// ordered events expected (or the exact error type, or nothing). A failure is reported at the
// caller's line and shows expected and actual events as JSON.
//
//   using annals::testkit::given;
//   given<Account>(AccountOpened{"ada"}, MoneyDeposited{100})
//       .when(Withdraw{"42", 30})
//       .then(MoneyWithdrawn{30});
//   given<Account>(AccountOpened{"ada"}).when(Withdraw{"42", 30}).then_throws<InsufficientFunds>();
//   given<Account>(AccountOpened{"ada"}).when(OpenAccount{"42", "ada"}).then_nothing();
//
// No store is involved: the given events are folded with D::evolve and the command decided
// with D::decide, exactly as the repository does. `then` also checks that every decided event
// survives a JSON round trip (a field missing from NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE would
// otherwise be lost on the way to the store).
//
// Thread safety: a spec is a value; use it from one thread.
#pragma once

#include <exception>
#include <functional>
#include <source_location>
#include <sstream>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <boost/core/demangle.hpp>
#include <nlohmann/json.hpp>

#include "annals/framework/decider.hpp"
#include "annals/framework/event_registry.hpp"

namespace annals::testkit {
namespace spec_detail {

/// {"type": <kTypeName>, "data": <the event's JSON>}, for failure messages.
template <typename Variant>
nlohmann::json event_json(const Variant& event) {
  return std::visit(
      [](const auto& e) {
        using E = std::remove_cvref_t<decltype(e)>;
        nlohmann::json data;
        try {
          data = nlohmann::json(e);
        } catch (const std::exception& error) {
          data = std::string("<to_json threw: ") + error.what() + ">";
        }
        return nlohmann::json{{"type", std::string(E::kTypeName)}, {"data", std::move(data)}};
      },
      event);
}

template <typename Variant>
std::string events_text(const std::vector<Variant>& events) {
  if (events.empty()) return "    (no events)\n";
  std::ostringstream out;
  for (std::size_t i = 0; i < events.size(); ++i) {
    out << "    " << (i + 1) << ". " << event_json(events[i]).dump() << "\n";
  }
  return out.str();
}

template <typename C>
std::string command_text(const C& command) {
  std::string text = boost::core::demangle(typeid(C).name());
  if constexpr (JsonConvertible<C>) {
    try {
      text += " " + nlohmann::json(command).dump();
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the name suffices
    }
  }
  return text;
}

inline std::string exception_text(const std::exception& error) {
  return boost::core::demangle(typeid(error).name()) + ": " + error.what();
}

inline void fail_at(const std::source_location& where, const std::string& message) {
  ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line())) << message;
}

/// Empty when `event` survives to_json + from_json unchanged, else a description.
template <typename Variant>
std::string round_trip_problem(const Variant& event) {
  return std::visit(
      [](const auto& e) -> std::string {
        using E = std::remove_cvref_t<decltype(e)>;
        try {
          const nlohmann::json json = e;
          if (json.get<E>() == e) return {};
          return "event " + std::string(E::kTypeName) + " " + json.dump() +
                 " does not survive a JSON round trip: a field is missing from its JSON "
                 "conversion";
        } catch (const std::exception& error) {
          return "event " + std::string(E::kTypeName) +
                 " cannot round-trip through JSON: " + error.what();
        }
      },
      event);
}

}  // namespace spec_detail

/// An expected event, converted implicitly from any event of D; it records where the
/// expectation was written, so a failure points at the caller's line.
template <typename D>
struct ExpectedEvent {
  template <typename E>
  requires std::constructible_from<typename D::Event, E> ExpectedEvent(
      E&& e,  // NOLINT(google-explicit-constructor): implicit by design
      std::source_location where = std::source_location::current())
      : event(std::forward<E>(e)), location(where) {}

  typename D::Event event;
  std::source_location location;
};

/// The outcome half of a spec: what the command is expected to produce.
template <typename D, typename C>
class WhenSpec {
 public:
  using Event = typename D::Event;

  WhenSpec(std::vector<Event> history, C command, std::source_location when_location)
      : history_(std::move(history)), command_(std::move(command)), when_location_(when_location) {}

  /// Expects exactly these events, in this order.
  template <typename... Rest>
  void then(ExpectedEvent<D> first, Rest&&... rest) const {
    std::vector<Event> expected;
    expected.push_back(std::move(first.event));
    (expected.push_back(Event(std::forward<Rest>(rest))), ...);
    check_events(expected, first.location);
  }

  /// Expects exactly `expected` (empty: nothing), in this order.
  void then_events(const std::vector<Event>& expected,
                   std::source_location where = std::source_location::current()) const {
    check_events(expected, where);
  }

  /// Expects no events (the command is a no-op on this history).
  void then_nothing(std::source_location where = std::source_location::current()) const {
    check_events({}, where);
  }

  /// Expects decide to throw exactly Error (not a subclass, not another error).
  template <typename Error>
  void then_throws(std::source_location where = std::source_location::current()) const {
    then_throws<Error>([](const Error&) {}, where);
  }

  /// Expects decide to throw exactly Error, then runs `check` on it (to assert its fields).
  template <typename Error, typename Check>
  void then_throws(Check&& check,
                   std::source_location where = std::source_location::current()) const {
    std::vector<Event> actual;
    try {
      actual = run();
    } catch (const Error& error) {
      if (typeid(error) != typeid(Error)) {
        spec_detail::fail_at(
            where, header() + "expected exactly " + boost::core::demangle(typeid(Error).name()) +
                       ", but a subclass was thrown: " + spec_detail::exception_text(error));
        return;
      }
      std::invoke(std::forward<Check>(check), error);
      return;
    } catch (const std::exception& error) {
      spec_detail::fail_at(
          where, header() + "expected " + boost::core::demangle(typeid(Error).name()) +
                     ", but another exception was thrown: " + spec_detail::exception_text(error));
      return;
    }
    spec_detail::fail_at(
        where, header() + "expected " + boost::core::demangle(typeid(Error).name()) +
                   " to be thrown, but the command produced:\n" + spec_detail::events_text(actual));
  }

  /// The state after the given events and the decided ones (for further assertions).
  /// Throws: whatever decide throws.
  [[nodiscard]] typename D::State state() const {
    auto state = fold(history_);
    for (const auto& e : run()) state = detail::evolve<D>(std::move(state), e);
    return state;
  }

 private:
  static typename D::State fold(const std::vector<Event>& events) {
    typename D::State state{};
    for (const auto& e : events) state = detail::evolve<D>(std::move(state), e);
    return state;
  }

  std::vector<Event> run() const { return detail::decide<D>(fold(history_), command_); }

  std::string header() const {
    return "given " + std::to_string(history_.size()) + " event(s), when " +
           spec_detail::command_text(command_) + " (line " + std::to_string(when_location_.line()) +
           "):\n  ";
  }

  void check_events(const std::vector<Event>& expected, const std::source_location& where) const {
    std::vector<Event> actual;
    try {
      actual = run();
    } catch (const std::exception& error) {
      spec_detail::fail_at(where, header() + "expected events\n" +
                                      spec_detail::events_text(expected) + "  but decide threw " +
                                      spec_detail::exception_text(error));
      return;
    }
    if (actual != expected) {
      spec_detail::fail_at(
          where, header() + "events differ\n  expected (" + std::to_string(expected.size()) +
                     "):\n" + spec_detail::events_text(expected) + "  actual (" +
                     std::to_string(actual.size()) + "):\n" + spec_detail::events_text(actual));
      return;
    }
    for (const auto& e : actual) {
      if (auto problem = spec_detail::round_trip_problem(e); !problem.empty()) {
        spec_detail::fail_at(where, header() + problem);
      }
    }
  }

  std::vector<Event> history_;
  C command_;
  std::source_location when_location_;
};

/// The history half of a spec.
template <typename D>
class DeciderSpec {
  static_assert(detail::check_decider<D>());

 public:
  using Event = typename D::Event;

  explicit DeciderSpec(std::vector<Event> history) : history_(std::move(history)) {}

  /// The command to decide on the given history.
  template <typename C>
  [[nodiscard]] WhenSpec<D, C> when(
      C command, std::source_location where = std::source_location::current()) const {
    static_assert(detail::Decides<D, C>,
                  "annals::testkit: the decider has no decide(const State&, const C&) for this "
                  "command type");
    return WhenSpec<D, C>(history_, std::move(command), where);
  }

 private:
  std::vector<Event> history_;
};

/// Starts a spec of decider D with these past events (none: a new aggregate).
template <typename D, typename... Es>
[[nodiscard]] DeciderSpec<D> given(Es&&... events) {
  std::vector<typename D::Event> history;
  history.reserve(sizeof...(Es));
  (history.push_back(typename D::Event(std::forward<Es>(events))), ...);
  return DeciderSpec<D>(std::move(history));
}

}  // namespace annals::testkit
