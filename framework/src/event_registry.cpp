// The event registry: type names <-> C++ types, and upcaster chains (ARCHITECTURE decision 9).
//
// A chain step maps a stored (type, n) to one or more events at version n + 1, possibly under
// another name (rename, split). Versions only go up, so every chain ends; validate() proves at
// start-up that each one ends at a registered type's current version, so that a missing step
// is found when the program is wired, not when an old event is first read.
#include "annals/framework/event_registry.hpp"

#include "annals/framework/personal_data_codec.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <utility>

namespace annals {
namespace {

std::string describe(std::string_view type, std::int32_t version) {
  return "\"" + std::string(type) + "\" v" + std::to_string(version);
}

std::string where(const RecordedEvent& origin) {
  return "version " + std::to_string(origin.version) + " of stream \"" + origin.stream_id.value() +
         "\"";
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// Orders (type, version) keys; transparent so that lookups need no std::string.
struct StepKeyLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const noexcept {
    const int c = std::string_view(a.first).compare(std::string_view(b.first));
    return c < 0 || (c == 0 && a.second < b.second);
  }
};

}  // namespace

UnknownEventTypeError::UnknownEventTypeError(std::string type, std::int32_t schema_version,
                                             std::string stream, StreamVersion version,
                                             const std::string& why)
    : NotFoundError("cannot read event " + describe(type, schema_version) + " at version " +
                    std::to_string(version) + " of stream \"" + stream + "\": " + why),
      type_(std::move(type)),
      schema_version_(schema_version),
      stream_(std::move(stream)),
      version_(version) {}

namespace detail {

void throw_undecodable(std::string_view type, std::int32_t schema_version,
                       const RecordedEvent& origin, const char* why) {
  throw CorruptionError("event " + describe(type, schema_version) + " at " + where(origin) +
                        " (stored as " + describe(origin.type, origin.schema_version) +
                        ") does not fit its C++ type: " + why);
}

void throw_unencodable(std::string_view type, const char* why) {
  throw InvalidArgumentError("event \"" + std::string(type) +
                             "\" cannot be serialized as JSON: " + why);
}

void throw_stored_undecodable(const RecordedEvent& event) {
  const auto& failure = *event.decode_failure;
  throw CorruptionError("event " + event.id.to_string() + " at version " +
                        std::to_string(event.version) + " of stream " +
                        nlohmann::json(failure.stream_id)
                            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                        " (position " + event.position.to_string() +
                        ") could not be decoded from the store: " + failure.reason);
}

void throw_not_in_variant(std::string_view type, std::int32_t schema_version,
                          const RecordedEvent& origin) {
  throw UnknownEventTypeError(std::string(type), schema_version, origin.stream_id.value(),
                              origin.version,
                              "it is not one of the event types this reader decodes");
}

}  // namespace detail

struct EventRegistry::Impl {
  struct Type {
    std::string name;
    std::int32_t version = 1;
    std::int32_t first = 1;
    std::type_index cpp;
  };
  struct Step {
    std::vector<std::string> into;
    SplitTransform transform;
  };

  std::unordered_map<std::string, Type, StringHash, std::equal_to<>> types;
  std::unordered_map<std::type_index, std::string> names;
  std::map<std::pair<std::string, std::int32_t>, Step, StepKeyLess> steps;

  // Personal data declared per type name (docs/personal-data.md), and the keys in use.
  struct Personal {
    std::vector<std::string> fields;
    SubjectOf subject_of;  // null: the stream is the subject
  };
  std::unordered_map<std::string, Personal, StringHash, std::equal_to<>> personal;
  PersonalDataCodec* keys = nullptr;

