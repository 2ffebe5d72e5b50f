#include "inspect_commands.hpp"

#include <cstdio>
#include <ostream>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/timestamp.hpp"
#include "annals/postgres/inspect.hpp"
#include "text_table.hpp"

namespace annals::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// 12897280 -> "12.3 MiB".
std::string human_bytes(std::int64_t bytes) {
  constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, kUnits[unit]);
  return text;
}

std::string per_second(std::int64_t events, double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f/s", static_cast<double>(events) / seconds);
  return text;
}

double rate(std::int64_t events, double seconds) { return static_cast<double>(events) / seconds; }

}  // namespace

void streams(const std::string& connection_string, const StreamsArgs& args, std::ostream& out) {
  if (args.limit < 0) {
    throw InvalidArgumentError("--limit must be >= 0, got " + std::to_string(args.limit));
  }
  postgres::StreamListOptions options{.category = args.category,
                                      .prefix = args.prefix,
                                      .after = args.after,
                                      .limit = static_cast<std::size_t>(args.limit)};
  const auto listed = postgres::list_streams(connection_string, options);
  if (args.json) {
    for (const auto& s : listed) {
      Json j;
      j["stream"] = s.stream;
      j["version"] = s.version;
      j["events"] = s.events;
      j["created"] = format_timestamp(s.created);
      j["updated"] = format_timestamp(s.updated);
      j["last_type"] = s.last_type;
      j["deleted"] = s.deleted;
      out << dump(j) << '\n';
    }
    return;
  }
  if (listed.empty()) {
    out << "no streams\n";
    return;
  }
  std::vector<std::vector<std::string>> rows{
      {"STREAM", "VERSION", "EVENTS", "CREATED", "UPDATED", "DELETED", "LAST TYPE"}};
  for (const auto& s : listed) {
    rows.push_back({table_cell(s.stream), std::to_string(s.version), std::to_string(s.events),
                    format_timestamp(s.created), format_timestamp(s.updated),
                    s.deleted ? "yes" : "no", table_cell(s.last_type)});
  }
  print_table(rows, out);
  if (listed.size() == options.limit) {
    out << "(first " << listed.size() << "; continue with --after '" << listed.back().stream
        << "')\n";
  }
}

void stats(const std::string& connection_string, const StatsArgs& args, std::ostream& out) {
  if (args.top < 0) {
    throw InvalidArgumentError("--top must be >= 0, got " + std::to_string(args.top));
  }
  const auto s = postgres::store_stats(connection_string, static_cast<std::size_t>(args.top));
  if (args.json) {
    Json j;
    j["events"] = s.events;
    j["streams"] = s.streams;
    j["bytes"] = s.bytes;
    j["head"] = s.head.to_string();
    j["events_last_minute"] = s.events_last_minute;
    j["events_last_hour"] = s.events_last_hour;
    j["rate_last_minute"] = rate(s.events_last_minute, 60.0);
    j["rate_last_hour"] = rate(s.events_last_hour, 3600.0);
    j["top_categories"] = Json::array();
    for (const auto& c : s.top_categories) {
      j["top_categories"].push_back(
          Json{{"category", c.category}, {"events", c.events}, {"streams", c.streams}});
    }
    out << dump(j) << '\n';
    return;
  }
  print_table({{"events", std::to_string(s.events)},
               {"streams", std::to_string(s.streams)},
               {"bytes", human_bytes(s.bytes) + " (" + std::to_string(s.bytes) + ")"},
               {"head", s.head.to_string()},
               {"last minute", std::to_string(s.events_last_minute) + " events (" +
                                   per_second(s.events_last_minute, 60.0) + ")"},
               {"last hour", std::to_string(s.events_last_hour) + " events (" +
                                 per_second(s.events_last_hour, 3600.0) + ")"}},
              out);
  if (s.top_categories.empty()) return;
  out << '\n';
  std::vector<std::vector<std::string>> rows{{"CATEGORY", "EVENTS", "STREAMS"}};
  for (const auto& c : s.top_categories) {
    rows.push_back({table_cell(c.category), std::to_string(c.events), std::to_string(c.streams)});
  }
  print_table(rows, out);
}

}  // namespace annals::cli
