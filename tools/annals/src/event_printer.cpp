#include "event_printer.hpp"

#include <algorithm>
#include <ostream>
#include <utility>

#include "annals/eventstore/detail/stored_json.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/timestamp.hpp"
#include "annals/framework/event_registry.hpp"
#include "json_output.hpp"

namespace annals::cli {
namespace {

// The human form shows the start of the data; the JSON form always has all of it.
constexpr std::size_t kHumanDataWidth = 120;

std::string shortened(std::string text) {
  if (text.size() <= kHumanDataWidth) return text;
  std::size_t cut = kHumanDataWidth;
  // Never cut inside a UTF-8 sequence: back up to the first byte of one.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) --cut;
  text.resize(cut);
  return text + "...";
}

std::string data_text(const LazyJson& value) {
  const auto text = value.text();
  return text ? annals::detail::compact_stored_json(*text)
              : value->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

EventPrinter::EventPrinter(std::ostream& out, PrintOptions options)
    : out_(out),
      options_(std::move(options)),
      stored_types_(with_stored_names(options_.types, options_.registry)) {}

bool EventPrinter::asked(const std::string& type) const {
  return options_.types.empty() ||
         std::find(options_.types.begin(), options_.types.end(), type) != options_.types.end();
}

bool EventPrinter::stored_as_asked(const std::string& type) const {
  return stored_types_.empty() ||
         std::find(stored_types_.begin(), stored_types_.end(), type) != stored_types_.end();
}

bool EventPrinter::in_time_range(const RecordedEvent& event) const {
  return (!options_.since || event.recorded_at >= *options_.since) &&
         (!options_.until || event.recorded_at <= *options_.until);
}

bool EventPrinter::print(const RecordedEvent& event) {
  if (!in_time_range(event)) return false;
  if (event.is_undecodable()) {
    if (!stored_as_asked(event.type)) return false;
    const auto& failure = *event.decode_failure;
    if (options_.human) {
      print_line(event, event.type, failure.data, "undecodable: " + failure.reason);
    } else {
      out_ << to_json_line(event) << '\n';
    }
    ++printed_;
    ++undecodable_;
    return true;
  }
  if (options_.registry != nullptr &&
      !options_.registry->is_current(event.type, event.schema_version)) {
    return print_upcast(event);
  }
  if (!asked(event.type)) return false;
  if (options_.human) {
    print_line(event, event.type, data_text(event.data), "");
  } else {
    out_ << to_json_line(event) << '\n';
  }
  ++printed_;
  return true;
}

// An event stored under an older schema or name, upcast by the registry: one line per part.
// Stored under an asked type: every part; else only the parts of asked types.
bool EventPrinter::print_upcast(const RecordedEvent& event) {
  std::vector<UpcastEvent> parts;
  try {
    parts = options_.registry->upcast_event(event);
  } catch (const Error& error) {
    if (!stored_as_asked(event.type)) return false;
    if (options_.human) {
      print_line(event, event.type, data_text(event.data),
                 std::string("upcast error: ") + error.what());
    } else {
      out_ << upcast_error_json_line(event, error.what()) << '\n';
    }
    ++printed_;
    ++undecodable_;
    return true;
  }
  const bool stored_asked = asked(event.type);
  bool any = false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (!stored_asked && !asked(parts[i].type)) continue;
    if (options_.human) {
      print_line(event, parts[i].type,
                 parts[i].data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                 "upcast from " + event.type + " v" + std::to_string(event.schema_version));
    } else {
      out_ << to_json_line(event, parts[i], i, parts.size()) << '\n';
    }
    any = true;
  }
  if (any) ++printed_;
  return any;
}

// "<position>  <recorded_at>  <stream>@<version>  <type>  <data>  (<note>)".
void EventPrinter::print_line(const RecordedEvent& event, const std::string& type,
                              const std::string& data_json, const std::string& note) {
  std::string line;
  if (options_.with_position) line += event.position.to_string() + "  ";
  line += format_timestamp(event.recorded_at) + "  " + event.stream_id.value() + "@" +
          std::to_string(event.version) + "  " + type + "  " + shortened(data_json);
  if (!note.empty()) line += "  (" + note + ")";
  out_ << line << '\n';
}

std::vector<std::string> with_stored_names(const std::vector<std::string>& types,
                                           const EventRegistry* registry) {
  std::vector<std::string> names = types;
  if (registry == nullptr) return names;
  for (const auto& type : types) {
    for (auto& source : registry->source_types(type)) {
      if (std::find(names.begin(), names.end(), source) == names.end()) {
        names.push_back(std::move(source));
      }
    }
  }
  return names;
}

std::chrono::system_clock::time_point parse_time_flag(const std::string& flag,
                                                      const std::string& text) {
  try {
    return parse_timestamp(text);
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(flag + ": " + e.what());
  }
}

}  // namespace annals::cli
