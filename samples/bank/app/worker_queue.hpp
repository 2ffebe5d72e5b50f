// The HTTP server's worker threads with a bounded queue. httplib's own ThreadPool (0.11 in
// Debian 12) queues connections without limit, so under overload every request waits however
// long the backlog takes. Here at most `workers + max_queued` connections are accepted for
// work; one more is handed to the overflow threads instead, where the pre-routing handler
// that answer_overload() installs answers 503 with a JSON error, Retry-After and
// Connection: close, without running any route, and counts it in Metrics.
//
// httplib reads the refused request before answering it, waiting up to its read timeout (5 s)
// for a client that sends nothing; its write of the small 503 goes to the socket buffer at
// once. Refused connections therefore run on kOverflowThreads threads, each on its own: a
// stalled client holds one of them and delays no other refusal, until kOverflowThreads
// clients stall at once. (Answering without httplib reading the request would need the
// socket, which httplib 0.11 keeps private: the task it enqueues is an opaque closure.)
//
// Thread safety: enqueue() from the server's listening thread, on_overflow_thread() from any.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <functional>

#include "metrics.hpp"

namespace bank {

/// Refused connections served at once; one more waits for one of them to end.
inline constexpr std::size_t kOverflowThreads = 32;

class BoundedWorkerQueue final : public httplib::TaskQueue {
 public:
  /// `workers` threads (at least 1) serve connections; up to `max_queued` more wait for one.
  BoundedWorkerQueue(std::size_t workers, std::size_t max_queued);

  /// Runs `fn` (one connection) on a worker, or on an overflow thread when
  /// `workers + max_queued` connections are already running or waiting. Cost: O(1).
  void enqueue(std::function<void()> fn) override;
  /// Finishes the queued connections and joins every thread.
  void shutdown() override;

  /// True on an overflow thread: the connection being served there was refused for room.
  [[nodiscard]] static bool on_overflow_thread() noexcept;

 private:
  const std::size_t capacity_;
  std::atomic<std::size_t> accepted_{0};  // running or waiting on the workers
  httplib::ThreadPool workers_;
  httplib::ThreadPool overflow_;
};

/// Seconds a refused client is told to wait (the Retry-After header of the 503).
inline constexpr int kOverloadRetryAfterSeconds = 1;

/// Installs on `server` the pre-routing handler that answers every request on an overflow
/// thread with 503, {"error": "..."} naming the limits, Retry-After and Connection: close, and
/// counts it in `metrics` (Metrics::count_rejected_request). `metrics` must outlive `server`.
void answer_overload(httplib::Server& server, std::size_t workers, std::size_t max_queued,
                     Metrics& metrics);

}  // namespace bank
