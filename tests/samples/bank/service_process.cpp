#include "service_process.hpp"

#include <signal.h>

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

namespace bank_test {
namespace {

std::vector<std::string> command(const std::string& path, const std::vector<std::string>& args) {
  std::vector<std::string> argv{path};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace

ChildProcess::ChildProcess(const std::string& path, const std::vector<std::string>& args,
                           const std::string& ready, std::chrono::milliseconds timeout)
    : child_(command(path, args), std::filesystem::path(path).filename().string()) {
  if (child_.wait_for_line(ready, timeout)) {
    ready_ = true;
    ready_text_ = child_.line_starting_with(ready).value_or(ready).substr(ready.size());
    return;
  }
  ADD_FAILURE() << path << " did not print \"" << ready << "...\" within " << timeout.count()
                << " ms";
  child_.stop(SIGKILL, std::chrono::seconds(30));
}

int ChildProcess::stop(int signal, std::chrono::milliseconds timeout) {
  const auto status = child_.stop(signal, timeout);
  if (!status) {
    ADD_FAILURE() << "process " << child_.pid() << " did not exit within " << timeout.count()
                  << " ms of signal " << signal << "; killed it";
    return 128 + SIGKILL;
  }
  return *status;
}

ServiceProcess::ServiceProcess(const std::vector<std::string>& args)
    : ChildProcess(BANK_SERVICE_PATH, args, "listening on ") {}

int ServiceProcess::port() const {
  const auto colon = ready_text().rfind(':');
  if (colon == std::string::npos) return 0;
  return std::atoi(ready_text().c_str() + colon + 1);
}

}  // namespace bank_test
