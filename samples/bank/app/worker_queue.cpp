#include "worker_queue.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace bank {
namespace {

thread_local bool t_on_overflow_thread = false;

// Gives a connection's slot back when it ends, whether it returns or throws.
class SlotRelease {
 public:
  explicit SlotRelease(std::atomic<std::size_t>& accepted) : accepted_(accepted) {}
  SlotRelease(const SlotRelease&) = delete;
  SlotRelease& operator=(const SlotRelease&) = delete;
  ~SlotRelease() { accepted_.fetch_sub(1); }

 private:
  std::atomic<std::size_t>& accepted_;
};

}  // namespace

BoundedWorkerQueue::BoundedWorkerQueue(std::size_t workers, std::size_t max_queued)
    : capacity_(std::max<std::size_t>(1, workers) + max_queued),
      workers_(std::max<std::size_t>(1, workers)),
      overflow_(kOverflowThreads) {}

void BoundedWorkerQueue::enqueue(std::function<void()> fn) {
  // Counted when accepted, not when a worker picks it up: whether a connection is refused
  // depends only on how many came before it and have not ended, never on thread scheduling.
  if (accepted_.fetch_add(1) < capacity_) {
    workers_.enqueue([this, fn = std::move(fn)] {
      const SlotRelease release(accepted_);
      fn();
    });
    return;
  }
  accepted_.fetch_sub(1);
  overflow_.enqueue([fn = std::move(fn)] {
    t_on_overflow_thread = true;
    fn();
  });
}

void BoundedWorkerQueue::shutdown() {
  workers_.shutdown();
  overflow_.shutdown();
}

bool BoundedWorkerQueue::on_overflow_thread() noexcept { return t_on_overflow_thread; }

void answer_overload(httplib::Server& server, std::size_t workers, std::size_t max_queued,
                     Metrics& metrics) {
  const std::string body = nlohmann::json{
      {"error", "the service is busy: all " + std::to_string(workers) + " workers are busy and " +
                    std::to_string(max_queued) + " requests are waiting; try again in " +
                    std::to_string(kOverloadRetryAfterSeconds) +
                    " s"}}.dump();
  server.set_pre_routing_handler([body, &metrics](const httplib::Request&, httplib::Response& res) {
    if (!BoundedWorkerQueue::on_overflow_thread())
      return httplib::Server::HandlerResponse::Unhandled;
    metrics.count_rejected_request();
    res.status = 503;
    res.set_header("Retry-After", std::to_string(kOverloadRetryAfterSeconds));
    // An overflow thread serves one request per connection: the client is told to close.
    res.set_header("Connection", "close");
    res.set_content(body, "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
}

}  // namespace bank
