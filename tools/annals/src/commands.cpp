#include "commands.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <istream>
#include <iterator>
#include <limits>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "json_output.hpp"

namespace annals::cli {
namespace {

// nlohmann prefixes messages with "[json.exception.parse_error.101] "; users need the rest.
std::string without_exception_tag(const std::string& message) {
  const auto end = message.find("] ");
  return message.rfind("[json.exception.", 0) == 0 && end != std::string::npos
             ? message.substr(end + 2)
             : message;
}

std::size_t limit_of(const std::optional<std::int64_t>& limit) {
  if (!limit) return std::numeric_limits<std::size_t>::max();
  if (*limit < 0) throw InvalidArgumentError("--limit must be >= 0, got " + std::to_string(*limit));
  return static_cast<std::size_t>(*limit);
}

std::size_t page_size_of(std::size_t page_size) { return std::max<std::size_t>(page_size, 1); }

// Prints one event upcast by `registry`, one line per part; returns 1 when it could not be
// decoded or upcast, else 0. `only`: the types asked for (--type); an event stored under one
// of them prints every part, one read because it upcasts into one of them (an old name) only
// the parts of those types.
std::size_t print_upcast(const RecordedEvent& event, const EventRegistry& registry,
                         const std::vector<std::string>& only, std::ostream& out) {
  const auto asked = [&only](const std::string& type) {
    return only.empty() || std::find(only.begin(), only.end(), type) != only.end();
  };
  const bool stored_asked = asked(event.type);
  if (registry.is_current(event.type, event.schema_version)) {
    // At its current schema: printed exactly as the stock tool prints it (the stored text).
    if (stored_asked) out << to_json_line(event) << '\n';
    return 0;
  }
  std::vector<UpcastEvent> parts;
  try {
    parts = registry.upcast_event(event);
  } catch (const Error& error) {
    out << upcast_error_json_line(event, error.what()) << '\n';
    return 1;
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (!stored_asked && !asked(parts[i].type)) continue;
    out << to_json_line(event, parts[i], i, parts.size()) << '\n';
  }
  return 0;
}

// Prints the first `count` events (upcast when there is a registry); returns how many of them
// are undecodable.
std::size_t print_events(const std::vector<RecordedEvent>& events, std::size_t count,
                         std::ostream& out, const EventRegistry* registry,
                         const std::vector<std::string>& only = {}) {
  std::size_t undecodable = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (registry != nullptr && !events[i].is_undecodable()) {
      undecodable += print_upcast(events[i], *registry, only, out);
      continue;
    }
    out << to_json_line(events[i]) << '\n';
    if (events[i].is_undecodable()) ++undecodable;
  }
  return undecodable;
}

}  // namespace

nlohmann::json parse_json_argument(const std::string& text, const std::string& what) {
  check_json_text_depth(text, what);  // before anything that could recurse through the value
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgumentError(what + " is not valid JSON: " + without_exception_tag(e.what()));
  }
}

void append(EventWriter& store, const AppendArgs& args, std::istream& in, std::ostream& out) {
  const StreamId stream{args.stream};
  const auto expected = ExpectedVersion::parse(args.expected_version);
  if (args.schema_version < 1 || args.schema_version > std::numeric_limits<std::int32_t>::max()) {
    throw InvalidArgumentError("--schema-version must be between 1 and 2147483647, got " +
                               std::to_string(args.schema_version));
  }

  NewEvent event;
  // Choosing the id here, not in the store, lets a commit-in-doubt error name the id to re-send.
  event.id = args.event_id ? EventId::parse(*args.event_id) : EventId::generate();
  event.type = args.type;
  event.schema_version = static_cast<std::int32_t>(args.schema_version);
  if (args.data_json) {
    event.data = parse_json_argument(*args.data_json, "DATA_JSON");
  } else {
    // Through a stream buffer copy rather than istreambuf_iterator, which g++ 12 -O3 flags
    // with a false -Wnull-dereference inside libstdc++.
    std::ostringstream buffer;
    if (in.rdbuf() != nullptr) buffer << in.rdbuf();
    const std::string text = buffer.str();
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
      throw InvalidArgumentError("no event data: give DATA_JSON or pipe JSON on stdin");
    }
    event.data = parse_json_argument(text, "the event data on stdin");
  }
  if (args.metadata_json) {
    event.metadata = parse_json_argument(*args.metadata_json, "--metadata");
    if (!event.metadata.is_object()) throw InvalidArgumentError("--metadata must be a JSON object");
  }

  const auto id = event.id->to_string();
  std::vector<NewEvent> events;
  events.push_back(std::move(event));
  try {
    out << to_json_line(store.append(stream, expected, std::move(events))) << '\n';
  } catch (const OutcomeUnknownError& e) {
    throw OutcomeUnknownError(std::string(e.what()) + " (the append may have been written; run " +
                              "the same command with --event-id " + id + " to complete it safely)");
  }
}

