#include "time_text.hpp"

#include <cstdint>

namespace bank {
namespace {

// Reads exactly `n` digits at `pos`.
std::optional<int> digits(std::string_view text, std::size_t pos, std::size_t n) {
  if (pos + n > text.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

bool is(std::string_view text, std::size_t pos, char c) {
  return pos < text.size() && text[pos] == c;
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS
  const auto year = digits(text, 0, 4);
  const auto month = digits(text, 5, 2);
  const auto day = digits(text, 8, 2);
  const auto hour = digits(text, 11, 2);
  const auto minute = digits(text, 14, 2);
  const auto second = digits(text, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  if (!is(text, 4, '-') || !is(text, 7, '-') || !(is(text, 10, 'T') || is(text, 10, 't')) ||
      !is(text, 13, ':') || !is(text, 16, ':')) {
    return std::nullopt;
  }
  const year_month_day date{std::chrono::year{*year},
                            std::chrono::month{static_cast<unsigned>(*month)},
                            std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;

  std::size_t pos = 19;
  nanoseconds fraction{0};
  if (is(text, pos, '.')) {
    ++pos;
    const std::size_t start = pos;
    std::int64_t scale = 100'000'000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += nanoseconds{(text[pos] - '0') * scale};
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }

  minutes offset{0};
  if (is(text, pos, 'Z') || is(text, pos, 'z')) {
    ++pos;
  } else if (is(text, pos, '+') || is(text, pos, '-') || is(text, pos, ' ')) {
    const int sign = is(text, pos, '-') ? -1 : 1;
    const auto oh = digits(text, pos + 1, 2);
    const auto om = digits(text, pos + 4, 2);
    if (!oh || !om || !is(text, pos + 3, ':') || *oh > 23 || *om > 59) return std::nullopt;
    offset = minutes{sign * (*oh * 60 + *om)};
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;

  const auto local = sys_days{date} + hours{*hour} + minutes{*minute} + seconds{*second};
  // The clock counts nanoseconds in 64 bits (about the years 1678 to 2261): a time outside is
  // refused rather than overflowed.
  const sys_seconds at = local - offset;
  constexpr auto kEarliest = ceil<seconds>(system_clock::time_point::min().time_since_epoch());
  constexpr auto kLatest = floor<seconds>(system_clock::time_point::max().time_since_epoch());
  if (at.time_since_epoch() <= kEarliest || at.time_since_epoch() >= kLatest) return std::nullopt;
  return time_point_cast<system_clock::duration>(at) + fraction;
}

}  // namespace bank
