// The checks of the fault-injection suite, run once the faults are healed and the load has
// stopped: the log against what the writers were told, the subscription against the log, and
// the runner's read model against a fresh computation from the log.
//
// Cost: linear in the log (hash maps by event id). Thread safety: plain functions of their
// arguments; read_sums() opens a connection of its own.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "annals/eventstore/event_store.hpp"
#include "fault_load.hpp"
#include "recorded_subscription.hpp"

namespace annals::faults {

/// The whole global log, read in pages once every event up to `last` has settled (waits up
/// to `timeout` for that). Throws std::runtime_error when it does not settle in time.
std::vector<RecordedEvent> log_through(EventReader& store, Position last,
                                       std::chrono::milliseconds timeout);

/// The log against the acknowledged appends.
struct LogCheck {
  std::size_t acknowledged_events = 0;
  std::size_t stored_events = 0;
  /// Acknowledged event ids that are not stored.
  std::size_t lost = 0;
  /// Stored events beyond one per acknowledged id: an id stored twice, or an event stored
  /// that no writer was told about.
  std::size_t duplicated = 0;
  /// Streams whose versions are not 1, 2, ... n in log order.
  std::size_t gapped_streams = 0;
  /// Appends whose result (versions, position) differs from where their events are stored.
  std::size_t wrong_results = 0;
  /// Appends that met an OutcomeUnknownError, and of those, how many the re-send resolved
  /// (its result names exactly the stored events).
  std::size_t outcome_unknown = 0;
  std::size_t outcome_unknown_resolved = 0;
  /// The first few problems, described.
  std::vector<std::string> problems;
};

LogCheck check_log(const std::vector<RecordedEvent>& log,
                   const std::vector<AcknowledgedAppend>& acknowledged);

/// The subscription's deliveries against the log: the same events in the same order.
struct DeliveryCheck {
  std::size_t delivered = 0;
  std::size_t missing = 0;    ///< in the log, never delivered
  std::size_t repeated = 0;   ///< delivered more than once
  bool in_log_order = false;  ///< delivered exactly the log, in its order
};

DeliveryCheck check_deliveries(const std::vector<RecordedEvent>& log,
                               const std::vector<Delivered>& delivered);

/// The read model of projection_test_runner ("sums"): per stream, events, sum of amounts and
/// last version; plus the number of events applied and an order-dependent hash.
struct SumsModel {
  struct Row {
    std::int64_t events = 0;
    std::int64_t total = 0;
    std::int64_t last_version = 0;
    friend bool operator==(const Row&, const Row&) = default;
  };
  std::map<std::string, Row> streams;
  std::int64_t events = 0;
  std::int64_t hash = 0;
  friend bool operator==(const SumsModel&, const SumsModel&) = default;
};

std::ostream& operator<<(std::ostream& os, const SumsModel& model);

/// What the runner must hold after applying exactly `log`, in order.
SumsModel fold(const std::vector<RecordedEvent>& log);

/// The stored read model of the projection "sums" in the database of `url`, and its
/// checkpoint, from one snapshot.
struct StoredSums {
  Position checkpoint;
  SumsModel model;
};
StoredSums read_sums(const std::string& url);

/// 12345678 -> "12,345,678" (the summary lines).
std::string with_commas(std::int64_t n);

}  // namespace annals::faults
