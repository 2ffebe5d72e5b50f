// annals-bench: the peak resident set size of this process over one phase (the long haul's
// projection replay), to show that a replay's memory does not grow with the store.
//
// Two readings, both from /proc/self/status: the kernel's high-water mark VmHWM, reset at the
// start of the phase by writing "5" to /proc/self/clear_refs (Linux >= 4.0; when the write is
// refused the mark covers the whole process life and is reported as not reset), and the
// largest VmRSS seen by a thread sampling every 10 ms. Before the phase starts, memory that the
// allocator holds free is returned to the system (malloc_trim), so the phase starts from what
// the process really uses.
//
// Thread safety: one thread constructs and stops a meter; the sampler is internal.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace annals::bench {

/// What a meter saw, in KiB.
struct PeakRss {
  /// VmRSS when the phase started (after the trim).
  std::uint64_t start_kib = 0;
  /// The largest VmRSS sampled during the phase.
  std::uint64_t sampled_peak_kib = 0;
  /// VmHWM at the end of the phase.
  std::uint64_t hwm_kib = 0;
  /// True when VmHWM was reset at the start, so hwm_kib is the phase's own peak.
  bool hwm_reset = false;
  /// The phase's peak: the larger of VmHWM (when it was reset: it sees peaks between samples)
  /// and the sampled peak (the kernel folds threads' page counts into VmHWM lazily, so a sample
  /// can exceed it by a few hundred KiB).
  [[nodiscard]] std::uint64_t peak_kib() const {
    return hwm_reset && hwm_kib > sampled_peak_kib ? hwm_kib : sampled_peak_kib;
  }
};

/// Measures from construction to stop(). Throws std::runtime_error when /proc/self/status
/// cannot be read (not Linux).
class PeakRssMeter {
 public:
  PeakRssMeter();
  PeakRssMeter(const PeakRssMeter&) = delete;
  PeakRssMeter& operator=(const PeakRssMeter&) = delete;
  ~PeakRssMeter();

  /// Ends the phase and returns the readings. Call once.
  PeakRss stop();

 private:
  PeakRss reading_;
  std::atomic<bool> running_{true};
  std::atomic<std::uint64_t> sampled_peak_kib_{0};
  std::thread sampler_;
};

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM"). Throws std::runtime_error when
/// the file or the field is missing.
[[nodiscard]] std::uint64_t proc_status_kib(const char* field);

}  // namespace annals::bench
