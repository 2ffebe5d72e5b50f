#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>

namespace annals::testing {

ChildProcess::ChildProcess(std::vector<std::string> argv, std::string label, bool capture_stderr)
    : label_(std::move(label)) {
  if (capture_stderr) {
    std::string path = (std::filesystem::temp_directory_path() / "annals-child-XXXXXX").string();
    const int fd = ::mkstemp(path.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    err_path_ = path;
  }
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe
  // calls (the test process has threads).
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const int err_fd =
      capture_stderr ? ::open(err_path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC) : -1;
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // Signals a test thread blocks (to wait for them) must not stay blocked in the child.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    if (err_fd >= 0) ::dup2(err_fd, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  if (err_fd >= 0) ::close(err_fd);
  reader_ = std::thread([this, fd = pipe_fds[0]] { read_loop(fd); });
}

ChildProcess::~ChildProcess() {
  if (!status_) {
    kill(SIGKILL);
    wait();
  }
  if (reader_.joinable()) reader_.join();
  if (!err_path_.empty()) std::filesystem::remove(err_path_);
}

void ChildProcess::read_loop(int fd) {
  std::string pending;
  char buffer[4096];
  while (true) {
    const auto n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<std::size_t>(n));
    std::size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      Line line{Clock::now(), pending.substr(0, newline)};
      pending.erase(0, newline + 1);
      std::cerr << "[" << label_ << "] " << line.text << '\n';
      std::lock_guard lock(mutex_);
      lines_.push_back(std::move(line));
      changed_.notify_all();
    }
  }
  ::close(fd);
  std::lock_guard lock(mutex_);
  if (!pending.empty()) lines_.push_back({Clock::now(), pending});
  closed_ = true;
  changed_.notify_all();
}

void ChildProcess::kill(int signal) {
  if (!status_) ::kill(pid_, signal);
}

int ChildProcess::wait() {
  if (!status_) {
    int raw = 0;
    while (::waitpid(pid_, &raw, 0) < 0) {
      if (errno != EINTR) throw std::runtime_error("waitpid failed");
    }
    status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  }
  // Stdout is complete once the child (and any process that inherited it) is gone.
  if (reader_.joinable()) reader_.join();
  return *status_;
}

bool ChildProcess::exited() {
  if (status_) return true;
  int raw = 0;
  const auto r = ::waitpid(pid_, &raw, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    return true;
  }
  return false;
}

std::optional<int> ChildProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  // Bounded polling of waitpid: there is no waitpid with a timeout.
  const auto deadline = Clock::now() + timeout;
  while (!exited()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return wait();
}

std::optional<int> ChildProcess::stop(int signal, std::chrono::milliseconds timeout) {
  kill(signal);
  if (auto status = wait_for_exit(timeout)) return status;
  kill(SIGKILL);
  wait();
  return std::nullopt;
}

std::optional<std::string> ChildProcess::line_starting_with(std::string_view prefix) const {
  std::lock_guard lock(mutex_);
  for (const auto& line : lines_) {
    if (line.text.starts_with(prefix)) return line.text;
  }
  return std::nullopt;
}

std::optional<ChildProcess::Clock::time_point> ChildProcess::wait_for_line(
    std::string_view prefix, std::chrono::milliseconds timeout, std::size_t from) {
  const auto deadline = Clock::now() + timeout;
  std::unique_lock lock(mutex_);
  std::size_t checked = from;
  while (true) {
    for (; checked < lines_.size(); ++checked) {
      if (lines_[checked].text.starts_with(prefix)) return lines_[checked].at;
    }
    if (closed_) return std::nullopt;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout &&
        checked == lines_.size()) {
      return std::nullopt;
    }
  }
}

std::vector<ChildProcess::Line> ChildProcess::lines() const {
  std::lock_guard lock(mutex_);
  return lines_;
}

std::string ChildProcess::out() const {
  std::string text;
  for (const auto& line : lines()) text += line.text + '\n';
  return text;
}

std::string ChildProcess::err() const {
  if (err_path_.empty()) return {};
  std::ifstream in(err_path_, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace annals::testing
