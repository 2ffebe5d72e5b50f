// RFC 3339 text of a time point (see timestamp.hpp).
#include "annals/eventstore/timestamp.hpp"

#include <cstdio>

namespace annals {

std::string format_timestamp(std::chrono::system_clock::time_point time) {
  using std::chrono::floor;
  const auto micros = floor<std::chrono::microseconds>(time);
  const auto secs = floor<std::chrono::seconds>(micros);
  const auto days = floor<std::chrono::days>(secs);
  const std::chrono::year_month_day date{days};
  const std::chrono::hh_mm_ss clock{secs - days};
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ",
                static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                static_cast<unsigned>(date.day()), static_cast<long long>(clock.hours().count()),
                static_cast<long long>(clock.minutes().count()),
                static_cast<long long>(clock.seconds().count()),
                static_cast<long long>((micros - secs).count()));
  return text;
}

}  // namespace annals
