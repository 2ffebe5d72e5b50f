// Private: what the parts of a projection worker (runner.cpp) share: the clock, the unwinding
// of a failed projection, and how events and errors are named in log lines and reports.
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/trace_context.hpp"

namespace annals::projections::detail {

using Clock = std::chrono::steady_clock;

/// Unwinds a worker whose projection failed for good (OnFailure::kStop); the worker reports
/// `error`, gives the lease up and ends.
struct ProjectionFailed {
  std::string error;
};

/// The message of an exception in flight, or "unknown exception".
inline std::string what_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

/// An event as log lines and dead-letter reports name it: "type stream@version at position",
/// followed by " trace_id=<32 hex>" when its metadata carries a valid traceparent
/// (trace_context.hpp), so that a failure can be tied to the request that caused it.
inline std::string describe(const RecordedEvent& event) {
  std::string text = event.type + " " + event.stream_id.value() + "@" +
                     std::to_string(event.version) + " at " + event.position.to_string();
  if (const std::string trace = trace_id_of(event); !trace.empty()) text += " trace_id=" + trace;
  return text;
}

}  // namespace annals::projections::detail
