// Internal: counting the $n parameters of a caller's SQL text (ReadModel::exec and the document
// reader's raw()), before it is sent.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace annals::projections::detail {

// The highest $n of a statement, skipping string literals, quoted identifiers and comments.
// Checked before sending, because PostgreSQL reports a wrong parameter count as a protocol
// violation (SQLSTATE 08P01), which would otherwise look like a broken connection.
inline std::size_t count_parameters(std::string_view sql) {
  std::size_t highest = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      const auto end = sql.find(c, i + 1);
      if (end == std::string_view::npos) break;
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const auto end = sql.find('\n', i);
      if (end == std::string_view::npos) break;
      i = end;
    } else if (c == '$' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      std::size_t n = 0;
      std::size_t j = i + 1;
      for (; j < sql.size() && sql[j] >= '0' && sql[j] <= '9' && n < 100000; ++j) {
        n = n * 10 + static_cast<std::size_t>(sql[j] - '0');
      }
      if (j < sql.size() && sql[j] == '$') {
        i = j;  // a dollar-quote tag such as $1$ is not a parameter
        continue;
      }
      highest = std::max(highest, n);
      i = j - 1;
    }
  }
  return highest;
}

}  // namespace annals::projections::detail
