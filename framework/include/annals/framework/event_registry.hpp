// The event registry and codec: C++ event types <-> stable type names and schema versions,
// JSON encoding, and upcasters that evolve stored JSON to the current schema on read
// (ARCHITECTURE decision 9). Stored events are never rewritten.
//
//   annals::EventRegistry registry;
//   registry.register_events<Account>();               // every event of a decider
//   registry.upcast("MoneyDeposited", 1, [](nlohmann::json d) {
//     d["currency"] = "EUR";                            // v1 -> v2: a new field
//     return d;
//   });
//   registry.validate();                                // a gap in a chain fails here
//
// An event type is a plain struct with a stable name, a schema version, `==`, and nlohmann
// JSON conversions (see the EventType concept). nlohmann exceptions are translated here, and
// only here, into annals errors naming the type, the stream and the version (STYLE 2.4).
//
// Personal data (docs/personal-data.md): `personal_data<E>({"owner"})` declares fields of E that
// are stored encrypted under their subject's key, and `use_personal_data(personal)` gives the
// registry the keys; encode_data()/encode() then seal those fields and every read (decode,
// upcast_event, typed handlers) opens them, or reads the redaction marker once the subject is
// forgotten.
//
// Thread safety: register everything on one thread before sharing the registry; afterwards
// every const method may be called from any thread at once.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/framework/errors.hpp"

namespace annals {

class PersonalDataCodec;  // annals/framework/personal_data_codec.hpp

/// A type nlohmann can convert both ways (to_json and from_json found by nlohmann's lookup,
/// e.g. NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE).
template <typename T>
concept JsonConvertible = std::default_initializable<T> &&
    requires(nlohmann::json& j, const T& value, T& out) {
  nlohmann::adl_serializer<T>::to_json(j, value);
  nlohmann::adl_serializer<T>::from_json(std::as_const(j), out);
};

/// A domain event type (STYLE 2.5): a plain struct with
///   static constexpr std::string_view kTypeName = "MoneyDeposited";  // stable, stored
///   static constexpr int kSchemaVersion = 2;                          // >= 1
///   friend bool operator==(const MoneyDeposited&, const MoneyDeposited&) = default;
/// and JSON conversions. Optionally `static constexpr int kFirstSchemaVersion = 3;` when no
/// event was ever stored under this name before version 3 (it was renamed from another type).
template <typename E>
concept EventType = requires {
  { E::kTypeName } -> std::convertible_to<std::string_view>;
  { E::kSchemaVersion } -> std::convertible_to<std::int32_t>;
}
&&std::equality_comparable<E>&& std::copy_constructible<E>&& JsonConvertible<E>;

/// A stored event's payload on its way to the current schema: a type name, a schema version
/// and its JSON data.
struct UpcastEvent {
  std::string type;
  std::int32_t schema_version = 1;
  nlohmann::json data;

