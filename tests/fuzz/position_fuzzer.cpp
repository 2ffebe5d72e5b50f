// Fuzzes the parsing of positions and expected versions: parse either accepts and its result
// round-trips through to_string() and parse() to an equal value, or refuses with
// InvalidArgumentError. Values built from the input's bytes round-trip the same way.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void fuzz_position_text(std::string_view text) {
  try {
    const auto position = annals::Position::parse(text);
    const auto again = annals::Position::parse(position.to_string());
    check(again == position);
    check(again.to_string() == position.to_string());
  } catch (const annals::InvalidArgumentError&) {
  }
}

void fuzz_expected_version_text(std::string_view text) {
  try {
    const auto expected = annals::ExpectedVersion::parse(text);
    const auto again = annals::ExpectedVersion::parse(expected.to_string());
    check(again == expected);
    check(again.to_string() == expected.to_string());
  } catch (const annals::InvalidArgumentError&) {
  }
}

// The first 16 bytes as a position (sequence >= 0, as the stores give them) and an exact
// expected version: both must survive the round trip.
void fuzz_values(const std::uint8_t* data, std::size_t size) {
  if (size < 16) return;
  std::uint64_t commit = 0;
  std::uint64_t raw = 0;
  std::memcpy(&commit, data, 8);
  std::memcpy(&raw, data + 8, 8);
  const auto sequence = static_cast<std::int64_t>(raw >> 1);
  const annals::Position position(commit, sequence);
  check(annals::Position::parse(position.to_string()) == position);
  const auto expected = annals::ExpectedVersion::exact(sequence);
  check(annals::ExpectedVersion::parse(expected.to_string()) == expected);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fuzz_position_text(text);
  fuzz_expected_version_text(text);
  fuzz_values(data, size);
  return 0;
}
