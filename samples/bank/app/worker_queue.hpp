// The HTTP server's worker threads with a bounded queue. httplib's own ThreadPool (0.11 in
// Debian 12) queues connections without limit, so under overload every request waits however
// long the backlog takes. Here at most `workers + max_queued` connections are accepted for
// work; one more is handed to a single overflow thread instead, where the pre-routing handler
// that answer_overload() installs answers 503 with a JSON error, Retry-After and
// Connection: close, without running any route.
//
// Thread safety: enqueue() from the server's listening thread, on_overflow_thread() from any.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <functional>

namespace bank {

class BoundedWorkerQueue final : public httplib::TaskQueue {
 public:
  /// `workers` threads (at least 1) serve connections; up to `max_queued` more wait for one.
  BoundedWorkerQueue(std::size_t workers, std::size_t max_queued);

  /// Runs `fn` (one connection) on a worker, or on the overflow thread when
  /// `workers + max_queued` connections are already running or waiting. Cost: O(1).
  void enqueue(std::function<void()> fn) override;
  /// Finishes the queued connections and joins every thread.
  void shutdown() override;

  /// True on the overflow thread: the connection being served there was refused for room.
  [[nodiscard]] static bool on_overflow_thread() noexcept;

 private:
  const std::size_t capacity_;
  std::atomic<std::size_t> accepted_{0};  // running or waiting on the workers
  httplib::ThreadPool workers_;
  httplib::ThreadPool overflow_;
};

/// Seconds a refused client is told to wait (the Retry-After header of the 503).
inline constexpr int kOverloadRetryAfterSeconds = 1;

/// Installs on `server` the pre-routing handler that answers every request on the overflow
/// thread with 503, {"error": "..."} naming the limits, Retry-After and Connection: close.
void answer_overload(httplib::Server& server, std::size_t workers, std::size_t max_queued);

}  // namespace bank
