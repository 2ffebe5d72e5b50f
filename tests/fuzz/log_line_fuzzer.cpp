// Fuzzes the reading of export lines, the input `annals import` takes from a file an attacker
// may have edited (annals/postgres/log_transfer.hpp): parse_line either accepts a line or
// refuses it with InvalidArgumentError, never crashing or reading out of bounds; an accepted
// line written back with write_line reads again to the same columns, so what an import stores
// is what the line said.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "annals/eventstore/error.hpp"
#include "log_line.hpp"

namespace {

using annals::postgres::detail::LogLine;

void check(bool condition) {
  if (!condition) std::abort();
}

bool same(const LogLine& a, const LogLine& b) {
  return a.stream == b.stream && a.version == b.version && a.position == b.position &&
         a.event_id == b.event_id && a.type == b.type && a.schema_version == b.schema_version &&
         a.data == b.data && a.metadata == b.metadata && a.recorded_micros == b.recorded_micros &&
         a.transaction_id == b.transaction_id && a.hash_hex == b.hash_hex;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  LogLine line;
  try {
    line = annals::postgres::detail::parse_line(text);
  } catch (const annals::InvalidArgumentError&) {
    return 0;
  }
  std::string written;
  annals::postgres::detail::write_line(line, written);
  check(!written.empty() && written.back() == '\n');
  const auto again =
      annals::postgres::detail::parse_line(std::string_view(written).substr(0, written.size() - 1));
  check(same(line, again));
  return 0;
}
