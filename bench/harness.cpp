#include "harness.hpp"

#include <sys/resource.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <latch>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;

// The phases the main thread moves the writers through.
enum class Phase : int { kConnect, kWarm, kMeasure };

double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::chrono::nanoseconds to_duration(double seconds) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(seconds));
}

}  // namespace

Slice run_writers(int threads, double seconds, double warmup_seconds, const MakeStep& make) {
  std::latch connected(threads);
  std::latch warmed(threads);
  std::atomic<Phase> phase{Phase::kConnect};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  // Written by the main thread before it publishes the phase that uses them.
  Clock::time_point warm_end;
  Clock::time_point deadline;
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(threads), 0);

  auto record = [&](std::exception_ptr e) {
    std::lock_guard lock(error_mutex);
    if (!error) error = std::move(e);
    failed = true;
  };

  std::vector<std::thread> workers;
  workers.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      Step step;
      try {
        step = make(i);
      } catch (...) {
        record(std::current_exception());
      }
      connected.count_down();
      phase.wait(Phase::kConnect);
      try {
        while (step && !failed && Clock::now() < warm_end) step();
      } catch (...) {
        record(std::current_exception());
      }
      warmed.count_down();
      while (phase.load() != Phase::kMeasure) phase.wait(Phase::kWarm);
      std::uint64_t count = 0;
      try {
        while (step && !failed) {
          const auto events = step();
          if (Clock::now() > deadline) break;  // completed after the slice: not counted
          count += events;
        }
      } catch (...) {
        record(std::current_exception());
      }
      counts[static_cast<std::size_t>(i)] = count;
    });
  }

  connected.wait();
  warm_end = Clock::now() + to_duration(warmup_seconds);
  phase = Phase::kWarm;
  phase.notify_all();
  warmed.wait();
  const double cpu_start = process_cpu_seconds();
  const auto start = Clock::now();
  deadline = start + to_duration(seconds);
  phase = Phase::kMeasure;
  phase.notify_all();
  for (auto& worker : workers) worker.join();
  if (error) std::rethrow_exception(error);

  Slice slice;
  slice.client_cpu_seconds = process_cpu_seconds() - cpu_start;
  for (const auto count : counts) slice.events += count;
  slice.seconds = std::chrono::duration<double>(deadline - start).count();
  return slice;
}

Slice run_reads(double seconds, const std::function<std::uint64_t()>& step) {
  step();  // warm-up: connection, plans
  Slice slice;
  const double cpu_start = process_cpu_seconds();
  const auto start = Clock::now();
  do {
    slice.events += step();
    ++slice.steps;
    slice.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (slice.seconds < seconds);
  slice.client_cpu_seconds = process_cpu_seconds() - cpu_start;
  return slice;
}

double median(std::vector<double> values) {
  if (values.empty()) throw std::logic_error("median of nothing");
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

Payload make_payload() {
  constexpr std::uint64_t kSentinel = 987654321987654321ULL;
  Payload payload;
  payload.data = {
      {"account_id", "account-000042"},
      {"amount_cents", 125000},
      {"currency", "EUR"},
      {"description", "Salary May 2024"},
      {"booked_on", "2024-05-31"},
      {"reference", "INV-2024-000042-5c4f9a"},
      {"tags", {"payroll", "transfer"}},
      {"n", kSentinel},
  };
  payload.metadata = {
      {"correlation_id", "req-0190a5f2-6c1e-7b3a"},
      {"causation_id", "cmd-0190a5f2-6c1e-7b3b"},
      {"actor", "bench-writer"},
  };
  const std::string text = payload.data.dump();
  const std::string sentinel = std::to_string(kSentinel);
  const auto at = text.find(sentinel);
  payload.data_prefix = text.substr(0, at);
  payload.data_suffix = text.substr(at + sentinel.size());
  payload.metadata_text = payload.metadata.dump();
  return payload;
}

std::string random_tag(int hex_digits) {
  std::mt19937_64 rng{std::random_device{}()};
  const auto mask = hex_digits >= 16 ? ~0ULL : (1ULL << (4 * hex_digits)) - 1;
  return fmt::format("{:0{}x}", rng() & mask, hex_digits);
}

std::set<std::string> split_names(const std::string& list) {
  std::set<std::string> names;
  std::stringstream in(list);
  for (std::string name; std::getline(in, name, ',');) {
    if (!name.empty()) names.insert(name);
  }
  return names;
}

}  // namespace annals::bench
