// Projection names: the key of a projection's checkpoint, lease, dead letters and rebuild
// requests in every ProjectionStore, and a word on the command line (`annals projections
// rebuild NAME`). Hence a small, shell- and SQL-safe alphabet.
#include "annals/projections/projection.hpp"
#include "shown_text.hpp"

#include <cstddef>
#include <string>
#include <string_view>

#include "annals/eventstore/error.hpp"

namespace annals::projections {
namespace {

constexpr std::size_t kMaxNameLength = 100;

bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// `text` quoted for an error message: printable ASCII as is, other bytes as \xNN, cut after
// 40 bytes so that a huge name does not make a huge message.
std::string quote_name(std::string_view text) { return detail::shown_text(text, '\'', 40); }

}  // namespace

void InProcessProjection::handle(const RecordedEvent& event) {
  if (handlers_.empty()) {
    throw InvalidArgumentError(
        "projection '" + name() +
        "' neither overrides handle() nor declares typed handlers (on<E>())");
  }
  static_cast<void>(handlers_.dispatch(event));
}

EventFilter InProcessProjection::filter() const {
  if (handlers_.empty()) return {};
  return handlers_.filter();
}

void validate_projection_name(const std::string& name) {
  if (name.empty()) throw InvalidArgumentError("invalid projection name: it is empty");
  if (name.size() > kMaxNameLength) {
    throw InvalidArgumentError("invalid projection name " + quote_name(name) + ": it has " +
                               std::to_string(name.size()) + " characters, at most " +
                               std::to_string(kMaxNameLength) + " are allowed");
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i])) {
      throw InvalidArgumentError("invalid projection name " + quote_name(name) +
                                 ": character at offset " + std::to_string(i) +
                                 " is not one of [A-Za-z0-9_.-]");
    }
  }
}

}  // namespace annals::projections
