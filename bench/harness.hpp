// annals-bench: the timing harness (parallel writers, repeated read passes) and the event
// payload every workload writes.
//
// A write measurement runs N threads. Each first connects and prepares (not timed), then all
// run a warm-up together (so pools are full and plans cached), then all are released at once
// and count the events of the operations that *completed* before the deadline; the rate is
// that count divided by the slice length. An operation in flight at the deadline is not
// counted, so nothing outside the slice is.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace annals::bench {

/// One timed slice.
struct Slice {
  std::uint64_t events = 0;
  /// The read steps (pages, COPYs, one-stream reads) the slice completed; 0 for write slices.
  std::uint64_t steps = 0;
  double seconds = 0.0;
  /// CPU time (user + system) this process used over the slice, all threads: the client's
  /// share of the work (the server runs in other processes).
  double client_cpu_seconds = 0.0;
  [[nodiscard]] double client_cpu_us_per_event() const {
    return events > 0 ? client_cpu_seconds * 1e6 / static_cast<double>(events) : 0.0;
  }
  [[nodiscard]] double rate() const {
    return seconds > 0.0 ? static_cast<double>(events) / seconds : 0.0;
  }
  /// Mean milliseconds per read step (the steps run back to back); 0 without steps.
  [[nodiscard]] double ms_per_step() const {
    return steps > 0 ? seconds * 1e3 / static_cast<double>(steps) : 0.0;
  }
};

/// Performs one operation (one append, one INSERT, ...) and returns the events it wrote.
using Step = std::function<std::uint64_t()>;
/// Builds thread `index`'s Step on that thread (connect, prepare). Not timed.
using MakeStep = std::function<Step(int index)>;

/// Runs `threads` writers: warm-up for `warmup_seconds`, then `seconds` timed.
/// Throws the first exception any thread threw.
Slice run_writers(int threads, double seconds, double warmup_seconds, const MakeStep& make);

/// Runs `step` once untimed (warm-up), then again and again until `seconds` have elapsed (at
/// least once). A step (one page, one COPY) returns the events it read; the slice ends with
/// the last completed step, so its rate covers whole steps only.
Slice run_reads(double seconds, const std::function<std::uint64_t()>& step);

/// The median (mean of the middle two for an even count). Requires: non-empty.
[[nodiscard]] double median(std::vector<double> values);

/// The event every workload writes: `data` ≈ 200 bytes and `metadata` ≈ 100 bytes of JSON,
/// a typical deposit. `data` has a counter field "n" so rows differ.
struct Payload {
  std::string event_type = "MoneyDeposited";
  nlohmann::json data;      ///< template; "n" is set per event
  nlohmann::json metadata;  ///< the same for every event
  // The serialized forms the ceilings send: prefix + n + suffix is exactly data.dump().
  std::string data_prefix;
  std::string data_suffix;
  std::string metadata_text;

  /// The serialized data of event number `n`.
  [[nodiscard]] std::string data_text(std::uint64_t n) const {
    return data_prefix + std::to_string(n) + data_suffix;
  }
};

[[nodiscard]] Payload make_payload();

/// Prints one progress line on stderr (the table goes to stdout).
template <typename... Args>
void report_progress(fmt::format_string<Args...> format, Args&&... args) {
  std::fputs((fmt::format(format, std::forward<Args>(args)...) + "\n").c_str(), stderr);
}

/// `hex_digits` random hex digits: a tag that keeps one run's streams and projections apart.
std::string random_tag(int hex_digits);

/// The non-empty names of a comma-separated list (an --only value).
std::set<std::string> split_names(const std::string& list);

}  // namespace annals::bench
