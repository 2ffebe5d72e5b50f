// The write load of the fault-injection suite: writer threads that append to streams of their
// own with event ids they choose, and retry a failed append with the same ids until it
// succeeds. Every acknowledged append is recorded (ids and result) for the checks afterwards.
//
//   annals::faults::WriteLoad load(*store, {.writers = 4});
//   load.start();
//   ... inject faults, heal ...
//   load.stop();
//   for (const auto& append : load.acknowledged()) { ... }
//
// Half the writers append with ExpectedVersion::exact (they know their streams' versions),
// half with ExpectedVersion::any, so that an append stored twice would show either as a
// ConcurrencyError or as a stream with extra versions. Only retryable errors
// (UnavailableError, OutcomeUnknownError) are retried; any other error is a finding: the
// writer records it and stops.
//
// Thread safety: start(), stop() and the accessors from one test thread; the counters may be
// read while the writers run.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "annals/eventstore/event_store.hpp"

namespace annals::faults {

struct WriteLoadOptions {
  /// Writer threads. Default 4.
  int writers = 4;
  /// Streams per writer, appended to in turn. Default 3.
  int streams_per_writer = 3;
  /// Most events per append (1 to this many, seeded). Default 3.
  int max_events_per_append = 3;
  /// Seed of the writers' choices (stream order, sizes, amounts).
  std::uint64_t seed = 20261206;
  /// Pause between retries of a failed append, doubled per attempt up to max_backoff.
  std::chrono::milliseconds initial_backoff{10};
  std::chrono::milliseconds max_backoff{250};
};

/// One acknowledged append: what was sent and what the store answered.
struct AcknowledgedAppend {
  StreamId stream;
  std::vector<EventId> ids;
  AppendResult result;
  /// Attempts that failed before it succeeded.
  int failed_attempts = 0;
  /// Whether one of those failures was an OutcomeUnknownError (the re-send resolved it).
  bool outcome_was_unknown = false;
};

class WriteLoad {
 public:
  WriteLoad(EventStore& store, WriteLoadOptions options);
  WriteLoad(const WriteLoad&) = delete;
  WriteLoad& operator=(const WriteLoad&) = delete;
  /// Stops and joins the writers.
  ~WriteLoad();

  /// Starts the writer threads.
  void start();
  /// Lets every writer finish its append in flight (retrying until it succeeds or fails for
  /// good), then joins them. Idempotent.
  void stop();

  /// Appends acknowledged so far, by all writers.
  [[nodiscard]] std::size_t appends() const noexcept { return appends_.load(); }
  /// Events acknowledged so far.
  [[nodiscard]] std::size_t events() const noexcept { return events_.load(); }
  /// The fewest appends any one writer has had acknowledged (each writer must make progress).
  [[nodiscard]] std::size_t slowest_writer_appends() const;
  /// Failed attempts that were retried.
  [[nodiscard]] std::size_t retries() const noexcept { return retries_.load(); }
  /// Of those, OutcomeUnknownErrors.
  [[nodiscard]] std::size_t outcome_unknown() const noexcept { return outcome_unknown_.load(); }
  /// The longest time one append took from its first attempt to its acknowledgement, retries
  /// (the writer's, and the store's own on a fresh connection) included.
  [[nodiscard]] std::chrono::milliseconds longest_stall() const;

  /// The longest time one failed attempt took to fail (how long a caller waited for its
  /// error).
  [[nodiscard]] std::chrono::milliseconds longest_failed_attempt() const;

  /// Every acknowledged append (after stop()).
  [[nodiscard]] std::vector<AcknowledgedAppend> acknowledged() const;
  /// Non-retryable errors the writers met (each stopped its writer); empty when all went well.
  [[nodiscard]] std::vector<std::string> errors() const;

 private:
  struct Writer;
  void run(Writer& writer);
  AcknowledgedAppend append_until_acknowledged(Writer& writer, const StreamId& stream,
                                               std::vector<NewEvent> events);

  EventStore& store_;
  WriteLoadOptions options_;
  std::vector<std::unique_ptr<Writer>> writers_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> appends_{0};
  std::atomic<std::size_t> events_{0};
  std::atomic<std::size_t> retries_{0};
  std::atomic<std::size_t> outcome_unknown_{0};
  std::atomic<std::int64_t> longest_stall_ms_{0};
  std::atomic<std::int64_t> longest_failed_attempt_ms_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> errors_;
};

}  // namespace annals::faults
