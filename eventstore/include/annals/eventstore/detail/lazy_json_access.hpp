// Internal: how a store builds a LazyJson that holds stored JSON text, and a count of parses
// for tests. Not part of the public API: a LazyJson may hold only text that
// detail::is_lazy_stored_json accepted, which only the readers of stored rows check.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "annals/eventstore/lazy_json.hpp"

namespace annals::detail {

struct LazyJsonAccess {
  /// A LazyJson holding `text`, parsed on first access.
  /// Requires: is_lazy_stored_json(text) (detail/stored_json.hpp).
  /// Throws: nothing (not noexcept only because clang-tidy cannot see that nlohmann's null
  /// constructor never throws). Cost: none (the text is moved in).
  [[nodiscard]] static LazyJson from_checked_text(std::string text) {
    return LazyJson(LazyJson::FromText{}, std::move(text));
  }

  /// How many LazyJson texts this thread has parsed since it started (for tests).
  /// Throws: nothing.
  [[nodiscard]] static std::uint64_t parses_on_this_thread() noexcept;
};

}  // namespace annals::detail
