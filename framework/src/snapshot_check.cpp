// The non-template half of the replay check: listing a category's streams through
// the EventReader interface, and describing how two states differ.
#include "annals/framework/snapshot_check.hpp"

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace annals::detail {
namespace {

// Long values are cut in the description; the report carries both states in full.
std::string excerpt(const nlohmann::json& value) {
  constexpr std::size_t kMax = 120;
  std::string text = value.dump();
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

}  // namespace

std::vector<StreamId> streams_of_category(EventReader& events, std::string_view category,
                                          std::size_t page_size) {
  // The EventStore interface has no stream listing; a filtered pass over the log is what every
  // store offers (the framework must not depend on one store's tables: STYLE 2.1).
  std::set<std::string> names;
  ReadAllOptions options{.max_count = page_size};
  options.filter.category = std::string(category);
  for (;;) {
    const auto page = events.read_all(options);
    for (const auto& event : page) names.insert(event.stream_id.value());
    if (page.size() < page_size) break;
    options.after = page.back().position;
  }
  std::vector<StreamId> streams;
  streams.reserve(names.size());
  for (const auto& name : names) streams.emplace_back(name);
  return streams;
}

std::string describe_difference(const nlohmann::json& snapshot, const nlohmann::json& replayed) {
  if (!snapshot.is_object() || !replayed.is_object()) {
    return "snapshot " + excerpt(snapshot) + ", events " + excerpt(replayed);
  }
  std::string out;
  const auto add = [&](const std::string& key, const nlohmann::json* s, const nlohmann::json* r) {
    if (!out.empty()) out += "; ";
    out += key + ": snapshot " + (s != nullptr ? excerpt(*s) : "(absent)") + ", events " +
           (r != nullptr ? excerpt(*r) : "(absent)");
  };
  for (const auto& [key, value] : snapshot.items()) {
    const auto other = replayed.find(key);
    if (other == replayed.end()) {
      add(key, &value, nullptr);
    } else if (*other != value) {
      add(key, &value, &*other);
    }
  }
  for (const auto& [key, value] : replayed.items()) {
    if (!snapshot.contains(key)) add(key, nullptr, &value);
  }
  return out.empty() ? "the states differ" : out;
}

}  // namespace annals::detail
