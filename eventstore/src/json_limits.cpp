// The JSON depth limit (see json_limits.hpp).
#include "annals/eventstore/json_limits.hpp"

#include <string>
#include <vector>

#include "annals/eventstore/error.hpp"

namespace annals {
namespace {

[[noreturn]] void fail_depth(std::string_view what, std::size_t depth) {
  throw InvalidArgumentError(std::string(what) + " is JSON nested " + std::to_string(depth) +
                             " levels deep, over the limit of " + std::to_string(kMaxJsonDepth) +
                             " levels");
}

}  // namespace

std::size_t json_text_depth(std::string_view text) noexcept {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  for (std::size_t at = 0; at < text.size(); ++at) {
    const char c = text[at];
    if (in_string) {
      if (c == '\\') {
        ++at;  // the escaped character, which may be a quote
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > deepest) deepest = depth;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

std::size_t json_depth(const nlohmann::json& value) {
  // Level by level: `level` holds the arrays and objects at the current depth.
  std::vector<const nlohmann::json*> level;
  std::vector<const nlohmann::json*> next;
  if (value.is_structured()) level.push_back(&value);
  std::size_t depth = 0;
  while (!level.empty()) {
    ++depth;
    next.clear();
    for (const nlohmann::json* container : level) {
      for (const auto& element : *container) {
        if (element.is_structured()) next.push_back(&element);
      }
    }
    level.swap(next);
  }
  return depth;
}

void check_json_text_depth(std::string_view text, std::string_view what) {
  const std::size_t depth = json_text_depth(text);
  if (depth > kMaxJsonDepth) fail_depth(what, depth);
}

void check_json_depth(const nlohmann::json& value, std::string_view what) {
  const std::size_t depth = json_depth(value);
  if (depth > kMaxJsonDepth) fail_depth(what, depth);
}

}  // namespace annals
