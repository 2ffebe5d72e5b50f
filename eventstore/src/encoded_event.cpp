// Validation and serialization of appends, shared by every store so that all of them accept
// and refuse exactly the same input (ARCHITECTURE decisions 1 and 12).
#include "annals/eventstore/detail/encoded_event.hpp"

#include <map>
#include <set>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

#include "annals/eventstore/detail/json_text_validation.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "text_validation.hpp"

namespace annals::detail {
namespace {

std::string stream_text(const StreamId& stream) {
  return "stream " + quote_for_message(stream.value());
}

[[noreturn]] void fail_event(const StreamId& stream, std::size_t index, const std::string& what) {
  throw InvalidArgumentError("invalid event " + std::to_string(index) + " of the append to " +
                             stream_text(stream) + ": " + what);
}

std::string_view json_type_name(const nlohmann::json& value) {
  return value.type_name();  // "object", "array", "string", "number", "boolean", "null", ...
}

// What encode_json checks in a value before serializing it (dump() recurses once per level of
// nesting, so depth is checked first). The walk recurses too, but never below kMaxJsonDepth + 1
// levels: it stops descending there, and only then is the exact depth measured, iteratively.
struct JsonShape {
  bool too_deep = false;
  bool has_discarded = false;
};

void walk(const nlohmann::json& value, std::size_t depth, JsonShape& shape) {
  if (value.is_discarded()) shape.has_discarded = true;
  if (!value.is_structured()) return;
  if (depth == kMaxJsonDepth) {  // `value` would be level kMaxJsonDepth + 1
    shape.too_deep = true;
    return;
  }
  for (const auto& element : value) walk(element, depth + 1, shape);
}

JsonShape shape_of(const nlohmann::json& value) {
  JsonShape shape;
  walk(value, 0, shape);
  return shape;
}

// True when serialized JSON text holds the escape \u0000. PostgreSQL's jsonb cannot store
// U+0000 in a string, so every store refuses it up front (one contract, decision 1). In valid
// JSON a backslash only occurs inside strings and always starts a two-character escape, so
// scanning escape by escape cannot mistake an escaped backslash followed by "u0000".
bool contains_nul_escape(std::string_view json) {
  for (std::size_t at = json.find('\\'); at != std::string_view::npos;
       at = json.find('\\', at + 2)) {
    if (json.substr(at + 1, 5) == "u0000") return true;
  }
  return false;
}

// Serializes one JSON field of an event, checking what every store requires of it.
std::string encode_json(const StreamId& stream, std::size_t index, std::string_view field,
                        const nlohmann::json& value, std::size_t max_bytes) {
  const std::string name(field);
  const JsonShape shape = shape_of(value);
  if (shape.has_discarded) fail_event(stream, index, name + " holds a discarded JSON value");
  if (shape.too_deep) {
    fail_event(stream, index,
               name + " is JSON nested " + std::to_string(json_depth(value)) +
                   " levels deep, over the limit of " + std::to_string(kMaxJsonDepth) + " levels");
  }
  std::string text;
  try {
    text = value.dump();
  } catch (const nlohmann::json::type_error& e) {
    // Thrown for strings that are not valid UTF-8 (nlohmann error 316).
    fail_event(stream, index, name + " cannot be serialized as JSON: " + e.what());
  }
  if (text.size() > max_bytes) {
    fail_event(stream, index,
               name + " is " + std::to_string(text.size()) +
                   " bytes when serialized, over the limit of " + std::to_string(max_bytes) +
                   " bytes");
  }
  if (contains_nul_escape(text)) {
    fail_event(stream, index, name + " contains the character U+0000, which cannot be stored");
  }
  return text;
}

// Checks JSON text an application gave for one field of an event (NewEvent::data_json or
// metadata_json), which the store then takes as the field's serialized form, as it is: the
// same rules as encode_json's, on the text (json_text_validation.hpp), without a tree.
void check_json_text(const StreamId& stream, std::size_t index, std::string_view field,
                     const std::string& text, std::size_t max_bytes, JsonTextShape shape) {
  if (text.size() > max_bytes) {
    fail_event(stream, index,
               std::string(field) + " is " + std::to_string(text.size()) +
                   " bytes, over the limit of " + std::to_string(max_bytes) + " bytes");
  }
  if (auto problem = find_json_text_problem(text, shape)) {
    fail_event(stream, index, std::string(field) + " " + *problem);
  }
}

// `value`, moved when the events are the caller's to take (Event is non-const), else copied.
template <typename Event, typename T>
T take_or_copy(T& value) {
  if constexpr (std::is_const_v<Event>) {
    return value;
  } else {
    return std::move(value);
  }
}

// A part given as text leaves its tree at the default, an empty object: a part set in both
// forms is a mistake whichever of them the caller meant.
void check_one_form(const StreamId& stream, std::size_t index, const nlohmann::json& tree,
                    const std::optional<std::string>& text, std::string_view field) {
  if (!text.has_value() || (tree.is_object() && tree.empty())) return;
  const std::string name(field);
  fail_event(stream, index,
             "it sets both " + name + " and " + name + "_json; set one of them (" + name +
                 " stays an empty object when " + name + "_json is set)");
}

void check_type(const StreamId& stream, std::size_t index, const std::string& type) {
  if (auto problem = find_type_problem(type)) fail_event(stream, index, *problem);
}

// encode_events, for `Event` = const NewEvent (copying types and JSON text) or NewEvent (moving
// them out of `events`).
template <typename Event>
std::vector<EncodedEvent> encode(const StreamId& stream, std::span<Event> events,
                                 const AppendLimits& limits) {
  if (events.empty()) {
    throw InvalidArgumentError("invalid append to " + stream_text(stream) + ": it has no events");
  }
  if (events.size() > limits.max_events_per_append) {
    throw InvalidArgumentError("invalid append to " + stream_text(stream) + ": it has " +
                               std::to_string(events.size()) + " events, over the limit of " +
                               std::to_string(limits.max_events_per_append));
  }

  std::map<EventId, std::size_t> supplied_ids;  // id -> index of the event that carries it
  std::vector<EncodedEvent> encoded;
  encoded.reserve(events.size());
  for (std::size_t index = 0; index < events.size(); ++index) {
    Event& event = events[index];
    check_type(stream, index, event.type);
    if (events.size() > 1 && event.type == kStreamDeletedType) {
      fail_event(stream, index,
                 "the type \"" + std::string(kStreamDeletedType) +
                     "\" is reserved for the tombstone of delete_stream, which is appended alone");
    }
    if (event.schema_version < 1) {
      fail_event(stream, index,
                 "schema_version must be >= 1, got " + std::to_string(event.schema_version));
    }
    check_one_form(stream, index, event.data, event.data_json, "data");
    check_one_form(stream, index, event.metadata, event.metadata_json, "metadata");
    if (!event.metadata.is_object()) {
      fail_event(
          stream, index,
          "metadata must be a JSON object, got " + std::string(json_type_name(event.metadata)));
    }
    EncodedEvent out;
    if (event.id.has_value()) {
      if (event.id->is_nil()) fail_event(stream, index, "event id is the nil UUID");
      const auto [previous, inserted] = supplied_ids.emplace(*event.id, index);
      if (!inserted) {
        fail_event(stream, index,
                   "event id " + event.id->to_string() + " is also the id of event " +
                       std::to_string(previous->second));
      }
      out.id = *event.id;
    } else {
      out.id = EventId::generate();
    }
    out.schema_version = event.schema_version;
    if (event.data_json) {
      check_json_text(stream, index, "data_json", *event.data_json, limits.max_data_bytes,
                      JsonTextShape::kAnyValue);
      out.data = take_or_copy<Event>(*event.data_json);
    } else {
      out.data = encode_json(stream, index, "data", event.data, limits.max_data_bytes);
    }
    if (event.metadata_json) {
      check_json_text(stream, index, "metadata_json", *event.metadata_json,
                      limits.max_metadata_bytes, JsonTextShape::kObject);
      out.metadata = take_or_copy<Event>(*event.metadata_json);
    } else {
      out.metadata =
          encode_json(stream, index, "metadata", event.metadata, limits.max_metadata_bytes);
    }
    out.type = take_or_copy<Event>(event.type);
    encoded.push_back(std::move(out));
  }
  return encoded;
}

}  // namespace

std::vector<EncodedEvent> encode_events(const StreamId& stream, const std::vector<NewEvent>& events,
                                        const AppendLimits& limits) {
  return encode(stream, std::span<const NewEvent>(events), limits);
}

std::vector<EncodedEvent> encode_events(const StreamId& stream, std::vector<NewEvent>&& events,
                                        const AppendLimits& limits) {
  return encode(stream, std::span<NewEvent>(events), limits);
}

void validate_multi_append(const std::vector<StreamAppend>& appends, const AppendLimits& limits) {
  if (appends.empty()) throw InvalidArgumentError("invalid multi-stream append: it has no streams");

  std::set<std::string_view> streams;
  std::size_t total = 0;
  for (const StreamAppend& append : appends) {
    if (!streams.insert(append.stream_id.value()).second) {
      throw InvalidArgumentError("invalid multi-stream append: " + stream_text(append.stream_id) +
                                 " appears more than once");
    }
    total += append.events.size();
  }
  if (total > limits.max_events_per_append) {
    throw InvalidArgumentError("invalid multi-stream append: it has " + std::to_string(total) +
                               " events, over the limit of " +
                               std::to_string(limits.max_events_per_append));
  }

  struct Location {
    const StreamAppend* append;
    std::size_t index;
  };
  std::map<EventId, Location> supplied_ids;
  for (const StreamAppend& append : appends) {
    for (std::size_t index = 0; index < append.events.size(); ++index) {
      const auto& id = append.events[index].id;
      if (!id.has_value() || id->is_nil()) continue;  // nil ids are refused by encode_events
      const auto [previous, inserted] = supplied_ids.emplace(*id, Location{&append, index});
      if (!inserted) {
        fail_event(append.stream_id, index,
                   "event id " + id->to_string() + " is also the id of event " +
                       std::to_string(previous->second.index) + " of " +
                       stream_text(previous->second.append->stream_id));
      }
    }
  }
}

void throw_changed_resend(const StreamId& stream, StreamVersion version, const EventId& id,
                          unsigned parts) {
  std::string what;
  const auto add = [&](unsigned part, const char* name) {
    if ((parts & part) == 0) return;
    if (!what.empty()) what += ", ";
    what += name;
  };
  add(kChangedType, "event type");
  add(kChangedSchemaVersion, "schema version");
  add(kChangedData, "data");
  add(kChangedMetadata, "metadata");
  if (what.empty()) what = "content";
  throw IdempotencyError("event " + id.to_string() + " is already stored in " +
                             stream_text(stream) + " at version " + std::to_string(version) +
                             " with a different " + what +
                             ": a re-send with stored event ids must carry exactly the stored "
                             "events (not an idempotent re-send); nothing written",
                         stream.value(), version);
}

}  // namespace annals::detail
