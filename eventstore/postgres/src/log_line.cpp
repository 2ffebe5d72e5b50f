#include "log_line.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "annals/eventstore/detail/json_text_validation.hpp"
#include "annals/eventstore/detail/stored_json.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/eventstore/timestamp.hpp"
#include "annals/eventstore/types.hpp"

namespace annals::postgres::detail {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The index after the JSON string that starts at `at` (a '"'), or npos when unterminated.
std::size_t skip_string(std::string_view s, std::size_t at) {
  for (std::size_t i = at + 1; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// The index after the JSON value that starts at `at`, or npos when it does not end.
std::size_t skip_value(std::string_view s, std::size_t at) {
  if (at >= s.size()) return std::string_view::npos;
  if (s[at] == '"') return skip_string(s, at);
  if (s[at] == '{' || s[at] == '[') {
    int depth = 0;
    for (std::size_t i = at; i < s.size(); ++i) {
      const char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        --i;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return std::string_view::npos;
  }
  std::size_t i = at;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_blank(s[i])) ++i;
  return i == at ? std::string_view::npos : i;
}

std::size_t skip_blanks(std::string_view s, std::size_t i) {
  while (i < s.size() && is_blank(s[i])) ++i;
  return i;
}

[[noreturn]] void bad_line(const std::string& why) {
  throw InvalidArgumentError("not an exported event: " + why);
}

std::string string_value(std::string_view raw, const char* key) {
  // Most values (ids, hashes, times, most stream ids) are printable ASCII without escapes: the
  // text between the quotes is the value. Anything else goes through the full JSON parser.
  if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') {
    const auto inner = raw.substr(1, raw.size() - 2);
    if (std::all_of(inner.begin(), inner.end(),
                    [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; })) {
      return std::string(inner);
    }
  }
  try {
    const auto value = nlohmann::json::parse(raw);
    if (value.is_string()) return value.get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  bad_line(std::string("\"") + key + "\" must be a string");
}

template <typename Int>
Int int_value(std::string_view raw, const char* key) {
  Int value{};
  const auto [end, error] = std::from_chars(raw.data(), raw.data() + raw.size(), value);
  if (error != std::errc() || end != raw.data() + raw.size()) {
    bad_line(std::string("\"") + key + "\" must be an integer");
  }
  return value;
}

bool all_of_chars(std::string_view text, const char* allowed) {
  return !text.empty() && text.find_first_not_of(allowed) == std::string_view::npos;
}

// The columns an export writes in their one canonical text form (a position, a lower-case
// UUID, a decimal transaction id, 64 lower-case hex digits) must arrive in that form: anything
// else was edited, and writing it back would not give the same line.
void check_canonical_columns(const LogLine& line) {
  try {
    if (Position::parse(line.position).to_string() != line.position) {
      bad_line("\"position\" is not in its canonical form: " + line.position.substr(0, 40));
    }
    if (EventId::parse(line.event_id).to_string() != line.event_id) {
      bad_line("\"event_id\" must be a lower-case UUID: " + line.event_id.substr(0, 40));
    }
  } catch (const InvalidArgumentError& e) {
    if (std::string_view(e.what()).starts_with("not an exported event")) throw;
    bad_line(e.what());
  }
  if (!all_of_chars(line.transaction_id, "0123456789") || line.transaction_id.size() > 20 ||
      (line.transaction_id.size() > 1 && line.transaction_id[0] == '0')) {
    bad_line("\"transaction_id\" must be a decimal number");
  }
  if (line.hash_hex.size() != 64 || !all_of_chars(line.hash_hex, "0123456789abcdef")) {
    bad_line("\"hash\" must be 64 lower-case hex digits");
  }
}

}  // namespace

std::int64_t parse_timestamp_micros(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS.ffffffZ exactly, as format_timestamp prints it: parse_timestamp checks
  // the date and the range the clock holds (an edited file may say year 1013, which no
  // time_point holds), and printing it back must give the same text.
  const auto bad = [&] {
    throw InvalidArgumentError(
        "not an exported time (YYYY-MM-DDTHH:MM:SS.ffffffZ, years 1678 to "
        "2261): " +
        std::string(t.substr(0, 40)));
  };
  std::chrono::system_clock::time_point time;
  try {
    time = parse_timestamp(t);
  } catch (const InvalidArgumentError&) {
    bad();
  }
  if (format_timestamp(time) != t) bad();
  return std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
}

void write_line(const LogLine& line, std::string& out) {
  const auto quoted = [](const std::string& s) { return nlohmann::json(s).dump(); };
  out += "{\"stream\":";
  out += quoted(line.stream);
  out += ",\"version\":";
  out += std::to_string(line.version);
  out += ",\"position\":\"";
  out += line.position;
  out += "\",\"event_id\":\"";
  out += line.event_id;
  out += "\",\"type\":";
  out += quoted(line.type);
  out += ",\"schema_version\":";
  out += std::to_string(line.schema_version);
  out += ",\"data\":";
  out += annals::detail::compact_stored_json(line.data);
  out += ",\"metadata\":";
  out += annals::detail::compact_stored_json(line.metadata);
  out += ",\"recorded_at\":\"";
  out += format_timestamp(
      std::chrono::system_clock::time_point{std::chrono::microseconds(line.recorded_micros)});
  out += "\",\"transaction_id\":\"";
  out += line.transaction_id;
  out += "\",\"hash\":\"";
  out += line.hash_hex;
  out += "\"}\n";
}

LogLine parse_line(std::string_view text) {
  LogLine line;
  constexpr std::array<std::string_view, 11> kKeys = {
      "\"stream\"",      "\"version\"",        "\"position\"", "\"event_id\"",
      "\"type\"",        "\"schema_version\"", "\"data\"",     "\"metadata\"",
      "\"recorded_at\"", "\"transaction_id\"", "\"hash\""};
  std::array<std::string_view, kKeys.size()> values{};
  std::size_t i = skip_blanks(text, 0);
  if (i >= text.size() || text[i] != '{') bad_line("a line must be one JSON object");
  i = skip_blanks(text, i + 1);
  while (i < text.size() && text[i] != '}') {
    if (text[i] != '"') bad_line("expected a key");
    const auto key_end = skip_string(text, i);
    if (key_end == std::string_view::npos) bad_line("unterminated key");
    const auto key = text.substr(i, key_end - i);
    i = skip_blanks(text, key_end);
    if (i >= text.size() || text[i] != ':') bad_line("expected ':' after " + std::string(key));
    i = skip_blanks(text, i + 1);
    const auto value_end = skip_value(text, i);
    if (value_end == std::string_view::npos)
      bad_line("the value of " + std::string(key) + " does not end");
    for (std::size_t k = 0; k < kKeys.size(); ++k) {
      if (key == kKeys[k]) {
        if (!values[k].empty()) bad_line(std::string(key) + " appears twice");
        values[k] = text.substr(i, value_end - i);
      }
    }
    i = skip_blanks(text, value_end);
    if (i < text.size() && text[i] == ',') i = skip_blanks(text, i + 1);
  }
  if (i >= text.size() || skip_blanks(text, i + 1) != text.size()) {
    bad_line("a line must be exactly one JSON object");
  }
  for (std::size_t k = 0; k < kKeys.size(); ++k) {
    if (values[k].empty()) bad_line(std::string(kKeys[k]) + " is missing");
  }
  line.stream = string_value(values[0], "stream");
  line.version = int_value<std::int64_t>(values[1], "version");
  line.position = string_value(values[2], "position");
  line.event_id = string_value(values[3], "event_id");
  line.type = string_value(values[4], "type");
  line.schema_version = int_value<std::int32_t>(values[5], "schema_version");
  // Checked as JSON here (depth first, so that no text reaches a parser too deep); the server
  // checks it again when it stores the jsonb.
  check_json_text_depth(values[6], "data");
  check_json_text_depth(values[7], "metadata");
  // The rules of appended JSON text (one pass, no tree): what passes, PostgreSQL's jsonb stores.
  if (const auto problem = annals::detail::find_json_text_problem(
          values[6], annals::detail::JsonTextShape::kAnyValue)) {
    bad_line("\"data\" " + *problem);
  }
  if (const auto problem = annals::detail::find_json_text_problem(
          values[7], annals::detail::JsonTextShape::kObject)) {
    bad_line("\"metadata\" " + *problem);
  }
  line.data = annals::detail::jsonb_text_form(values[6]);
  line.metadata = annals::detail::jsonb_text_form(values[7]);
  line.recorded_micros = parse_timestamp_micros(string_value(values[8], "recorded_at"));
  line.transaction_id = string_value(values[9], "transaction_id");
  line.hash_hex = string_value(values[10], "hash");
  check_canonical_columns(line);
  return line;
}

}  // namespace annals::postgres::detail