  const Type* find_type(std::string_view name) const {
    const auto found = types.find(name);
    return found == types.end() ? nullptr : &found->second;
  }
  const Step* find_step(std::string_view type, std::int32_t version) const {
    const auto found = steps.find(std::pair<std::string_view, std::int32_t>(type, version));
    return found == steps.end() ? nullptr : &found->second;
  }
};

EventRegistry::EventRegistry() : impl_(std::make_unique<Impl>()) {}
EventRegistry::EventRegistry(EventRegistry&&) noexcept = default;
EventRegistry& EventRegistry::operator=(EventRegistry&&) noexcept = default;
EventRegistry::~EventRegistry() = default;

void EventRegistry::add_type(std::string_view name, std::int32_t version, std::int32_t first,
                             std::type_index type) {
  if (name.empty()) throw InvalidArgumentError("an event type name must not be empty");
  if (const auto named = impl_->names.find(type); named != impl_->names.end()) {
    if (named->second == name) return;  // registered before: a no-op
    throw InvalidArgumentError("event type \"" + std::string(name) +
                               "\": the same C++ type is already registered as \"" + named->second +
                               "\"");
  }
  if (impl_->find_type(name) != nullptr) {
    throw InvalidArgumentError("event type name \"" + std::string(name) +
                               "\" is already registered for another C++ type");
  }
  impl_->types.emplace(std::string(name), Impl::Type{std::string(name), version, first, type});
  impl_->names.emplace(type, std::string(name));
}

void EventRegistry::add_step(std::string_view type, std::int32_t from_version,
                             std::vector<std::string> into, SplitTransform transform) {
  const std::string step = "upcaster from " + describe(type, from_version);
  if (type.empty()) throw InvalidArgumentError("an upcaster needs a type name");
  if (from_version < 1) throw InvalidArgumentError(step + ": versions start at 1");
  if (into.empty()) throw InvalidArgumentError(step + ": declares no resulting type");
  for (const auto& name : into) {
    if (name.empty()) throw InvalidArgumentError(step + ": a resulting type name is empty");
  }
  if (!transform) throw InvalidArgumentError(step + ": no transform");
  auto key = std::make_pair(std::string(type), from_version);
  if (impl_->steps.contains(key)) throw InvalidArgumentError(step + ": registered twice");
  impl_->steps.emplace(std::move(key), Impl::Step{std::move(into), std::move(transform)});
}

void EventRegistry::add_personal(std::string_view type, std::vector<std::string> fields,
                                 SubjectOf subject_of) {
  const std::string what = "personal data of \"" + std::string(type) + "\"";
  if (fields.empty()) throw InvalidArgumentError(what + ": no field named");
  for (const auto& field : fields) {
    if (field.empty()) throw InvalidArgumentError(what + ": a field name is empty");
  }
  std::sort(fields.begin(), fields.end());
  if (std::adjacent_find(fields.begin(), fields.end()) != fields.end()) {
    throw InvalidArgumentError(what + ": a field is named twice");
  }
  if (impl_->personal.contains(type)) throw InvalidArgumentError(what + ": declared twice");
  impl_->personal.emplace(std::string(type),
                          Impl::Personal{std::move(fields), std::move(subject_of)});
  personal_ = true;
}

void EventRegistry::use_personal_data(PersonalDataCodec& personal) {
  register_event<SubjectForgotten>();
  impl_->keys = &personal;
  personal_ = true;
}

void EventRegistry::seal_personal(std::string_view type, const void* event, const StreamId* stream,
                                  nlohmann::json& data) const {
  const auto found = impl_->personal.find(type);
  if (found == impl_->personal.end()) return;
  const auto& declared = found->second;
  if (impl_->keys == nullptr) {
    throw InvalidArgumentError("event \"" + std::string(type) +
                               "\" declares personal data, but the registry has no keys to seal "
                               "it with (EventRegistry::use_personal_data)");
  }
  std::string subject;
  if (declared.subject_of) {
    subject = declared.subject_of(event);
  } else if (stream != nullptr) {
    subject = stream->value();
  } else {
    throw InvalidArgumentError("event \"" + std::string(type) +
                               "\" has personal data whose subject is its stream: encode it with "
                               "the stream (EventRegistry::encode(stream, event))");
  }
  impl_->keys->seal_fields(data, subject, declared.fields, type);
}

std::optional<nlohmann::json> EventRegistry::reveal(const RecordedEvent& event) const {
  if (!personal_ || !may_hold_envelope(event)) return std::nullopt;
  if (impl_->keys == nullptr) {
    const auto& data = event.data.get_json();
    if (!data.is_object()) return std::nullopt;
    for (const auto& member : data) {
      if (is_envelope(member)) {
        throw InvalidArgumentError(
            "event " + event.id.to_string() + " at version " + std::to_string(event.version) +
            " of stream \"" + event.stream_id.value() +
            "\" holds encrypted personal data, but the registry has no keys to open it with "
            "(EventRegistry::use_personal_data)");
      }
    }
    return std::nullopt;
  }
  return impl_->keys->reveal(event);
}

void EventRegistry::rename(std::string_view type, std::int32_t from_version,
                           std::string_view new_type) {
  rename(type, from_version, new_type, [](nlohmann::json data) { return data; });
}

EventRegistry::SplitTransform EventRegistry::to_split(std::string type, Transform transform) {
  return [type = std::move(type), transform = std::move(transform)](nlohmann::json data,
                                                                    const RecordedEvent& origin) {
    std::vector<SplitPart> parts;
    parts.push_back(SplitPart{type, transform(std::move(data), origin)});
    return parts;
  };
}

void EventRegistry::validate() const {
  std::vector<std::string> problems;
  for (const auto& [key, step] : impl_->steps) {
    const auto& [type, from] = key;
    if (const auto* registered = impl_->find_type(type);
        registered != nullptr && from >= registered->version) {
      problems.push_back("upcaster from " + describe(type, from) + ", but \"" + type +
                         "\" is at schema version " + std::to_string(registered->version) +
                         " already");
    }
    for (const auto& target : step.into) {
      const auto* registered = impl_->find_type(target);
      if (registered != nullptr && registered->version == from + 1) continue;
      if (impl_->find_step(target, from + 1) != nullptr) continue;
      std::string why = registered == nullptr ? "\"" + target + "\" is not a registered event type"
                                              : "\"" + target + "\" is at schema version " +
                                                    std::to_string(registered->version);
      problems.push_back("the chain from " + describe(type, from) + " stops at " +
                         describe(target, from + 1) + ": no upcaster from there, and " + why);
    }
  }
  for (const auto& [name, type] : impl_->types) {
    for (std::int32_t v = type.first; v < type.version; ++v) {
      if (impl_->find_step(name, v) == nullptr) {
        problems.push_back("\"" + name + "\" is at schema version " + std::to_string(type.version) +
                           " but has no upcaster from version " + std::to_string(v) +
                           " (if no event was ever stored as " + describe(name, v) +
                           ", declare kFirstSchemaVersion)");
      }
    }
  }
  if (problems.empty()) return;
  std::sort(problems.begin(), problems.end());
  std::ostringstream message;
  message << "event registry: " << problems.size() << " problem"
          << (problems.size() == 1 ? "" : "s") << " with upcaster chains:";
  for (const auto& p : problems) message << "\n  - " << p;
  throw InvalidArgumentError(message.str());
}

std::optional<EventTypeInfo> EventRegistry::find(std::string_view type) const {
  const auto* found = impl_->find_type(type);
  if (found == nullptr) return std::nullopt;
  return EventTypeInfo{found->name, found->version, found->first};
}

bool EventRegistry::contains_type(std::type_index type, std::string_view name) const {
  const auto found = impl_->names.find(type);
  return found != impl_->names.end() && found->second == name;
}

bool EventRegistry::is_current(std::string_view type, std::int32_t schema_version) const {
  const auto* found = impl_->find_type(type);
  return found != nullptr && found->version == schema_version;
}

std::vector<std::string> EventRegistry::source_types(std::string_view type) const {
  const auto* target = impl_->find_type(type);
  if (target == nullptr) return {};
  // Nodes are (type, version); a step (T, n) -> into leads to (U, n + 1) for each U of into.
  // Walk backwards from (type, current version): every node found is a stored form that
  // upcasts into it. Versions strictly decrease along the walk, so it ends.
  std::set<std::pair<std::string, std::int32_t>> seen;
  std::vector<std::pair<std::string, std::int32_t>> work;
  work.emplace_back(target->name, target->version);
  seen.insert(work.back());
  while (!work.empty()) {
    const auto [name, version] = work.back();
    work.pop_back();
    for (const auto& [key, step] : impl_->steps) {
      if (key.second + 1 != version) continue;
      if (std::find(step.into.begin(), step.into.end(), name) == step.into.end()) continue;
      if (seen.insert(key).second) work.push_back(key);
    }
  }
  std::set<std::string> names;
  for (const auto& node : seen) names.insert(node.first);
  return {names.begin(), names.end()};
}

void EventRegistry::throw_not_registered(std::string_view type) {
  throw InvalidArgumentError("event type \"" + std::string(type) +
                             "\" is not registered with the event registry");
}

std::vector<UpcastEvent> EventRegistry::upcast_event(const RecordedEvent& event) const {
  if (event.is_undecodable()) detail::throw_stored_undecodable(event);
  std::vector<UpcastEvent> done;
  // Depth-first, so that the parts of a split keep their order.
  std::vector<UpcastEvent> work;
  if (auto revealed = reveal(event)) {
    work.push_back(UpcastEvent{event.type, event.schema_version, std::move(*revealed)});
  } else {
    work.push_back(UpcastEvent{event.type, event.schema_version, event.data});
  }
  while (!work.empty()) {
    UpcastEvent current = std::move(work.back());
    work.pop_back();
    const auto* type = impl_->find_type(current.type);
    if (type != nullptr && type->version == current.schema_version) {
      done.push_back(std::move(current));
      continue;
    }
    const auto* step = impl_->find_step(current.type, current.schema_version);
    if (step == nullptr) {
      std::string why;
      if (type == nullptr) {
        why = "no event type of that name is registered, and no upcaster starts there";
      } else if (current.schema_version > type->version) {
        why = "this program reads \"" + type->name + "\" at schema version " +
              std::to_string(type->version) + " and has no upcaster from a newer version " +
              "(was it written by a newer release?)";
      } else {
        why = "no upcaster from that version to \"" + type->name + "\" v" +
              std::to_string(type->version);
      }
      throw UnknownEventTypeError(current.type, current.schema_version, event.stream_id.value(),
                                  event.version, why);
    }
    std::vector<SplitPart> parts;
    try {
      parts = step->transform(std::move(current.data), event);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      // nlohmann (a missing field, a wrong type) or the user's own exception.
      throw CorruptionError("upcaster from " + describe(current.type, current.schema_version) +
                            " failed on the event at " + where(event) + " (stored as " +
                            describe(event.type, event.schema_version) + "): " + e.what());
    }
    const std::int32_t next = current.schema_version + 1;
    for (auto part = parts.rbegin(); part != parts.rend(); ++part) {
      if (std::find(step->into.begin(), step->into.end(), part->type) == step->into.end()) {
        throw InvalidArgumentError(
            "upcaster from " + describe(current.type, current.schema_version) +
            " returned type \"" + part->type + "\", which it does not declare, for the event at " +
            where(event));
      }
      work.push_back(UpcastEvent{std::move(part->type), next, std::move(part->data)});
    }
  }
  return done;
}

}  // namespace annals
