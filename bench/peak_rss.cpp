#include "peak_rss.hpp"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

namespace annals::bench {
namespace {

constexpr auto kSampleInterval = std::chrono::milliseconds(10);

bool reset_high_water_mark() {
  std::ofstream clear_refs("/proc/self/clear_refs");
  if (!clear_refs) return false;
  clear_refs << "5";
  clear_refs.flush();
  return static_cast<bool>(clear_refs);
}

}  // namespace

std::uint64_t proc_status_kib(const char* field) {
  std::ifstream status("/proc/self/status");
  if (!status) throw std::runtime_error("cannot read /proc/self/status");
  const std::string prefix = std::string(field) + ":";
  for (std::string line; std::getline(status, line);) {
    if (line.compare(0, prefix.size(), prefix) == 0) {
      return std::stoull(line.substr(prefix.size()));  // "   1234 kB"
    }
  }
  throw std::runtime_error(std::string("/proc/self/status has no ") + field);
}

PeakRssMeter::PeakRssMeter() {
  malloc_trim(0);
  reading_.hwm_reset = reset_high_water_mark();
  reading_.start_kib = proc_status_kib("VmRSS");
  sampled_peak_kib_ = reading_.start_kib;
  sampler_ = std::thread([this] {
    while (running_.load()) {
      const auto rss = proc_status_kib("VmRSS");
      auto seen = sampled_peak_kib_.load();
      while (rss > seen && !sampled_peak_kib_.compare_exchange_weak(seen, rss)) {
      }
      std::this_thread::sleep_for(kSampleInterval);  // a sampling period, not a synchronization
    }
  });
}

PeakRssMeter::~PeakRssMeter() {
  running_ = false;
  if (sampler_.joinable()) sampler_.join();
}

PeakRss PeakRssMeter::stop() {
  running_ = false;
  if (sampler_.joinable()) sampler_.join();
  reading_.sampled_peak_kib = std::max(sampled_peak_kib_.load(), proc_status_kib("VmRSS"));
  reading_.hwm_kib = proc_status_kib("VmHWM");
  return reading_;
}

}  // namespace annals::bench
