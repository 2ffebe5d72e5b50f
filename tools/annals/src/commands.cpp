#include "commands.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <istream>
#include <iterator>
#include <limits>
#include <mutex>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "event_printer.hpp"
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

// The printer of `read`, `read-all` and `tail`: their shared output flags, checked.
PrintOptions print_options(const EventOutputArgs& args, const EventRegistry* registry,
                           bool with_position) {
  for (const auto& type : args.types) {
    if (type.empty()) throw InvalidArgumentError("--type must not be empty");
  }
  PrintOptions options{.registry = registry,
                       .types = args.types,
                       .human = args.human && !args.json,
                       .with_position = with_position};
  if (args.since) options.since = parse_time_flag("--since", *args.since);
  if (args.until) options.until = parse_time_flag("--until", *args.until);
  if (options.since && options.until && *options.until < *options.since) {
    throw InvalidArgumentError("--until (" + *args.until + ") is before --since (" + *args.since +
                               ")");
  }
  return options;
}

// The server-side filter of read-all and tail: the category, and each --type with the stored
// names that upcast into it (renamed, split) when there is a registry.
EventFilter log_filter(const ReadAllArgs& args, const EventRegistry* registry) {
  EventFilter filter;
  if (args.category) {
    if (args.category->empty()) throw InvalidArgumentError("--category must not be empty");
    filter.category = *args.category;
  }
  filter.event_types = with_stored_names(args.output.types, registry);
  return filter;
}

// --as-of and --at-version of `read`: where the stream as it was ends.
struct StreamCut {
  std::optional<std::chrono::system_clock::time_point> as_of;
  std::optional<std::int64_t> at_version;

  [[nodiscard]] bool after_cut(const RecordedEvent& event) const {
    return (at_version && event.version > *at_version) || (as_of && event.recorded_at > *as_of);
  }
};

StreamCut stream_cut(const ReadArgs& args) {
  if (args.as_of && args.at_version) {
    throw InvalidArgumentError("give --as-of or --at-version, not both");
  }
  StreamCut cut;
  if (args.as_of) cut.as_of = parse_time_flag("--as-of", *args.as_of);
  if (args.at_version) {
    if (*args.at_version < 0) {
      throw InvalidArgumentError("--at-version must be >= 0, got " +
                                 std::to_string(*args.at_version));
    }
    cut.at_version = *args.at_version;
  }
  return cut;
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
  const auto limit = limit_of(args.limit);
  const auto page = page_size_of(args.page_size);
  const auto cut = stream_cut(args);
  EventPrinter printer(out, print_options(args.output, registry, false));

  ReadStreamOptions options;
  options.direction = args.backward ? ReadDirection::kBackward : ReadDirection::kForward;
  options.from = args.from;
  if (args.backward && cut.at_version) {
    if (*cut.at_version == 0) return 0;
    options.from = std::min(args.from.value_or(*cut.at_version), *cut.at_version);
  }
  while (printer.printed() < limit) {
    options.max_count = page;
    const auto events = store.read_stream(stream, options);
    for (const auto& event : events) {
      if (cut.after_cut(event)) {
        if (!args.backward) return printer.undecodable();  // the rest is later still
        continue;  // backward: newer than the cut; older events follow
      }
      printer.print(event);
      if (printer.printed() >= limit) break;
    }
    if (events.size() < page) break;  // a stream read comes back short only at its end
    const auto last = events.back().version;
    if (args.backward && last <= 1) break;
    options.from = args.backward ? last - 1 : last + 1;
  }
  return printer.undecodable();
}

std::size_t read_all(EventReader& store, const ReadAllArgs& args, std::ostream& out,
                     const EventRegistry* registry) {
  ReadAllOptions options;
  if (args.from) options.after = Position::parse(*args.from);
  options.filter = log_filter(args, registry);
  const auto limit = limit_of(args.limit);
  EventPrinter printer(out, print_options(args.output, registry, true));

  // A filtered or still-settling page may come back short, so only an empty page ends the log.
  while (printer.printed() < limit) {
    options.max_count = page_size_of(args.page_size);
    const auto events = store.read_all(options);
    if (events.empty()) break;
    for (const auto& event : events) {
      printer.print(event);
      if (printer.printed() >= limit) break;
    }
    options.after = events.back().position;
  }
  return printer.undecodable();
}

