// Test helper: runs bank-service or bank-projector as a real child process, waits for its
// readiness line on stdout (bounded), and stops it with a chosen signal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace bank_test {

class ChildProcess {
 public:
  /// Starts `path` with `args`, then reads its stdout until a line starting with `ready` comes
  /// (at most `timeout`). stderr is inherited (the service's log shows in the test output).
  /// Fails the test (ADD_FAILURE) and returns a stopped child when it does not come.
  ChildProcess(const std::string& path, const std::vector<std::string>& args,
               const std::string& ready,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  /// Kills the child with SIGKILL if it still runs.
  ~ChildProcess();

  [[nodiscard]] bool ready() const noexcept { return ready_; }
  /// The rest of the readiness line ("127.0.0.1:PORT" for "listening on ").
  [[nodiscard]] const std::string& ready_text() const noexcept { return ready_text_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  /// Sends `signal` and waits (at most `timeout`, then SIGKILL) for the child to exit.
  /// Returns its exit status (128 + signal when a signal ended it).
  int stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  bool ready_ = false;
  std::string ready_text_;
};

/// A bank-service child listening on a port chosen by the system.
class ServiceProcess : public ChildProcess {
 public:
  explicit ServiceProcess(const std::vector<std::string>& args);
  [[nodiscard]] int port() const;
};

}  // namespace bank_test
