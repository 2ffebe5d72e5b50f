// Stream lifecycle on top of the EventStore interface: the soft delete (a tombstone appended
// like any event, so every store and every decorator supports it the same way), the default
// stream_state() and the validation of stream metadata.
#include <string>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/types.hpp"

namespace annals {

void StreamMetadata::validate() const {
  if (max_count && *max_count < 1) {
    throw InvalidArgumentError("invalid stream metadata: max_count must be >= 1, got " +
                               std::to_string(*max_count));
  }
  if (max_age && max_age->count() < 1) {
    throw InvalidArgumentError("invalid stream metadata: max_age must be >= 1 s, got " +
                               std::to_string(max_age->count()) + " s");
  }
  if (truncate_before && *truncate_before < 1) {
    throw InvalidArgumentError("invalid stream metadata: truncate_before must be >= 1, got " +
                               std::to_string(*truncate_before));
  }
}

StreamState EventReader::stream_state(const StreamId& stream) {
  StreamState state;
  state.version = stream_version(stream);
  if (!state.version) return state;
  ReadStreamOptions last;
  last.direction = ReadDirection::kBackward;
  last.max_count = 1;
  const auto events = read_stream(stream, last);
  state.deleted = !events.empty() && events.front().version == *state.version &&
                  events.front().type == kStreamDeletedType;
  return state;
}

AppendResult EventWriter::delete_stream(const StreamId& stream, const ExpectedVersion& expected) {
  const bool expects_none =
      expected.kind() == ExpectedVersion::Kind::kNoStream ||
      (expected.kind() == ExpectedVersion::Kind::kExact && expected.version() == 0);
  if (expects_none) {
    throw InvalidArgumentError("delete_stream \"" + stream.value() + "\": expected version " +
                               expected.to_string() +
                               " says the stream has no events, so there is nothing to delete");
  }
  // "any" still needs a stream to delete: the store checks that it has events.
  const ExpectedVersion checked =
      expected.kind() == ExpectedVersion::Kind::kAny ? ExpectedVersion::stream_exists() : expected;
  NewEvent tombstone;
  tombstone.type = std::string(kStreamDeletedType);
  std::vector<StreamAppend> appends;
  appends.push_back(StreamAppend{.stream_id = stream, .expected = checked, .events = {tombstone}});
  try {
    return append_multi(std::move(appends)).front();
  } catch (const ConcurrencyError& e) {
    if (e.stream_id() == stream && !e.actual().has_value()) {
      throw NotFoundError("delete_stream \"" + stream.value() +
                          "\": the stream has no events; nothing to delete");
    }
    throw;
  }
}

}  // namespace annals