  friend bool operator==(const UpcastEvent&, const UpcastEvent&) = default;
};

/// One event produced by a split upcaster.
struct SplitPart {
  std::string type;
  nlohmann::json data;
};

/// A registered event type.
struct EventTypeInfo {
  std::string name;
  std::int32_t schema_version = 1;        ///< the current version (what the C++ type reads)
  std::int32_t first_schema_version = 1;  ///< the oldest version stored under this name
};

namespace detail {

template <typename T>
struct IsVariant : std::false_type {};
template <typename... Ts>
struct IsVariant<std::variant<Ts...>> : std::true_type {};

/// The events of a decider (its ::Event) or of a std::variant of events.
template <typename T>
struct EventVariantOf {
  using Type = typename T::Event;
};
template <typename... Es>
struct EventVariantOf<std::variant<Es...>> {
  using Type = std::variant<Es...>;
};

template <typename E>
constexpr std::int32_t first_schema_version() {
  if constexpr (requires { E::kFirstSchemaVersion; }) {
    return static_cast<std::int32_t>(E::kFirstSchemaVersion);
  } else {
    return 1;
  }
}

/// The codec's single translation point for nlohmann failures on read: throws a
/// CorruptionError naming the type, schema version, stream and stream version of `origin`.
[[noreturn]] void throw_undecodable(std::string_view type, std::int32_t schema_version,
                                    const RecordedEvent& origin, const char* why);
/// The same on write: an InvalidArgumentError naming the type.
[[noreturn]] void throw_unencodable(std::string_view type, const char* why);
/// A CorruptionError for an event the store could not decode (RecordedEvent::decode_failure),
/// naming its id, stream, version, position and the reason.
[[noreturn]] void throw_stored_undecodable(const RecordedEvent& event);
/// An UnknownEventTypeError for an event (or upcast part) that is not an alternative of the
/// requested variant.
[[noreturn]] void throw_not_in_variant(std::string_view type, std::int32_t schema_version,
                                       const RecordedEvent& origin);

/// `data` as an E. Throws: CorruptionError (the JSON does not fit E).
template <typename E>
E decode_data(const nlohmann::json& data, const RecordedEvent& origin) {
  try {
    return data.get<E>();
  } catch (const nlohmann::json::exception& e) {
    throw_undecodable(E::kTypeName, static_cast<std::int32_t>(E::kSchemaVersion), origin, e.what());
  }
}

/// `event` as JSON. Throws: InvalidArgumentError (its to_json failed).
template <typename E>
nlohmann::json encode_data(const E& event) {
  try {
    return nlohmann::json(event);
  } catch (const nlohmann::json::exception& e) {
    throw_unencodable(E::kTypeName, e.what());
  }
}

/// Decodes JSON into the alternative of Variant named by a type name.
template <typename Variant>
class VariantDecoder;

template <typename... Es>
class VariantDecoder<std::variant<Es...>> {
 public:
  using Variant = std::variant<Es...>;
  using Decode = Variant (*)(const nlohmann::json&, const RecordedEvent&);

  /// The decoder of the alternative named `type`, or null.
  static Decode find(std::string_view type) {
    const auto& table = instance();
    const auto found = table.find(type);
    return found == table.end() ? nullptr : found->second;
  }

 private:
  static const std::unordered_map<std::string_view, Decode>& instance() {
    static const std::unordered_map<std::string_view, Decode> table{
        {std::string_view(Es::kTypeName),
         [](const nlohmann::json& data, const RecordedEvent& origin) -> Variant {
           return Variant(std::in_place_type<Es>, decode_data<Es>(data, origin));
         }}...};
    return table;
  }
};

}  // namespace detail

/// Maps event types to stable names and schema versions, both ways, and upcasts stored events.
class EventRegistry {
 public:
  /// Transforms the data of one stored event; `origin` is the stored event (for its metadata,
  /// recorded time, ...).
  using Transform = std::function<nlohmann::json(nlohmann::json data, const RecordedEvent& origin)>;
  using SplitTransform =
      std::function<std::vector<SplitPart>(nlohmann::json data, const RecordedEvent& origin)>;

  EventRegistry();
  EventRegistry(const EventRegistry&) = delete;
  EventRegistry& operator=(const EventRegistry&) = delete;
  EventRegistry(EventRegistry&&) noexcept;
  EventRegistry& operator=(EventRegistry&&) noexcept;
  ~EventRegistry();

  // --- Registration ---------------------------------------------------------------------

  /// Registers E under E::kTypeName at E::kSchemaVersion. Registering the same type again is
  /// a no-op. Throws: InvalidArgumentError when the name is taken by another type, or E is
  /// already registered under another name.
  template <EventType E>
  void register_event() {
    static_assert(E::kSchemaVersion >= 1, "kSchemaVersion must be >= 1");
    static_assert(detail::first_schema_version<E>() >= 1 &&
                      detail::first_schema_version<E>() <= E::kSchemaVersion,
                  "kFirstSchemaVersion must be between 1 and kSchemaVersion");
    add_type(E::kTypeName, static_cast<std::int32_t>(E::kSchemaVersion),
             detail::first_schema_version<E>(), typeid(E));
  }

  /// Registers every event of a decider (its `Event` variant), or of a std::variant.
  template <typename DeciderOrVariant>
  void register_events() {
    register_variant(std::type_identity<typename detail::EventVariantOf<DeciderOrVariant>::Type>{});
  }

