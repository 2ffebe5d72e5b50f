// Fuzzes the check of JSON text appended as it is (NewEvent::data_json and metadata_json,
// eventstore/src/json_text_validation.hpp) through encode_events, against nlohmann's parser as
// the reference. Any other outcome than these aborts:
//  - text nlohmann does not accept as one JSON value is refused with InvalidArgumentError;
//  - text that is accepted parses with nlohmann, is taken byte for byte, and as metadata is
//    accepted exactly when it is an object;
//  - nothing but InvalidArgumentError is thrown.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/detail/encoded_event.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

// Encodes one event whose data (or metadata) is `text`; true when it was taken.
bool taken(const std::string& text, bool as_metadata) {
  std::vector<annals::NewEvent> events(1);
  events[0].type = "Fuzzed";
  if (as_metadata) {
    events[0].metadata_json = text;
  } else {
    events[0].data_json = text;
  }
  try {
    const auto encoded =
        annals::detail::encode_events(annals::StreamId("fuzz-1"), events, annals::AppendLimits{});
    check(encoded.size() == 1);
    check((as_metadata ? encoded[0].metadata : encoded[0].data) == text);
    return true;
  } catch (const annals::InvalidArgumentError&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool reference = nlohmann::json::accept(text);
  const bool as_data = taken(text, false);
  if (!reference) check(!as_data);
  bool object = false;
  if (as_data) {
    const auto value = nlohmann::json::parse(text);  // throws (aborts the run) if it cannot
    object = value.is_object();
  }
  const bool as_metadata = taken(text, true);
  check(as_metadata == (as_data && object));
  return 0;
}
