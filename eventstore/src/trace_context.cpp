// W3C traceparent validation (see trace_context.hpp).
#include "annals/eventstore/trace_context.hpp"

#include <algorithm>
#include <cstddef>
#include <exception>

namespace annals {
namespace {

constexpr std::size_t kLength = 55;  // "00-" + 32 + "-" + 16 + "-" + 2

bool is_lower_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool all_hex(std::string_view text) noexcept {
  return std::all_of(text.begin(), text.end(), is_lower_hex);
}

bool all_zeros(std::string_view text) noexcept {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '0'; });
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The valid 55-character prefix of `text`, or an empty view.
std::string_view valid_prefix(std::string_view text) noexcept {
  if (text.size() < kLength) return {};
  const std::string_view version = text.substr(0, 2);
  if (!all_hex(version) || version == "ff") return {};
  if (version == "00" ? text.size() != kLength : (text.size() > kLength && text[kLength] != '-')) {
    return {};
  }
  if (text[2] != '-' || text[35] != '-' || text[52] != '-') return {};
  const std::string_view trace_id = text.substr(3, 32);
  const std::string_view parent_id = text.substr(36, 16);
  const std::string_view flags = text.substr(53, 2);
  if (!all_hex(trace_id) || !all_hex(parent_id) || !all_hex(flags)) return {};
  if (all_zeros(trace_id) || all_zeros(parent_id)) return {};
  return text.substr(0, kLength);
}

}  // namespace

std::optional<std::string> parse_traceparent(std::string_view header) {
  const std::string_view valid = valid_prefix(trim(header));
  if (valid.empty()) return std::nullopt;
  return std::string(valid);
}

std::string_view trace_id_of_traceparent(std::string_view traceparent) noexcept {
  const std::string_view valid = valid_prefix(traceparent);
  return valid.empty() ? std::string_view() : valid.substr(3, 32);
}

std::string trace_id_of(const RecordedEvent& event) {
  if (event.is_undecodable()) return {};
  if (const auto text = event.metadata.text()) {
    if (text->find(kTraceparentKey) == std::string_view::npos) return {};
  }
  try {
    const auto& metadata = event.metadata.get_json();
    if (!metadata.is_object()) return {};
    const auto found = metadata.find(kTraceparentKey);
    if (found == metadata.end() || !found->is_string()) return {};
    return std::string(trace_id_of_traceparent(found->get_ref<const std::string&>()));
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace annals