  // --- Personal data (annals/framework/personal_data.hpp, docs/personal-data.md) ----------

  /// Declares members of E's JSON (top-level names) as personal data whose subject is the
  /// stream the event is appended to ("account-42"): they are stored encrypted with that
  /// subject's key. Registers E if needed. Encoding then needs the stream (encode_data(e,
  /// stream), encode(stream, e), the Repository and the CommandBus give it).
  /// Throws: InvalidArgumentError (no field, an empty field name, E declared already).
  template <EventType E>
  void personal_data(const std::vector<std::string>& fields) {
    register_event<E>();
    add_personal(E::kTypeName, fields, nullptr);
  }
  /// The same, with the subject computed from the event: `subject_of(const E&)` returns
  /// something convertible to std::string (e.g. the customer id the event carries).
  template <EventType E, typename F>
  void personal_data(const std::vector<std::string>& fields, F subject_of) {
    static_assert(std::is_invocable_v<const F&, const E&>,
                  "the subject function takes (const E&) and returns the subject");
    register_event<E>();
    add_personal(E::kTypeName, fields,
                 [f = std::move(subject_of)](const void* event) -> std::string {
                   return std::string(f(*static_cast<const E*>(event)));
                 });
  }
  /// Seals and opens personal data with `personal` (an annals::PersonalData, which must outlive
  /// the registry's use); also registers SubjectForgotten. Without it, encoding an event with
  /// personal data and reading one that holds envelopes throw InvalidArgumentError.
  /// Call it before sharing the registry (it is part of registration).
  void use_personal_data(PersonalDataCodec& personal);
  /// Whether personal data is declared or a PersonalData is in use. Throws: nothing.
  [[nodiscard]] bool has_personal_data() const noexcept { return personal_; }

  /// Upcaster for field changes: stored (type, from_version) -> (type, from_version + 1).
  /// `transform` takes the data as `nlohmann::json` (and optionally the origin
  /// RecordedEvent) and returns the new data.
  /// Throws: InvalidArgumentError (from_version < 1, empty type, a step already registered).
  template <typename F>
  void upcast(std::string_view type, std::int32_t from_version, F transform) {
    add_step(type, from_version, {std::string(type)},
             to_split(std::string(type), as_transform(std::move(transform))));
  }

  /// Upcaster for a rename: stored (type, from_version) -> (new_type, from_version + 1), with
  /// the data unchanged or changed by `transform`.
  void rename(std::string_view type, std::int32_t from_version, std::string_view new_type);
  template <typename F>
  void rename(std::string_view type, std::int32_t from_version, std::string_view new_type,
              F transform) {
    add_step(type, from_version, {std::string(new_type)},
             to_split(std::string(new_type), as_transform(std::move(transform))));
  }

  /// Upcaster for a split: stored (type, from_version) -> the events `transform` returns, in
  /// order, each of one of the types `into`, all at from_version + 1. `into` declares the
  /// possible types so that validate() can check every chain.
  template <typename F>
  void split(std::string_view type, std::int32_t from_version, std::vector<std::string> into,
             F transform) {
    SplitTransform fn;
    if constexpr (std::is_invocable_v<F&, nlohmann::json, const RecordedEvent&>) {
      fn = std::move(transform);
    } else {
      fn = [f = std::move(transform)](nlohmann::json data, const RecordedEvent&) mutable {
        return f(std::move(data));
      };
    }
    add_step(type, from_version, std::move(into), std::move(fn));
  }

  /// Checks every upcaster chain: each step leads, step by step, to a registered type at its
  /// current schema version; every registered type has a step from each version between its
  /// first and its current one; no step starts at or beyond a type's current version.
  /// Throws: InvalidArgumentError listing every problem. Cost: linear in steps and versions.
  void validate() const;

  // --- Lookup ---------------------------------------------------------------------------

