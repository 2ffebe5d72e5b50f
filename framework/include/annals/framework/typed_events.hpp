// Typed handlers for stored events, on every read path: the stored event is upcast through
// the EventRegistry (version upgrades, renames, splits; ARCHITECTURE decision 9), decoded into
// its C++ type, and handed to the handler declared for that type, with an EventContext that
// carries what a handler needs besides the payload (stream, version, position, id, time,
// metadata).
//
//   annals::EventHandlers<> handlers(registry);
//   handlers.on<MoneyDeposited>([&](const MoneyDeposited& e, const annals::EventContext& c) {
//     totals[c.stream_id().value()] += e.amount;
//   });
//   auto subscription = annals::subscribe_typed(store, std::move(handlers));   // live
//   annals::read_all_typed(store, handlers, {.after = from});                  // one page
//
// Projections declare their handlers the same way (InProcessProjection::on and
// ReadModelProjection::on, annals/projections/); the handlers then also get the projection's
// writer (EventHandlers<ReadModel&>).
//
// What reaches a handler: the events whose stored type can upcast into a declared type,
// including names a type was stored under before a rename or split
// (EventRegistry::source_types); filter() returns exactly those names. Parts of a split, and
// current types, without a handler are skipped. A stored event that does not decode (its JSON
// does not fit the struct, an upcaster fails, a version no upcaster reads, a row the store
// could not decode) throws the registry's typed error naming type, stream and version.
// Personal data (EventRegistry::personal_data) reaches handlers opened, or as the redaction
// marker once its subject is forgotten (annals/framework/personal_data.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/framework/event_registry.hpp"

namespace annals {

/// What a typed handler gets besides the payload: the stored event's coordinates. A view of
/// the stored RecordedEvent, valid during the handler call only (copy what you keep).
///
/// When an upcaster split the stored event, each part gets the same stored coordinates and
/// its own part() (0-based) of parts().
class EventContext {
 public:
  explicit EventContext(const RecordedEvent& stored, std::size_t part = 0,
                        std::size_t parts = 1) noexcept
      : stored_(&stored), part_(part), parts_(parts) {}

  [[nodiscard]] const StreamId& stream_id() const noexcept { return stored_->stream_id; }
  /// The event's version in its stream.
  [[nodiscard]] StreamVersion version() const noexcept { return stored_->version; }
  /// Its position in the global log (totally ordered; a sink can ignore what it has).
  [[nodiscard]] const Position& position() const noexcept { return stored_->position; }
  [[nodiscard]] const EventId& event_id() const noexcept { return stored_->id; }
  /// When the database recorded it.
  [[nodiscard]] std::chrono::system_clock::time_point recorded_at() const noexcept {
    return stored_->recorded_at;
  }
  /// Its metadata, a JSON object (parsed on first access). Throws: std::bad_alloc only.
  [[nodiscard]] const nlohmann::json& metadata() const { return stored_->metadata.get_json(); }
  /// The type name and schema version it is stored under (before upcasting).
  [[nodiscard]] const std::string& stored_type() const noexcept { return stored_->type; }
  [[nodiscard]] std::int32_t stored_schema_version() const noexcept {
    return stored_->schema_version;
  }
  /// Which part of a split this is (0 for an event that was not split), and how many parts.
  [[nodiscard]] std::size_t part() const noexcept { return part_; }
  [[nodiscard]] std::size_t parts() const noexcept { return parts_; }
  /// The whole stored event, as read (its data is the stored, not the upcast, JSON).
  [[nodiscard]] const RecordedEvent& stored() const noexcept { return *stored_; }

 private:
  const RecordedEvent* stored_;
  std::size_t part_;
  std::size_t parts_;
};

/// Handlers per event type, dispatched through an EventRegistry. `Extra` are further
/// arguments every handler gets after the context (projections pass their writer).
///
/// Declare every handler before the first dispatch, after the registry has every type and
/// upcaster (the stored names a type reaches back to are computed by on()).
///
/// Thread safety: on() from one thread; afterwards dispatch(), filter() and the other const
/// members from any thread (the handlers themselves decide what they share).
template <typename... Extra>
class EventHandlers {
 public:
  /// The type-erased form of a handler: the upcast JSON of one part, its context, the extras.
  using Erased = std::function<void(const nlohmann::json&, const EventContext&, Extra...)>;

  /// Without a registry: on() throws until one is given (see set_registry()).
  EventHandlers() = default;
  /// Handlers dispatched through `registry`, which must outlive this object.
  explicit EventHandlers(const EventRegistry& registry) : registry_(&registry) {}

  /// Sets the registry (before any on()). Throws: InvalidArgumentError after an on().
  void set_registry(const EventRegistry& registry) {
    if (!handlers_.empty() && registry_ != &registry) {
      throw InvalidArgumentError("typed handlers: the registry cannot change after on()");
    }
    registry_ = &registry;
  }

