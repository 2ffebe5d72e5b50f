#include "array_literal.hpp"

#include <utility>

namespace annals::postgres::detail {

void ArrayLiteral::add_quoted(std::string_view value) {
  separate();
  text_.push_back('"');
  for (const char c : value) {
    if (c == '"' || c == '\\') text_.push_back('\\');
    text_.push_back(c);
  }
  text_.push_back('"');
}

void ArrayLiteral::add_plain(std::string_view value) {
  separate();
  text_.append(value);
}

std::string ArrayLiteral::finish() && {
  text_.push_back('}');
  return std::move(text_);
}

void ArrayLiteral::separate() {
  if (text_.size() > 1) text_.push_back(',');
}

}  // namespace annals::postgres::detail
