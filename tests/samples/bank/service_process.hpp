// Test helper: runs bank-service or bank-projector as a real child process (the shared
// annals::testing::ChildProcess), waits for its readiness line on stdout (bounded), and stops
// it with a chosen signal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "child_process.hpp"

namespace bank_test {

class ChildProcess {
 public:
  /// Starts `path` with `args`, then waits until a stdout line starting with `ready` comes
  /// (at most `timeout`). stderr is inherited (the service's log shows in the test output).
  /// Fails the test (ADD_FAILURE) and stops the child when it does not come.
  ChildProcess(const std::string& path, const std::vector<std::string>& args,
               const std::string& ready,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

  [[nodiscard]] bool ready() const noexcept { return ready_; }
  /// The rest of the readiness line ("127.0.0.1:PORT" for "listening on ").
  [[nodiscard]] const std::string& ready_text() const noexcept { return ready_text_; }
  [[nodiscard]] pid_t pid() const noexcept { return child_.pid(); }

  /// Sends `signal` and waits (at most `timeout`, then SIGKILL and a test failure) for the
  /// child to exit. Returns its exit status (128 + signal when a signal ended it).
  int stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  annals::testing::ChildProcess child_;
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
