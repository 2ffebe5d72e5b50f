// bank-annals: the `annals` command-line tool built with the bank's EventRegistry, so that
// `read` and `read-all` print the bank's events upcast to their current schema (docs/cli.md,
// "A CLI with your registry"). Every other verb is the stock tool's.
//
//   bank-annals read-all --db postgresql://annals@127.0.0.1:5432/bank --type MoneyDeposited
// docs:begin cli-with-registry
#include <ios>

#include "account.hpp"
#include "annals/cli/run.hpp"
#include "annals/framework/event_registry.hpp"

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  static annals::EventRegistry registry;  // outlives the command
  bank::register_events(registry);        // the bank's event types (and any upcasters)
  registry.validate();
  return annals::cli::run(argc, argv, &registry);
}
// docs:end
