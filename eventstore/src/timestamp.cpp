// RFC 3339 text of a time point, and back (see timestamp.hpp).
#include "annals/eventstore/timestamp.hpp"

#include <cstdio>
#include <string>

#include "annals/eventstore/error.hpp"

namespace annals {
namespace {

using Micros = std::chrono::microseconds;

// Reads the RFC 3339 fields of one text left to right; every failure names the text.
class TimestampReader {
 public:
  explicit TimestampReader(std::string_view text) : text_(text) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw InvalidArgumentError("not a time: \"" + std::string(text_) + "\" (" + what +
                               "; expected e.g. 2026-11-23T14:31:00Z, "
                               "2026-11-23T15:31:00.5+01:00 or 2026-11-23)");
  }

  // Exactly `digits` decimal digits.
  int number(int digits, const char* field) {
    int value = 0;
    for (int i = 0; i < digits; ++i, ++at_) {
      if (at_ >= text_.size() || text_[at_] < '0' || text_[at_] > '9') {
        fail(std::string("the ") + field + " needs " + std::to_string(digits) + " digits");
      }
      value = value * 10 + (text_[at_] - '0');
    }
    return value;
  }

  void expect(char c, const char* where) {
    if (at_ >= text_.size() || text_[at_] != c) {
      fail(std::string("expected '") + c + "' " + where);
    }
    ++at_;
  }

  // One of `choices` here: consumed and true; else false.
  bool accept(std::string_view choices) {
    if (at_ < text_.size() && choices.find(text_[at_]) != std::string_view::npos) {
      ++at_;
      return true;
    }
    return false;
  }

  [[nodiscard]] bool done() const noexcept { return at_ == text_.size(); }

  std::chrono::sys_days date() {
    const int year = number(4, "year");
    expect('-', "after the year");
    const int month = number(2, "month");
    expect('-', "after the month");
    const int day = number(2, "day");
    const std::chrono::year_month_day ymd{std::chrono::year{year},
                                          std::chrono::month{static_cast<unsigned>(month)},
                                          std::chrono::day{static_cast<unsigned>(day)}};
    if (!ymd.ok()) fail("no such date");
    return std::chrono::sys_days{ymd};
  }

  Micros clock() {
    const int hours = number(2, "hour");
    expect(':', "after the hour");
    const int minutes = number(2, "minute");
    expect(':', "after the minutes");
    const int seconds = number(2, "second");
    // A leap second (:60) is refused rather than folded into the next minute.
    if (hours > 23 || minutes > 59 || seconds > 59) fail("hours, minutes or seconds out of range");
    Micros time =
        std::chrono::hours{hours} + std::chrono::minutes{minutes} + std::chrono::seconds{seconds};
    if (accept(".")) time += fraction();
    return time;
  }

  // The offset to subtract from the local time to get UTC.
  Micros zone() {
    if (accept("Zz")) return Micros{0};
    if (at_ >= text_.size() || (text_[at_] != '+' && text_[at_] != '-')) {
      fail("a zone is required: Z or +HH:MM / -HH:MM");
    }
    const bool east = text_[at_++] == '+';
    const int hours = number(2, "zone's hour");
    expect(':', "in the zone");
    const int minutes = number(2, "zone's minutes");
    if (hours > 23 || minutes > 59) fail("zone out of range");
    const Micros offset = std::chrono::hours{hours} + std::chrono::minutes{minutes};
    return east ? offset : -offset;
  }

 private:
  Micros fraction() {
    std::int64_t micros = 0;
    int digits = 0;
    while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') {
      if (digits < 6) micros = micros * 10 + (text_[at_] - '0');
      ++digits;
      ++at_;
    }
    if (digits == 0) fail("a digit must follow the decimal point");
    if (digits > 9) fail("at most nine fractional digits");
    for (int i = digits; i < 6; ++i) micros *= 10;
    return Micros{micros};
  }

  std::string_view text_;
  std::size_t at_ = 0;
};

}  // namespace

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

std::chrono::system_clock::time_point parse_timestamp(std::string_view text) {
  TimestampReader reader(text);
  const auto day = reader.date();
  std::chrono::sys_time<Micros> time{day};
  if (!reader.done()) {
    if (!reader.accept("Tt ")) reader.fail("expected 'T' between the date and the time");
    time += reader.clock();
    time -= reader.zone();
  }
  if (!reader.done()) reader.fail("unexpected characters after the time");
  // The system clock counts nanoseconds in 64 bits: years 1677 to 2262.
  using Clock = std::chrono::system_clock;
  if (time < std::chrono::time_point_cast<Micros>(Clock::time_point::min()) + Micros{1} ||
      time > std::chrono::time_point_cast<Micros>(Clock::time_point::max()) - Micros{1}) {
    reader.fail("outside the years 1678 to 2261");
  }
  return std::chrono::time_point_cast<Clock::duration>(time);
}

}  // namespace annals
