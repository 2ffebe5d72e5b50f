// The decider shape of an aggregate (STYLE 2.5) and the concept that checks it.
//
// A decider is a struct with no base class and no virtual functions:
//
//   struct Account {
//     struct State { bool open = false; std::int64_t balance = 0; };  // "nothing happened yet"
//     using Event = std::variant<AccountOpened, MoneyDeposited, MoneyWithdrawn>;
//     static constexpr std::string_view kCategory = "account";        // streams "account-<id>"
//     static State evolve(State s, const MoneyDeposited& e);           // one per event
//     static MoneyWithdrawn decide(const State& s, const Withdraw& c); // one per command
//   };
//
// decide returns one event, the Event variant, std::optional of either, or a std::vector of
// them (empty = nothing to do), and throws a DomainError subclass when an invariant breaks. It
// must not touch clocks, ids, randomness, I/O or logging: facts come in the command. Versions,
// pending events, conflict retries and snapshots are the framework's job.
//
// Optional: `static constexpr int kSnapshotVersion = 2;` on the decider or its State (default
// 1), the schema version of snapshots of the State; bump it when the State's JSON changes.
//
// Thread safety: the helpers here are pure functions.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"

namespace annals {
namespace detail {

template <typename T>
struct IsDeciderVariant : std::false_type {};
template <typename... Ts>
struct IsDeciderVariant<std::variant<Ts...>> : std::true_type {};

template <typename D, typename E>
concept Evolves = requires(typename D::State state, const E& event) {
  { D::evolve(std::move(state), event) } -> std::convertible_to<typename D::State>;
};

template <typename D, typename Variant>
struct EvolvesAll : std::false_type {};
template <typename D, typename... Es>
struct EvolvesAll<D, std::variant<Es...>> : std::bool_constant<(Evolves<D, Es> && ...)> {};

template <typename D>
concept HasDeciderTypes = requires {
  typename D::State;
  typename D::Event;
  { D::kCategory } -> std::convertible_to<std::string_view>;
};

}  // namespace detail

/// Checks the decider shape: a default-constructible, copyable State, an Event variant with an
/// `evolve` for every alternative, and a category. For a message that names an event without
/// an `evolve`, use the framework (Repository, CommandBus::handle), which static_asserts each
/// event separately.
template <typename D>
concept Decider = detail::HasDeciderTypes<D> && std::default_initializable<typename D::State> &&
    std::copy_constructible<typename D::State> &&
    detail::IsDeciderVariant<typename D::Event>::value &&
    detail::EvolvesAll<D, typename D::Event>::value;

namespace detail {

template <typename T>
inline constexpr bool kAlwaysFalse = false;

/// Instantiated once per event of D: when the assertion fails, the compiler's "required from"
/// line names the decider D and the event E that lacks an evolve.
template <typename D, typename E>
struct EvolveCheck {
  static_assert(Evolves<D, E>,
                "annals::Decider: no `static State evolve(State, const E&)` for the event E of "
                "decider D named in this instantiation (EvolveCheck<D, E>)");
  static constexpr bool kValue = Evolves<D, E>;
};

template <typename D, typename... Es>
constexpr bool check_evolves(std::type_identity<std::variant<Es...>>) {
  return (EvolveCheck<D, Es>::kValue && ...);
}

/// Asserts the decider shape with one readable message per missing piece.
template <typename D>
constexpr bool check_decider() {
  static_assert(
      requires { typename D::State; },
      "annals::Decider: the decider needs a nested `struct State`");
  static_assert(
      requires { typename D::Event; },
      "annals::Decider: the decider needs `using Event = std::variant<...>`");
  static_assert(
      requires {
        { D::kCategory } -> std::convertible_to<std::string_view>;
      },
      "annals::Decider: the decider needs `static constexpr std::string_view kCategory`");
  if constexpr (HasDeciderTypes<D>) {
    static_assert(std::default_initializable<typename D::State>,
                  "annals::Decider: State must be default-constructible (\"nothing happened\")");
    static_assert(std::copy_constructible<typename D::State>,
                  "annals::Decider: State must be copyable");
    static_assert(IsDeciderVariant<typename D::Event>::value,
                  "annals::Decider: Event must be a std::variant of the decider's events");
    static_assert(!std::string_view(D::kCategory).empty() &&
                      std::string_view(D::kCategory).find('-') == std::string_view::npos,
                  "annals::Decider: kCategory must be non-empty and contain no '-'");
    if constexpr (IsDeciderVariant<typename D::Event>::value) {
      check_evolves<D>(std::type_identity<typename D::Event>{});
    }
  }
  return true;
}

/// Evolves `state` by one event of the decider's Event variant.
template <typename D>
typename D::State evolve(typename D::State state, const typename D::Event& event) {
  return std::visit(
      [&](const auto& e) -> typename D::State { return D::evolve(std::move(state), e); }, event);
}

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <typename T>
struct IsVector : std::false_type {};
template <typename T, typename A>
struct IsVector<std::vector<T, A>> : std::true_type {};

/// What decide returned, as a vector of the decider's events.
template <typename D, typename R>
std::vector<typename D::Event> to_events(R&& result) {
  using Event = typename D::Event;
  using T = std::remove_cvref_t<R>;
  if constexpr (std::is_same_v<T, std::vector<Event>>) {
    return std::forward<R>(result);
  } else if constexpr (IsOptional<T>::value) {
    if (!result) return {};
    return to_events<D>(*std::forward<R>(result));
  } else if constexpr (IsVector<T>::value) {
    std::vector<Event> events;
    events.reserve(result.size());
    for (auto&& e : result) events.push_back(Event(std::forward<decltype(e)>(e)));
    return events;
  } else if constexpr (std::is_constructible_v<Event, T>) {
    std::vector<Event> events;
    events.push_back(Event(std::forward<R>(result)));
    return events;
  } else {
    static_assert(kAlwaysFalse<T>,
                  "annals: decide must return an event, the decider's Event variant, "
                  "std::optional of one, or a std::vector of them");
  }
}

/// Whether D decides commands of type C.
template <typename D, typename C>
concept Decides = requires(const typename D::State& state, const C& command) {
  D::decide(state, command);
};

/// Runs D::decide on `state` and `command`; returns the events (empty = nothing to do).
/// Throws: whatever decide throws (a DomainError subclass for a refused command).
template <typename D, typename C>
std::vector<typename D::Event> decide(const typename D::State& state, const C& command) {
  static_assert(Decides<D, C>,
                "annals: the decider has no `static ... decide(const State&, const C&)` for this "
                "command type C");
  return to_events<D>(D::decide(state, command));
}

/// The schema version of D's snapshots: D::kSnapshotVersion, else D::State::kSnapshotVersion,
/// else 1.
template <typename D>
constexpr std::int32_t snapshot_version() {
  if constexpr (requires { D::kSnapshotVersion; }) {
    return static_cast<std::int32_t>(D::kSnapshotVersion);
  } else if constexpr (requires { D::State::kSnapshotVersion; }) {
    return static_cast<std::int32_t>(D::State::kSnapshotVersion);
  } else {
    return 1;
  }
}

/// The stream id of aggregate `id`: "<kCategory>-<id>". Throws: InvalidArgumentError (empty
/// id, or one the StreamId refuses).
template <typename D>
StreamId stream_of(std::string_view id) {
  if (id.empty()) {
    throw InvalidArgumentError("empty aggregate id for category \"" + std::string(D::kCategory) +
                               "\"");
  }
  std::string name(D::kCategory);
  name.push_back('-');
  name.append(id);
  return StreamId(std::move(name));
}

}  // namespace detail
}  // namespace annals