  /// The registered type of that name, or empty.
  [[nodiscard]] std::optional<EventTypeInfo> find(std::string_view type) const;
  /// Whether E is registered (under its kTypeName).
  template <EventType E>
  [[nodiscard]] bool contains() const {
    return contains_type(typeid(E), E::kTypeName);
  }
  /// Whether `type` at `schema_version` is a registered type at its current version (reads
  /// without upcasting). Cost: one hash lookup.
  [[nodiscard]] bool is_current(std::string_view type, std::int32_t schema_version) const;

  /// The stored type names whose events can upcast into `type` at its current version: `type`
  /// itself (when registered) and every name a rename or split chain leads from, walking the
  /// chains backwards. Sorted, without duplicates. A reader that wants every event of `type`
  /// reads these names (typed projections derive their filter from them), so events stored
  /// before a rename still reach it. Events of these names may also upcast into other types
  /// (the other parts of a split); a reader skips those. Empty for an unknown name.
  /// Cost: linear in the registered steps.
  [[nodiscard]] std::vector<std::string> source_types(std::string_view type) const;
  template <EventType E>
  [[nodiscard]] std::vector<std::string> source_types() const {
    return source_types(E::kTypeName);
  }

  // --- Writing --------------------------------------------------------------------------

  /// `event` as a NewEvent: its type name, current schema version and JSON data, with
  /// `metadata` (a JSON object) and no id. Throws: InvalidArgumentError (E is not registered,
  /// or its to_json failed).
  /// Personal data declared with a subject computed from the event is sealed; personal data
  /// whose subject is the stream needs the overload with the stream (InvalidArgumentError).
  template <EventType E>
  [[nodiscard]] NewEvent encode(const E& event,
                                nlohmann::json metadata = nlohmann::json::object()) const {
    if (!contains<E>()) throw_not_registered(E::kTypeName);
    return NewEvent{.id = std::nullopt,
                    .type = std::string(E::kTypeName),
                    .schema_version = static_cast<std::int32_t>(E::kSchemaVersion),
                    .data = encode_data_for(event, nullptr),
                    .metadata = std::move(metadata)};
  }
  template <typename... Es>
  [[nodiscard]] NewEvent encode(const std::variant<Es...>& event,
                                nlohmann::json metadata = nlohmann::json::object()) const {
    return std::visit([&](const auto& e) { return encode(e, std::move(metadata)); }, event);
  }
  /// `event` as a NewEvent to be appended to `stream`: as encode(event, metadata), with its
  /// personal data sealed for its subject (the stream, unless declared otherwise).
  /// Throws: as encode(), and what PersonalData::seal_fields throws.
  /// Cost: one key-store round trip when E declares personal data.
  template <EventType E>
  [[nodiscard]] NewEvent encode(const StreamId& stream, const E& event,
                                nlohmann::json metadata = nlohmann::json::object()) const {
    if (!contains<E>()) throw_not_registered(E::kTypeName);
    return NewEvent{.id = std::nullopt,
                    .type = std::string(E::kTypeName),
                    .schema_version = static_cast<std::int32_t>(E::kSchemaVersion),
                    .data = encode_data_for(event, &stream),
                    .metadata = std::move(metadata)};
  }
  template <typename... Es>
  [[nodiscard]] NewEvent encode(const StreamId& stream, const std::variant<Es...>& event,
                                nlohmann::json metadata = nlohmann::json::object()) const {
    return std::visit([&](const auto& e) { return encode(stream, e, std::move(metadata)); }, event);
  }
  /// The JSON data of `event`, appended to `stream`, with its personal data sealed (the
  /// Repository's encode path). Throws: InvalidArgumentError (to_json failed, a declared field
  /// is missing), what PersonalData::seal_fields throws. Cost: as encode().
  template <EventType E>
  [[nodiscard]] nlohmann::json encode_data(const E& event, const StreamId& stream) const {
    return encode_data_for(event, &stream);
  }

  // --- Reading --------------------------------------------------------------------------

  /// The data of `event` with its personal data opened (or redacted, once forgotten); empty when
  /// it holds none, or no personal data is declared (read event.data then). decode(),
  /// upcast_event() and typed handlers call it.
  /// Throws: TamperedPersonalDataError (an envelope that does not open), InvalidArgumentError
  /// (envelopes, but no use_personal_data()), UnavailableError. Cost: none without personal
  /// data; a text search, plus a key-store round trip per key when it holds envelopes.
  [[nodiscard]] std::optional<nlohmann::json> reveal(const RecordedEvent& event) const;

