#include "service_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

namespace bank_test {
namespace {

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

ChildProcess::ChildProcess(const std::string& path, const std::vector<std::string>& args,
                           const std::string& ready, std::chrono::milliseconds timeout) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return;
  }
  std::vector<std::string> argv_text{path};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], STDOUT_FILENO);
    // The child must not inherit the test's blocked signals (it blocks its own).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  stdout_fd_ = fds[0];
  if (pid_ < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return;
  }

  // Read lines until the readiness line, bounded by `timeout`.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string buffer;
  for (;;) {
    const auto newline = buffer.find('\n');
    if (newline != std::string::npos) {
      const std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      if (line.rfind(ready, 0) == 0) {
        ready_ = true;
        ready_text_ = line.substr(ready.size());
        return;
      }
      continue;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{stdout_fd_, POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char chunk[512];
    const ssize_t got = read(stdout_fd_, chunk, sizeof chunk);
    if (got <= 0) break;  // the child closed stdout: it exited
    buffer.append(chunk, static_cast<std::size_t>(got));
  }
  ADD_FAILURE() << path << " did not print \"" << ready << "...\" within " << timeout.count()
                << " ms";
  stop(SIGKILL);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) stop(SIGKILL);
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

int ChildProcess::stop(int signal, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  // Wait for the exit, bounded: WNOHANG polls on a short back-off, then SIGKILL.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (done < 0 && errno != EINTR) {
      pid_ = -1;
      return -1;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "process " << pid_ << " did not exit within " << timeout.count()
                    << " ms of signal " << signal << "; killing it";
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return exit_status(status);
}

ServiceProcess::ServiceProcess(const std::vector<std::string>& args)
    : ChildProcess(BANK_SERVICE_PATH, args, "listening on ") {}

int ServiceProcess::port() const {
  const auto colon = ready_text().rfind(':');
  if (colon == std::string::npos) return 0;
  return std::atoi(ready_text().c_str() + colon + 1);
}

}  // namespace bank_test