std::size_t follow_all(EventStore& store, const ReadAllArgs& args, std::ostream& out,
                       const EventRegistry* registry, const std::function<bool()>& interrupted,
                       const std::function<void(RecordedEvent&)>& reveal) {
  if (args.output.until) {
    throw InvalidArgumentError("--until cannot be combined with --follow (a live tail has no end)");
  }
  SubscriptionOptions options;
  if (args.from) options.after = Position::parse(*args.from);
  options.filter = log_filter(args, registry);
  options.name = "annals-tail";
  const auto limit = limit_of(args.limit);
  EventPrinter printer(out, print_options(args.output, registry, true));

  // The handler runs on the subscription's thread; the printer is touched only there until
  // the subscription has stopped.
  std::mutex mutex;
  std::condition_variable changed;
  bool enough = limit == 0;
  const auto subscription = store.subscribe(options, [&](const RecordedEvent& event) {
    std::lock_guard lock(mutex);
    if (enough) return;
    bool printed = false;
    if (reveal) {
      auto revealed = event;
      reveal(revealed);
      printed = printer.print(revealed);
    } else {
      printed = printer.print(event);
    }
    if (printed) out.flush();
    if (printer.printed() >= limit) {
      enough = true;
      changed.notify_all();
    }
  });
  {
    std::unique_lock lock(mutex);
    while (!enough && subscription->is_running() && !interrupted()) {
      changed.wait_for(lock, std::chrono::milliseconds(100));
    }
  }
  subscription->stop();
  std::lock_guard lock(mutex);
  if (!enough && !interrupted()) {
    if (const auto reason = subscription->stop_reason()) std::rethrow_exception(reason);
  }
  return printer.undecodable();
}

namespace {

void print_migration_status(const std::string& connection_string, bool json, std::ostream& out) {
  for (const auto& m : postgres::migration_status(connection_string)) {
    if (json) {
      out << nlohmann::ordered_json{{"name", m.name}, {"applied", m.applied}}.dump() << '\n';
    } else {
      out << (m.applied ? "applied  " : "pending  ") << m.name << '\n';
    }
  }
}

nlohmann::ordered_json roles_json(const postgres::RoleLayout& l) {
  return {{"owner", l.owner},
          {"writer", l.writer},
          {"reader", l.reader},
          {"auditor", l.auditor},
          {"read_model_schema", l.read_model_schema}};
}

}  // namespace

void migrate(const std::string& connection_string, const MigrateArgs& args, std::ostream& out) {
  if (args.status_only) {
    print_migration_status(connection_string, args.json, out);
    return;
  }
  postgres::MigrateOptions options;
  if (args.roles) options.roles = args.layout;
  if (args.partitioned_log) options.partitioned_log = args.partition_size;
  // Range-checked by the parser (0 to a week).
  options.step_timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::llround(args.step_timeout_seconds * 1000)));
  const auto applied = postgres::migrate(connection_string, options);
  if (args.json) {
    nlohmann::ordered_json j{{"applied", applied}, {"roles", nullptr}};
    if (args.roles) j["roles"] = roles_json(args.layout);
    if (args.partitioned_log) j["partition_size"] = args.partition_size;
    out << j.dump() << '\n';
    return;
  }
  for (const auto& name : applied) out << "applied " << name << '\n';
  if (applied.empty()) out << "schema is up to date\n";
  if (args.roles) {
    const auto& l = args.layout;
    out << "roles: owner " << l.owner << ", writer " << l.writer << ", reader " << l.reader
        << ", auditor " << l.auditor << "; read models in schema "
        << (l.read_model_schema.empty() ? std::string("(none)") : l.read_model_schema) << '\n';
  }
  if (args.partitioned_log) {
    out << "log partitioned by ranges of " << args.partition_size << " positions\n";
  }
}

}  // namespace annals::cli
