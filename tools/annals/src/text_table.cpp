#include "text_table.hpp"

#include <algorithm>
#include <ostream>

namespace annals::cli {

void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << '\n';
  }
}

std::string table_cell(const std::string& text) {
  std::string out;
  for (const char c : text) out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  return out;
}

}  // namespace annals::cli
