#include "store_builder.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "annals/eventstore/event_store.hpp"
#include "workloads.hpp"

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;

// The events of stream number `n`.
std::vector<NewEvent> stream_events(const Payload& payload, const StoreBuildOptions& options,
                                    std::uint64_t n) {
  std::vector<NewEvent> events;
  events.reserve(static_cast<std::size_t>(options.events_per_stream));
  const auto per_stream = static_cast<std::uint64_t>(options.events_per_stream);
  for (std::uint64_t k = 1; k <= per_stream; ++k) {
    NewEvent event;
    event.type = payload.event_type;
    event.data = payload.data;
    event.data["n"] = n * per_stream + k;
    event.metadata = payload.metadata;
    events.push_back(std::move(event));
  }
  return events;
}

// Prints a line each time the events written cross another 5 % of the build.
class BuildProgress {
 public:
  BuildProgress(std::uint64_t total_events, Clock::time_point start)
      : total_(total_events), step_(std::max<std::uint64_t>(1, total_events / 20)), start_(start) {}

  void add(std::uint64_t events) {
    const auto before = written_.fetch_add(events);
    const auto after = before + events;
    if (before / step_ == after / step_) return;
    const std::chrono::duration<double> elapsed = Clock::now() - start_;
    double load[1] = {0};
    getloadavg(load, 1);
    report_progress(
        "annals-bench: long haul: built {} of {} events ({:.0f} %) in {:.0f} s, {:.0f} "
        "events/s, load {:.2f}",
        after, total_, 100.0 * static_cast<double>(after) / static_cast<double>(total_),
        elapsed.count(), static_cast<double>(after) / elapsed.count(), load[0]);
  }

 private:
  std::uint64_t total_;
  std::uint64_t step_;
  Clock::time_point start_;
  std::atomic<std::uint64_t> written_{0};
};

}  // namespace

std::string built_stream_id(const StoreBuildOptions& options, std::uint64_t n) {
  return options.category + "-" + std::to_string(n);
}

StoreBuild build_streams(const std::string& conninfo, const Payload& payload,
                         std::uint64_t first_stream, std::uint64_t end_stream,
                         const StoreBuildOptions& options) {
  auto store = open_store(conninfo, static_cast<std::size_t>(options.writers), false);
  const auto per_append = static_cast<std::uint64_t>(options.streams_per_append);
  const auto per_stream = static_cast<std::uint64_t>(options.events_per_stream);
  std::atomic<std::uint64_t> next{first_stream};
  std::atomic<std::uint64_t> appends{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  const auto start = Clock::now();
  BuildProgress progress((end_stream - first_stream) * per_stream, start);

  const auto write = [&] {
    try {
      for (;;) {
        const auto from = next.fetch_add(per_append);
        if (from >= end_stream || failed) return;
        std::vector<StreamAppend> batch;
        for (auto n = from; n < std::min(end_stream, from + per_append); ++n) {
          batch.push_back({StreamId(built_stream_id(options, n)), ExpectedVersion::no_stream(),
                           stream_events(payload, options, n)});
        }
        const auto streams = batch.size();
        (void)store->append_multi(std::move(batch));
        appends.fetch_add(1);
        progress.add(streams * per_stream);
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> writers;
  for (int w = 0; w < options.writers; ++w) writers.emplace_back(write);
  for (auto& writer : writers) writer.join();
  if (error) std::rethrow_exception(error);

  StoreBuild build;
  build.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  build.events = (end_stream - first_stream) * per_stream;
  build.appends = appends.load();
  return build;
}

}  // namespace annals::bench
