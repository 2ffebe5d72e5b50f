#include "log_line.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "annals/eventstore/detail/stored_json.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/eventstore/timestamp.hpp"

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

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

}  // namespace

std::int64_t parse_timestamp_micros(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS.ffffffZ
  const auto bad = [&] {
    throw InvalidArgumentError("not an exported time (YYYY-MM-DDTHH:MM:SS.ffffffZ): " +
                               std::string(t.substr(0, 40)));
  };
  if (t.size() != 27 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
      t[16] != ':' || t[19] != '.' || t[26] != 'Z') {
    bad();
  }
  const auto number = [&](std::size_t at, std::size_t length) {
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(t.data() + at, t.data() + at + length, value);
    if (error != std::errc() || end != t.data() + at + length) bad();
    return value;
  };
  const auto year = number(0, 4);
  const auto month = number(5, 2);
  const auto day = number(8, 2);
  const auto hour = number(11, 2);
  const auto minute = number(14, 2);
  const auto second = number(17, 2);
  const auto micros = number(20, 6);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    bad();
  }
  const auto days = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t result =
      ((days * 24 + hour) * 60 + minute) * 60 * 1000000 + second * 1000000 + micros;
  // A day past the month's end (2026-02-30) normalises into the next month: refuse it.
  const std::chrono::system_clock::time_point back{std::chrono::microseconds(result)};
  if (format_timestamp(back) != t) bad();
  return result;
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
  if (!nlohmann::json::accept(values[6]) || !nlohmann::json::accept(values[7])) {
    bad_line("\"data\" and \"metadata\" must be JSON");
  }
  line.data = annals::detail::jsonb_text_form(values[6]);
  line.metadata = annals::detail::jsonb_text_form(values[7]);
  line.recorded_micros = parse_timestamp_micros(string_value(values[8], "recorded_at"));
  line.transaction_id = string_value(values[9], "transaction_id");
  line.hash_hex = string_value(values[10], "hash");
  return line;
}

}  // namespace annals::postgres::detail
