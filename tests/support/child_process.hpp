// A child process for tests that run real programs (projection runners, the bank service, the
// CLI): fork/exec with its stdout read line by line on a thread (each line time-stamped on
// arrival), so that a test can wait for a line such as "owner acquired" or "listening on"
// with a deadline, kill the child with any signal at a chosen moment and collect its exit
// status. Stderr goes to the test's stderr (the child's logs) or to a file (the CLI, whose
// messages the tests check). The child starts with no signal blocked, whatever the test's
// threads block, and gets SIGKILL if the test process dies.
//
// Thread safety: one test thread drives a ChildProcess; the reader thread only appends lines
// under the mutex.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace annals::testing {

class ChildProcess {
 public:
  using Clock = std::chrono::steady_clock;

  struct Line {
    Clock::time_point at;
    std::string text;
  };

  /// Starts argv[0] with argv. `label` prefixes the child's lines echoed to the test's stderr.
  /// With `capture_stderr`, the child's stderr goes to a file read by err().
  /// The child gets SIGKILL if the test process dies (PR_SET_PDEATHSIG).
  ChildProcess(std::vector<std::string> argv, std::string label, bool capture_stderr = false);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  /// Kills the child with SIGKILL if it still runs, and reaps it.
  ~ChildProcess();

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// Sends `signal` unless the child was already reaped.
  void kill(int signal);
  /// Waits for the child to end: its exit code, or 128 + the signal that ended it.
  int wait();
  /// Like wait(), but gives up after `timeout` (empty: still running).
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);
  /// Sends `signal` and waits up to `timeout` for the child to end: its status as wait()
  /// gives it, or empty when it had to be killed with SIGKILL after the timeout.
  std::optional<int> stop(int signal, std::chrono::milliseconds timeout);
  /// True once the child ended (reaps it).
  bool exited();

  /// Waits until a stdout line starting with `prefix` has arrived (at any time since the
  /// start, at or after line index `from`); returns its arrival time, or empty on timeout or
  /// when stdout closed without one.
  std::optional<Clock::time_point> wait_for_line(std::string_view prefix,
                                                 std::chrono::milliseconds timeout,
                                                 std::size_t from = 0);
  /// The first stdout line so far that starts with `prefix`, if any.
  [[nodiscard]] std::optional<std::string> line_starting_with(std::string_view prefix) const;
  /// Every stdout line so far.
  [[nodiscard]] std::vector<Line> lines() const;
  /// Stdout so far, lines joined with '\n'.
  [[nodiscard]] std::string out() const;
  /// The captured stderr (capture_stderr only); complete once the child ended.
  [[nodiscard]] std::string err() const;

 private:
  void read_loop(int fd);

  std::string label_;
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string err_path_;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Line> lines_;
  bool closed_ = false;
};

}  // namespace annals::testing
