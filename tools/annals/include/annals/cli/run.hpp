// The `annals` command-line tool as a library function, so that an application can build its
// own `annals` binary with its EventRegistry: `read` and `read-all` then print events upcast
// to their current schema (renames, splits and version upgrades applied; docs/cli.md, "A CLI
// with your registry"). Every other verb, option, output and exit code is the stock tool's.
//
//   #include "annals/cli/run.hpp"
//   int main(int argc, char** argv) {
//     static annals::EventRegistry registry;   // lives as long as the program
//     bank::register_events(registry);         // types and upcasters
//     registry.validate();
//     return annals::cli::run(argc, argv, &registry);
//   }
//
// Link the CMake target annals::cli (built with the tools, ANNALS_BUILD_TOOLS).
#pragma once

#include "annals/framework/event_registry.hpp"

namespace annals::cli {

/// Parses `argv` as the `annals` tool does, runs the command and returns the process exit
/// code (docs/cli.md, "Exit codes"); errors are printed to stderr, never thrown. With
/// `registry` (null: the stock tool), `read` and `read-all` print upcast events.
/// Thread safety: call it once, from main(): it configures the "annals" spdlog logger and
/// writes to std::cout and std::cerr.
int run(int argc, char** argv, const EventRegistry* registry = nullptr);

}  // namespace annals::cli
