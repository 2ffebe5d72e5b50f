#include "stream_commands.hpp"

#include <chrono>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"

namespace annals::cli {
namespace {

nlohmann::json optional_json(const std::optional<std::int64_t>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json state_json(const StreamId& stream, const StreamState& state) {
  const auto& m = state.metadata;
  return {{"stream", stream.value()},
          {"version", optional_json(state.version)},
          {"deleted", state.deleted},
          {"max_count", optional_json(m.max_count)},
          {"max_age", m.max_age ? nlohmann::json(m.max_age->count()) : nlohmann::json(nullptr)},
          {"truncate_before", optional_json(m.truncate_before)}};
}

std::string text_of(const std::optional<std::int64_t>& value, const char* unit = "") {
  return value ? std::to_string(*value) + unit : std::string("-");
}

void print_state(const StreamId& stream, const StreamState& state, bool json, std::ostream& out) {
  if (json) {
    out << state_json(stream, state).dump() << '\n';
    return;
  }
  const auto& m = state.metadata;
  out << "stream           " << stream.value() << '\n'
      << "version          " << (state.version ? std::to_string(*state.version) : "(no events)")
      << '\n'
      << "deleted          " << (state.deleted ? "yes" : "no") << '\n'
      << "max-count        " << text_of(m.max_count) << '\n'
      << "max-age          "
      << text_of(m.max_age ? std::optional<std::int64_t>(m.max_age->count()) : std::nullopt, " s")
      << '\n'
      << "truncate-before  " << text_of(m.truncate_before) << '\n';
}

}  // namespace

void delete_stream(EventStore& store, const DeleteStreamArgs& args, std::ostream& out) {
  const StreamId stream{args.stream};
  const auto expected = ExpectedVersion::parse(args.expected_version);
  const auto result = store.delete_stream(stream, expected);
  if (args.json) {
    out << nlohmann::json{{"stream", stream.value()},
                          {"deleted", true},
                          {"version", result.last_version},
                          {"position", result.position.to_string()}}
               .dump()
        << '\n';
    return;
  }
  out << "deleted stream " << stream.value() << ": tombstone at version " << result.last_version
      << ", position " << result.position.to_string()
      << "; its events stay in the log, appends are refused unless they reopen it\n";
}

void stream_meta(EventStore& store, const StreamMetaArgs& args, std::ostream& out) {
  const StreamId stream{args.stream};
  const bool sets = args.clear || args.max_count || args.max_age_seconds || args.truncate_before;
  if (sets) {
    StreamMetadata metadata = args.clear ? StreamMetadata{} : store.stream_state(stream).metadata;
    if (args.max_count) metadata.max_count = *args.max_count;
    if (args.max_age_seconds) metadata.max_age = std::chrono::seconds(*args.max_age_seconds);
    if (args.truncate_before) metadata.truncate_before = *args.truncate_before;
    store.set_stream_metadata(stream, metadata);
  }
  print_state(stream, store.stream_state(stream), args.json, out);
}

void note_if_deleted(EventReader& store, const std::string& stream, std::ostream& err) {
  const StreamId id{stream};
  const auto state = store.stream_state(id);
  if (!state.deleted || !state.version) return;
  err << "annals: note: stream " << id.value() << " is deleted (its tombstone, type "
      << kStreamDeletedType << ", is version " << *state.version
      << "); appends are refused unless they reopen it\n";
}

}  // namespace annals::cli
