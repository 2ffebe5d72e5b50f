// Progress of long work (import, verify) drawn in place on a terminal: one line on standard
// error, redrawn at most ten times a second, ended when the work ends. Off (prints nothing)
// when standard error is not a terminal or the output is JSON, so scripts see no change.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace annals::cli {

/// One line of progress, "<label> [#####.....]  45% (45000 events)" when the share done is
/// known, "<label> 45000 events (12000/s)" when it is not.
///
/// Thread safety: one thread.
class ProgressLine {
 public:
  /// Draws on `out` when `enabled`.
  ProgressLine(std::ostream& out, bool enabled, std::string label);
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  /// Ends the line (finish()).
  ~ProgressLine();

  /// `events` done so far and, when known, the percentage done (0..100). Redraws when the last
  /// drawing is 100 ms old, or at 100 %.
  void update(std::int64_t events, std::optional<int> percent = std::nullopt);
  /// Ends the line if one was drawn (a newline), so that what follows starts on its own line.
  void finish();

 private:
  void draw(std::int64_t events, std::optional<int> percent);

  std::ostream& out_;
  bool enabled_;
  std::string label_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> last_drawn_;
};

}  // namespace annals::cli
