#include "json_output.hpp"

#include <nlohmann/json.hpp>

#include "annals/eventstore/detail/stored_json.hpp"
#include "annals/framework/event_registry.hpp"

namespace annals::cli {
namespace {

// Stored strings are valid UTF-8 (stream ids and JSON are validated on append); replacing
// invalid bytes rather than throwing keeps a damaged row printable for an auditor (an
// undecodable event's stored text).
std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string quoted(const std::string& text) { return dump(nlohmann::json(text)); }

// A value as compact JSON text. An event read from PostgreSQL holds its stored text (jsonb's
// form: a space after each ':' and ','); dropping the blanks outside strings prints it as
// before without building the value and dumping it again (issue 14). Keys stay in jsonb's
// order, which is what was stored. The text was checked on read: valid JSON and UTF-8.
std::string compact(const LazyJson& value) {
  const auto text = value.text();
  return text ? annals::detail::compact_stored_json(*text) : dump(*value);
}

}  // namespace

std::string to_json_line(const AppendResult& result) {
  return "{\"stream\":" + quoted(result.stream_id.value()) +
         ",\"first_version\":" + std::to_string(result.first_version) +
         ",\"last_version\":" + std::to_string(result.last_version) +
         ",\"position\":" + quoted(result.position.to_string()) + "}";
}

namespace {

// Stored JSON text as a JSON value: itself when it parses, else (not JSON, or nested deeper
// than kMaxJsonDepth) as a string.
std::string stored_json(const std::string& text) {
  try {
    return dump(detail::parse_stored_json(text));
  } catch (const nlohmann::json::exception&) {
    return quoted(text);
  } catch (const InvalidArgumentError&) {
    return quoted(text);
  }
}

// An event the store could not decode, printed as stored, with the reason last.
std::string undecodable_json_line(const RecordedEvent& event) {
  const DecodeFailure& stored = *event.decode_failure;
  return "{\"stream\":" + quoted(stored.stream_id) +
         ",\"version\":" + std::to_string(event.version) +
         ",\"position\":" + quoted(event.position.to_string()) +
         ",\"event_id\":" + quoted(event.id.to_string()) + ",\"type\":" + quoted(stored.type) +
         ",\"schema_version\":" + std::to_string(event.schema_version) +
         ",\"data\":" + stored_json(stored.data) + ",\"metadata\":" + stored_json(stored.metadata) +
         ",\"recorded_at\":" + quoted(format_timestamp(event.recorded_at)) +
         ",\"undecodable\":" + quoted(stored.reason) + "}";
}

}  // namespace

std::string to_json_line(const RecordedEvent& event) {
  if (event.is_undecodable()) return undecodable_json_line(event);
  return "{\"stream\":" + quoted(event.stream_id.value()) +
         ",\"version\":" + std::to_string(event.version) +
         ",\"position\":" + quoted(event.position.to_string()) +
         ",\"event_id\":" + quoted(event.id.to_string()) + ",\"type\":" + quoted(event.type) +
         ",\"schema_version\":" + std::to_string(event.schema_version) +
         ",\"data\":" + compact(event.data) + ",\"metadata\":" + compact(event.metadata) +
         ",\"recorded_at\":" + quoted(format_timestamp(event.recorded_at)) + "}";
}

std::string to_json_line(const RecordedEvent& event, const UpcastEvent& part, std::size_t index,
                         std::size_t parts) {
  std::string line = "{\"stream\":" + quoted(event.stream_id.value()) +
                     ",\"version\":" + std::to_string(event.version) +
                     ",\"position\":" + quoted(event.position.to_string()) +
                     ",\"event_id\":" + quoted(event.id.to_string()) +
                     ",\"type\":" + quoted(part.type) +
                     ",\"schema_version\":" + std::to_string(part.schema_version) +
                     ",\"data\":" + dump(part.data) + ",\"metadata\":" + compact(event.metadata) +
                     ",\"recorded_at\":" + quoted(format_timestamp(event.recorded_at));
  if (part.type != event.type || part.schema_version != event.schema_version) {
    line += ",\"stored_type\":" + quoted(event.type) +
            ",\"stored_schema_version\":" + std::to_string(event.schema_version);
  }
  if (parts > 1) {
    line += ",\"part\":" + std::to_string(index) + ",\"parts\":" + std::to_string(parts);
  }
  return line + "}";
}

std::string upcast_error_json_line(const RecordedEvent& event, const std::string& reason) {
  std::string line = to_json_line(event);
  line.pop_back();  // the closing brace
  return line + ",\"upcast_error\":" + quoted(reason) + "}";
}

std::string to_json_line(const ConcurrencyError& error) {
  return "{\"error\":\"concurrency\",\"stream\":" + quoted(error.stream()) +
         ",\"expected\":" + quoted(error.expected()) +
         ",\"actual\":" + (error.actual() ? std::to_string(*error.actual()) : std::string("null")) +
         "}";
}

}  // namespace annals::cli
