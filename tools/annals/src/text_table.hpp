// Tables for people: the output of the CLI's listing verbs on a terminal or without --json.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace annals::cli {

/// Prints `rows` (the first is the header) as plain left-aligned columns separated by two
/// spaces; the last column is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out);

/// `text` as one table cell: line breaks and tabs become spaces (an error message may span
/// lines).
[[nodiscard]] std::string table_cell(const std::string& text);

}  // namespace annals::cli
