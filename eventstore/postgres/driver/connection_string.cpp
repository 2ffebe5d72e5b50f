// Adding the connection-level timeouts to a libpq connection string (connection_string.hpp).
#include "connection_string.hpp"

#include <libpq-fe.h>

#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"

namespace annals::postgres::detail {
namespace {

struct OptionsDeleter {
  void operator()(PQconninfoOption* options) const noexcept { PQconninfoFree(options); }
};

// The keywords `connection_string` sets; `parsed` false (and no keywords) when libpq cannot
// parse it.
std::set<std::string> keywords_set(const std::string& connection_string, bool& parsed) {
  char* error = nullptr;
  const std::unique_ptr<PQconninfoOption, OptionsDeleter> options(
      PQconninfoParse(connection_string.c_str(), &error));
  PQfreemem(error);
  parsed = options != nullptr;
  std::set<std::string> set;
  if (!parsed) return set;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val != nullptr) set.insert(o->keyword);
  }
  return set;
}

bool is_url(std::string_view s) noexcept {
  return s.starts_with("postgresql://") || s.starts_with("postgres://");
}

// The keyword/value pairs `timeouts` asks for, zero values left out.
std::vector<std::pair<const char*, std::string>> wanted(const ConnectionTimeouts& timeouts) {
  std::vector<std::pair<const char*, std::string>> pairs;
  const auto add = [&](const char* keyword, long long value) {
    if (value > 0) pairs.emplace_back(keyword, std::to_string(value));
  };
  add("connect_timeout", timeouts.connect_timeout.count());
  const bool keepalives = timeouts.keepalives_idle.count() > 0 ||
                          timeouts.keepalives_interval.count() > 0 || timeouts.keepalives_count > 0;
  if (keepalives) pairs.emplace_back("keepalives", "1");
  add("keepalives_idle", timeouts.keepalives_idle.count());
  add("keepalives_interval", timeouts.keepalives_interval.count());
  add("keepalives_count", timeouts.keepalives_count);
  add("tcp_user_timeout", timeouts.tcp_user_timeout.count());
  return pairs;
}

}  // namespace

std::string with_timeouts(const std::string& connection_string,
                          const ConnectionTimeouts& timeouts) {
  bool parsed = false;
  const auto present = keywords_set(connection_string, parsed);
  if (!parsed) return connection_string;
  std::string result = connection_string;
  const bool url = is_url(connection_string);
  bool has_query = url && connection_string.find('?') != std::string::npos;
  for (const auto& [keyword, value] : wanted(timeouts)) {
    if (present.contains(keyword)) continue;
    if (url) {
      result += has_query ? '&' : '?';
      has_query = true;
    } else if (!result.empty()) {
      result += ' ';
    }
    result += keyword;
    result += '=';
    result += value;
  }
  return result;
}

void validate_duration(std::chrono::milliseconds value, std::string_view owner,
                       std::string_view field, bool zero_allowed) {
  if (value.count() > 0 || (zero_allowed && value.count() == 0)) return;
  throw InvalidArgumentError(std::string(owner) + "::" + std::string(field) + " must be " +
                             (zero_allowed ? "zero or positive" : "positive") + ", got " +
                             std::to_string(value.count()) + " ms");
}

void validate_timeouts(const ConnectionTimeouts& timeouts, std::string_view owner) {
  const std::string prefix = std::string(owner) + "::connection_timeouts";
  validate_duration(timeouts.connect_timeout, prefix, "connect_timeout", true);
  validate_duration(timeouts.keepalives_idle, prefix, "keepalives_idle", true);
  validate_duration(timeouts.keepalives_interval, prefix, "keepalives_interval", true);
  validate_duration(timeouts.tcp_user_timeout, prefix, "tcp_user_timeout", true);
  if (timeouts.keepalives_count < 0) {
    throw InvalidArgumentError(prefix + "::keepalives_count must be zero or positive, got " +
                               std::to_string(timeouts.keepalives_count));
  }
}

}  // namespace annals::postgres::detail
