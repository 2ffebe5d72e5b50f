// Runs a program to completion for tests (the CLI tests): stdin from a string, stdout and
// stderr into files (so no pipe can fill up and deadlock), and the exit status.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace annals::testing {

struct ProcessResult {
  int exit_code = -1;  ///< the exit code, or 128 + the signal that ended the process
  std::string out;
  std::string err;
};

/// "exit N", then stdout and stderr, for test failure messages.
std::ostream& operator<<(std::ostream& os, const ProcessResult& result);

/// Runs argv[0] with `argv`, feeding `input` on stdin, and waits for it to end.
/// `environment` ("NAME=value" entries) replaces the test process's environment when given.
/// Throws std::runtime_error when the program cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "",
                          const std::optional<std::vector<std::string>>& environment = {});

/// This process's environment without the variable `name`.
std::vector<std::string> environment_without(std::string_view name);

}  // namespace annals::testing