  /// Declares the handler of E: `handler(const E&, const EventContext&, Extra...)`, or
  /// `handler(const E&, Extra...)` when it needs no context. The events it receives are those
  /// stored as E at its current version and every stored form that upcasts into E.
  /// Throws: InvalidArgumentError (no registry, E is not registered, E has a handler already).
  /// Cost: linear in the registry's upcasters.
  template <EventType E, typename F>
  void on(F handler) {
    if (registry_ == nullptr) {
      throw InvalidArgumentError(
          "typed handler for \"" + std::string(E::kTypeName) +
          "\": no EventRegistry (give it to the constructor of the projection or handlers)");
    }
    if (!registry_->contains<E>()) {
      throw InvalidArgumentError("typed handler for \"" + std::string(E::kTypeName) +
                                 "\": the type is not registered with the EventRegistry");
    }
    const std::string name(E::kTypeName);
    if (handlers_.contains(name)) {
      throw InvalidArgumentError("typed handler for \"" + name + "\" declared twice");
    }
    Erased erased;
    if constexpr (std::is_invocable_v<F&, const E&, const EventContext&, Extra...>) {
      erased = [f = std::move(handler)](const nlohmann::json& data, const EventContext& context,
                                        Extra... extra) mutable {
        const E event = detail::decode_data<E>(data, context.stored());
        f(event, context, std::forward<Extra>(extra)...);
      };
    } else {
      static_assert(std::is_invocable_v<F&, const E&, Extra...>,
                    "a typed handler takes (const E&, const annals::EventContext&, extras...) "
                    "or (const E&, extras...)");
      erased = [f = std::move(handler)](const nlohmann::json& data, const EventContext& context,
                                        Extra... extra) mutable {
        const E event = detail::decode_data<E>(data, context.stored());
        f(event, std::forward<Extra>(extra)...);
      };
    }
    handlers_.emplace(name, std::move(erased));
    for (auto& source : registry_->source_types(name)) stored_types_.insert(std::move(source));
  }

  /// True when no handler is declared.
  [[nodiscard]] bool empty() const noexcept { return handlers_.empty(); }
  /// Whether a handler for the (current) type `type` is declared.
  [[nodiscard]] bool handles(std::string_view type) const {
    return handlers_.find(std::string(type)) != handlers_.end();
  }
  /// The stored type names that can reach a handler (sorted): the declared types and every
  /// name they were stored under before renames and splits.
  [[nodiscard]] std::vector<std::string> stored_types() const {
    return {stored_types_.begin(), stored_types_.end()};
  }
  /// A filter for exactly those stored names (and `category`, when given).
  [[nodiscard]] EventFilter filter(
      const std::optional<std::string>& category = std::nullopt) const {
    return EventFilter{.category = category, .event_types = stored_types()};
  }

  /// Upcasts and decodes `event` and calls the handler of each resulting part, in order.
  /// Returns how many handlers were called: 0 when its stored type cannot reach a declared
  /// type, or no part has a handler (skipped: nothing is decoded then).
  /// Throws: InvalidArgumentError (no registry), CorruptionError (a row the store could not
  /// decode, an upcaster failed, the JSON does not fit the C++ type; naming type, stream and
  /// version), UnknownEventTypeError (a stored version no upcaster reads), and whatever a
  /// handler throws.
  /// Cost: a hash lookup for a skipped event; the decode and the handler otherwise (plus the
  /// upcasters, for an old event).
  std::size_t dispatch(const RecordedEvent& event, Extra... extra) const {
    if (registry_ == nullptr) {
      throw InvalidArgumentError("typed handlers: no EventRegistry to dispatch through");
    }
    if (registry_->is_current(event.type, event.schema_version) && !event.is_undecodable()) {
      const auto found = handlers_.find(event.type);
      if (found == handlers_.end()) return 0;
      if (registry_->has_personal_data()) {
        // Personal data opened, or redacted once its subject is forgotten (personal_data.hpp).
        if (const auto revealed = registry_->reveal(event)) {
          found->second(*revealed, EventContext(event), std::forward<Extra>(extra)...);
          return 1;
        }
      }
      found->second(event.data.get_json(), EventContext(event), std::forward<Extra>(extra)...);
      return 1;
    }
    if (!stored_types_.contains(event.type)) return 0;
    const auto parts = registry_->upcast_event(event);  // throws for an undecodable row
    std::size_t called = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const auto found = handlers_.find(parts[i].type);
      if (found == handlers_.end()) continue;
      found->second(parts[i].data, EventContext(event, i, parts.size()),
                    std::forward<Extra>(extra)...);
      ++called;
    }
    return called;
  }

 private:
  const EventRegistry* registry_ = nullptr;
  std::unordered_map<std::string, Erased> handlers_;
  std::set<std::string, std::less<>> stored_types_;
};

/// Starts a subscription (EventStore::subscribe) that dispatches every event through
/// `handlers`. When `options.filter.event_types` is empty it becomes handlers.stored_types()
/// (the category, if set, is kept). A decode failure or a handler's exception stops the
/// subscription and becomes its stop_reason() (as for every subscription handler).
/// Throws: InvalidArgumentError (no handler declared), what subscribe() throws.
[[nodiscard]] std::unique_ptr<Subscription> subscribe_typed(EventStore& store,
                                                            EventHandlers<> handlers,
                                                            SubscriptionOptions options = {});

/// What read_all_typed() did.
struct TypedReadResult {
  /// Stored events read (at most options.max_count).
  std::size_t read = 0;
  /// Handler calls (a split may make several of one event; skipped events make none).
  std::size_t handled = 0;
  /// Position of the last stored event read, or options.after when none was: continue from
  /// here (skipped events included).
  Position last_position;
};

/// Reads one page of the global log (EventReader::read_all, one round trip) and dispatches
/// each event through `handlers`, in log order. When `options.filter.event_types` is empty it
/// becomes handlers.stored_types(). Throws: InvalidArgumentError (no handler declared), what
/// read_all() and dispatch() throw (the events before the failing one were handled).
TypedReadResult read_all_typed(EventReader& reader, const EventHandlers<>& handlers,
                               ReadAllOptions options = {});

}  // namespace annals
