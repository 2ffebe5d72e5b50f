// Value types of the event store: validation, parsing and string forms.
#include "annals/eventstore/types.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <random>
#include <system_error>

#include <boost/uuid/uuid_io.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "text_validation.hpp"

namespace annals {
namespace {

// Parses a whole string of decimal digits (no sign, no spaces) into T; empty on anything else,
// including overflow.
template <typename T>
std::optional<T> parse_decimal(std::string_view text) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Per-thread state of the UUIDv7 generator (RFC 9562 section 6.2, method 1: a 12-bit counter
// in rand_a, started at a random value with its top bit clear so that at least 2048 ids fit in
// one millisecond before the counter overflows into the next millisecond).
struct V7State {
  std::mt19937_64 rng;
  std::uint64_t last_ms = 0;
  std::uint32_t counter = 0;

  V7State() {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(),
                       device(), device(), device(), device()};
    rng.seed(seed);
  }

  std::uint32_t fresh_counter() { return static_cast<std::uint32_t>(rng() & 0x7FFu); }
};

}  // namespace

// ---- StreamId -------------------------------------------------------------------------------

StreamId::StreamId(std::string value) : value_(std::move(value)) {
  if (value_.empty()) throw InvalidArgumentError("invalid stream id: it is empty");
  if (value_.size() > kMaxBytes) {
    throw InvalidArgumentError("invalid stream id " + detail::quote_for_message(value_) +
                               ": it is " + std::to_string(value_.size()) +
                               " bytes long, over the limit of " + std::to_string(kMaxBytes) +
                               " bytes");
  }
  if (auto problem = detail::find_text_problem(value_)) {
    throw InvalidArgumentError("invalid stream id " + detail::quote_for_message(value_) + ": it " +
                               *problem);
  }
}

std::string_view StreamId::category() const noexcept { return category_of(value_); }

std::string_view category_of(std::string_view stream_id) noexcept {
  return stream_id.substr(0, stream_id.find('-'));
}

// ---- EventId --------------------------------------------------------------------------------

EventId EventId::generate() {
  thread_local V7State state;
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  const auto now_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(now.count(), 0));
  // The timestamp never goes back on a thread (clock steps are absorbed), so ids generated on
  // one thread are strictly increasing.
  if (now_ms > state.last_ms) {
    state.last_ms = now_ms;
    state.counter = state.fresh_counter();
  } else if (++state.counter > 0xFFFu) {
    ++state.last_ms;
    state.counter = state.fresh_counter();
  }
  const std::uint64_t ms = state.last_ms & 0xFFFF'FFFF'FFFFu;
  const std::uint64_t random = state.rng();

  boost::uuids::uuid uuid{};
  for (std::size_t i = 0; i < 6; ++i) {
    uuid.data[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  }
  uuid.data[6] = static_cast<std::uint8_t>(0x70u | ((state.counter >> 8) & 0x0Fu));
  uuid.data[7] = static_cast<std::uint8_t>(state.counter & 0xFFu);
  for (std::size_t i = 8; i < 16; ++i) {
    uuid.data[i] = static_cast<std::uint8_t>(random >> (8 * (15 - i)));
  }
  uuid.data[8] = static_cast<std::uint8_t>(0x80u | (uuid.data[8] & 0x3Fu));  // RFC variant
  return EventId(uuid);
}

EventId EventId::parse(std::string_view text) {
  auto fail = [&] {
    return InvalidArgumentError("invalid event id " + detail::quote_for_message(text) +
                                ": expected the 36-character form "
                                "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
  };
  if (text.size() != 36) throw fail();
  boost::uuids::uuid uuid{};
  std::size_t byte = 0;
  for (std::size_t at = 0; at < text.size();) {
    if (at == 8 || at == 13 || at == 18 || at == 23) {
      if (text[at] != '-') throw fail();
      ++at;
      continue;
    }
    const int high = hex_digit_value(text[at]);
    const int low = hex_digit_value(text[at + 1]);
    if (high < 0 || low < 0) throw fail();
    uuid.data[byte++] = static_cast<std::uint8_t>(high * 16 + low);
    at += 2;
  }
  return EventId(uuid);
}

std::string EventId::to_string() const { return boost::uuids::to_string(value_); }

// ---- ExpectedVersion ------------------------------------------------------------------------

ExpectedVersion ExpectedVersion::exact(StreamVersion version) {
  if (version < 0) {
    throw InvalidArgumentError("invalid expected version " + std::to_string(version) +
                               ": an exact version must be >= 0");
  }
  return ExpectedVersion(Kind::kExact, version);
}

ExpectedVersion ExpectedVersion::parse(std::string_view text) {
  if (text == "any") return any();
  if (text == "no-stream") return no_stream();
  if (text == "exists") return stream_exists();
  if (auto version = parse_decimal<StreamVersion>(text)) return exact(*version);
  throw InvalidArgumentError("invalid expected version " + detail::quote_for_message(text) +
                             ": expected \"any\", \"no-stream\", \"exists\" or a number >= 0");
}

bool ExpectedVersion::matches(std::optional<StreamVersion> actual) const noexcept {
  const bool exists = actual.has_value() && *actual > 0;
  switch (kind_) {
    case Kind::kAny:
      return true;
    case Kind::kNoStream:
      return !exists;
    case Kind::kStreamExists:
      return exists;
    case Kind::kExact:
      // exact(0) is "no events yet", the same as no_stream().
      return version_ == 0 ? !exists : (exists && *actual == version_);
  }
  return false;
}

std::string ExpectedVersion::to_string() const {
  switch (kind_) {
    case Kind::kAny:
      return "any";
    case Kind::kNoStream:
      return "no-stream";
    case Kind::kStreamExists:
      return "exists";
    case Kind::kExact:
      return std::to_string(version_);
  }
  return "unknown";
}

// ---- Position -------------------------------------------------------------------------------

Position Position::parse(std::string_view text) {
  if (text == "0") return start();
  const auto colon = text.find(':');
  if (colon != std::string_view::npos) {
    const auto commit = parse_decimal<std::uint64_t>(text.substr(0, colon));
    const auto sequence = parse_decimal<std::int64_t>(text.substr(colon + 1));
    if (commit && sequence) return Position(*commit, *sequence);
  }
  throw InvalidArgumentError("invalid position " + detail::quote_for_message(text) +
                             ": expected \"<commit>:<sequence>\" (two numbers >= 0) or \"0\"");
}

std::string Position::to_string() const {
  if (*this == start()) return "0";
  return std::to_string(commit_) + ":" + std::to_string(sequence_);
}

// ---- EventFilter ----------------------------------------------------------------------------

bool EventFilter::matches(const RecordedEvent& event) const {
  if (category && event.stream_id.category() != *category) return false;
  return event_types.empty() ||
         std::find(event_types.begin(), event_types.end(), event.type) != event_types.end();
}

}  // namespace annals
