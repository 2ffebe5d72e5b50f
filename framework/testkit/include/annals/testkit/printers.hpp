// GoogleTest printers for the event store's value types, so that a failed EXPECT_EQ shows
// readable values instead of bytes. Found by argument-dependent lookup; include this header
// in any test that compares annals values.
//
// Thread safety: stateless functions.
//
// NOLINTBEGIN(readability-identifier-naming): PrintTo is the name GoogleTest looks up.
#pragma once

#include <chrono>
#include <ostream>

#include "annals/eventstore/event_store.hpp"

namespace annals {

inline void PrintTo(const StreamId& stream, std::ostream* os) {
  *os << '"' << stream.value() << '"';
}

inline void PrintTo(const EventId& id, std::ostream* os) { *os << id.to_string(); }

inline void PrintTo(const Position& position, std::ostream* os) { *os << position.to_string(); }

inline void PrintTo(const ExpectedVersion& expected, std::ostream* os) {
  *os << expected.to_string();
}

inline void PrintTo(const AppendResult& result, std::ostream* os) {
  *os << "{stream " << result.stream_id.value() << ", versions " << result.first_version << ".."
      << result.last_version << ", position " << result.position.to_string() << "}";
}

inline void PrintTo(const RecordedEvent& event, std::ostream* os) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(event.recorded_at.time_since_epoch());
  *os << "{stream " << event.stream_id.value() << ", version " << event.version << ", position "
      << event.position.to_string() << ", id " << event.id.to_string() << ", type " << event.type
      << ", schema " << event.schema_version << ", data " << event.data.dump() << ", metadata "
      << event.metadata.dump() << ", recorded_at " << micros.count() << "us}";
}

}  // namespace annals

// NOLINTEND(readability-identifier-naming)