std::size_t read(EventReader& store, const ReadArgs& args, std::ostream& out,
                 const EventRegistry* registry) {
  const StreamId stream{args.stream};
  if (args.from && *args.from < 1) {
    throw InvalidArgumentError("--from must be a version >= 1, got " + std::to_string(*args.from));
  }
  auto remaining = limit_of(args.limit);
  const auto page = page_size_of(args.page_size);

  ReadStreamOptions options;
  options.direction = args.backward ? ReadDirection::kBackward : ReadDirection::kForward;
  options.from = args.from;
  std::size_t undecodable = 0;
  while (remaining > 0) {
    options.max_count = std::min(remaining, page);
    const auto events = store.read_stream(stream, options);
    const auto count = std::min(events.size(), options.max_count);
    undecodable += print_events(events, count, out, registry);
    if (count < options.max_count) break;  // a stream read comes back short only at its end
    remaining -= count;
    const auto last = events[count - 1].version;
    if (args.backward && last <= 1) break;
    options.from = args.backward ? last - 1 : last + 1;
  }
  return undecodable;
}

std::size_t read_all(EventReader& store, const ReadAllArgs& args, std::ostream& out,
                     const EventRegistry* registry) {
  ReadAllOptions options;
  if (args.from) options.after = Position::parse(*args.from);
  if (args.category) {
    if (args.category->empty()) throw InvalidArgumentError("--category must not be empty");
    options.filter.category = *args.category;
  }
  for (const auto& type : args.types) {
    if (type.empty()) throw InvalidArgumentError("--type must not be empty");
  }
  options.filter.event_types = args.types;
  if (registry != nullptr) {
    // Each type also selects the stored names that upcast into it (renamed, split).
    for (const auto& type : args.types) {
      for (auto& source : registry->source_types(type)) {
        if (std::find(options.filter.event_types.begin(), options.filter.event_types.end(),
                      source) == options.filter.event_types.end()) {
          options.filter.event_types.push_back(std::move(source));
        }
      }
    }
  }
  auto remaining = limit_of(args.limit);
  const auto page = page_size_of(args.page_size);

  // A filtered or still-settling page may come back short, so only an empty page ends the log.
  std::size_t undecodable = 0;
  while (remaining > 0) {
    options.max_count = std::min(remaining, page);
    const auto events = store.read_all(options);
    if (events.empty()) break;
    const auto count = std::min(events.size(), options.max_count);
    undecodable += print_events(events, count, out, registry, args.types);
    remaining -= count;
    options.after = events[count - 1].position;
  }
  return undecodable;
}

void migrate(const std::string& connection_string, const MigrateArgs& args, std::ostream& out) {
  if (args.status_only) {
    for (const auto& m : postgres::migration_status(connection_string)) {
      out << (m.applied ? "applied  " : "pending  ") << m.name << '\n';
    }
    return;
  }
  postgres::MigrateOptions options;
  if (args.roles) options.roles = args.layout;
  // Range-checked by the parser (0 to a week).
  options.step_timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::llround(args.step_timeout_seconds * 1000)));
  const auto applied = postgres::migrate(connection_string, options);
  for (const auto& name : applied) out << "applied " << name << '\n';
  if (applied.empty()) out << "schema is up to date\n";
  if (args.roles) {
    const auto& l = args.layout;
    out << "roles: owner " << l.owner << ", writer " << l.writer << ", reader " << l.reader
        << ", auditor " << l.auditor << "; read models in schema "
        << (l.read_model_schema.empty() ? std::string("(none)") : l.read_model_schema) << '\n';
  }
}

}  // namespace annals::cli
