// annals: the command-line tool for operators and auditors (docs/cli.md). The tool itself is
// annals::cli::run (run.cpp), which a user's own binary can call with an EventRegistry.
#include <ios>

#include "annals/cli/run.hpp"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  return annals::cli::run(argc, argv);
}
