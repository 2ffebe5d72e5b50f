// Internal: PostgreSQL array literals, the text form in which the event store and the inline
// projections store send an array as one parameter (annals.append_events takes its events as
// arrays; read_all's type filter is one).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace annals::postgres::detail {

/// Builds `{a,b,...}`. Quoted elements are double-quoted with '"' and '\' escaped, which is the
/// complete quoting rule of array_in; plain elements (numbers, uuids) are written as they are.
/// Thread safety: none (a value).
class ArrayLiteral {
 public:
  /// Adds `value` double-quoted: any text, including '"', '\', ',' and braces.
  void add_quoted(std::string_view value);
  /// Adds `value` as it is. Requires: it needs no quoting (digits, a uuid).
  void add_plain(std::string_view value);
  void add_number(std::int64_t value) { add_plain(std::to_string(value)); }
  /// The literal, closed.
  [[nodiscard]] std::string finish() &&;

 private:
  void separate();
  std::string text_ = "{";
};

}  // namespace annals::postgres::detail