  /// The stored event at the current schema: upcast step by step (renames and splits
  /// included) until every part is a registered type at its current version.
  /// Throws: UnknownEventTypeError (no registered type or upcaster for a step),
  /// CorruptionError (the store could not decode the event: RecordedEvent::decode_failure; or
  /// an upcaster failed on the stored JSON), InvalidArgumentError (an upcaster returned a type
  /// it did not declare).
  [[nodiscard]] std::vector<UpcastEvent> upcast_event(const RecordedEvent& event) const;

  /// Decodes a stored event into the alternatives of Variant (several when an upcaster split
  /// it), appending them to `out`. The common case (stored at the current version) decodes
  /// straight from `event.data`, without copying it.
  /// Throws: UnknownEventTypeError (unknown type, or not an alternative of Variant),
  /// CorruptionError (the JSON does not fit the C++ type), as upcast_event.
  template <typename Variant>
  void decode(const RecordedEvent& event, std::vector<Variant>& out) const {
    using Decoder = detail::VariantDecoder<Variant>;
    if (event.is_undecodable()) detail::throw_stored_undecodable(event);
    if (is_current(event.type, event.schema_version)) {
      const auto decode_one = Decoder::find(event.type);
      if (decode_one == nullptr)
        detail::throw_not_in_variant(event.type, event.schema_version, event);
      if (personal_) {
        if (const auto revealed = reveal(event)) {
          out.push_back(decode_one(*revealed, event));
          return;
        }
      }
      out.push_back(decode_one(event.data, event));
      return;
    }
    for (const auto& part : upcast_event(event)) {
      const auto decode_one = Decoder::find(part.type);
      if (decode_one == nullptr)
        detail::throw_not_in_variant(part.type, part.schema_version, event);
      out.push_back(decode_one(part.data, event));
    }
  }
  template <typename Variant>
  [[nodiscard]] std::vector<Variant> decode(const RecordedEvent& event) const {
    std::vector<Variant> out;
    decode(event, out);
    return out;
  }

 private:
  template <typename... Es>
  void register_variant(std::type_identity<std::variant<Es...>>) {
    (register_event<Es>(), ...);
  }

  template <typename F>
  static Transform as_transform(F transform) {
    if constexpr (std::is_invocable_v<F&, nlohmann::json, const RecordedEvent&>) {
      return Transform(std::move(transform));
    } else {
      static_assert(std::is_invocable_r_v<nlohmann::json, F&, nlohmann::json>,
                    "an upcaster takes (nlohmann::json data[, const RecordedEvent& origin]) and "
                    "returns the new data as nlohmann::json");
      return [f = std::move(transform)](nlohmann::json data, const RecordedEvent&) mutable {
        return nlohmann::json(f(std::move(data)));
      };
    }
  }
  static SplitTransform to_split(std::string type, Transform transform);

  using SubjectOf = std::function<std::string(const void* event)>;
  void add_personal(std::string_view type, std::vector<std::string> fields, SubjectOf subject_of);
  // Seals the declared personal data of `type` in `data` (a no-op without declarations).
  void seal_personal(std::string_view type, const void* event, const StreamId* stream,
                     nlohmann::json& data) const;
  template <EventType E>
  nlohmann::json encode_data_for(const E& event, const StreamId* stream) const {
    auto data = detail::encode_data(event);
    if (personal_) seal_personal(E::kTypeName, &event, stream, data);
    return data;
  }

  void add_type(std::string_view name, std::int32_t version, std::int32_t first,
                std::type_index type);
  void add_step(std::string_view type, std::int32_t from_version, std::vector<std::string> into,
                SplitTransform transform);
  [[nodiscard]] bool contains_type(std::type_index type, std::string_view name) const;
  [[noreturn]] static void throw_not_registered(std::string_view type);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  // Personal data is declared or in use: reads look for envelopes (a plain flag, so that a
  // registry without personal data pays one branch).
  bool personal_ = false;
};

}  // namespace annals
