// bank-projector: runs the bank's read models (balances, transactions, daily totals) in their
// own process, for `bank-service --no-projections`. Several may run at once: one owns each
// projection (a lease in PostgreSQL) and the others stand by to take over.
//
//   bank-projector --db postgresql://annals@127.0.0.1:5432/bank
#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "service.hpp"

int main(int argc, char** argv) {
  bank::block_termination_signals();  // before any thread starts

  bank::ProjectorOptions options;
  long long lease_ttl_ms = options.lease_ttl.count();
  CLI::App app{"bank-projector: the annals bank sample's read models"};
  app.add_option("--migrate-db", options.migrate_url,
                 "apply migrations through this connection string (default: --db)");
  app.add_option("--db", options.database_url,
                 "PostgreSQL connection string (default: $ANNALS_DATABASE_URL)");
  app.add_option("--runner-name", options.runner_name,
                 "name of this process in projection leases (default: generated)");
  app.add_option("--log-level", options.log_level,
                 "trace, debug, info, warn, error, critical or off (debug: projections name the "
                 "trace id of each traced event they apply)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--log-file", options.log_file, "also append the log to this file");
  app.add_option("--lease-ttl-ms", lease_ttl_ms, "projection lease duration")
      ->capture_default_str()
      ->check(CLI::Range(100, 600'000));
  CLI11_PARSE(app, argc, argv);
  options.lease_ttl = std::chrono::milliseconds(lease_ttl_ms);

  if (options.database_url.empty()) {
    if (const char* url = std::getenv("ANNALS_DATABASE_URL"); url != nullptr && *url != '\0') {
      options.database_url = url;
    } else {
      std::cerr << "bank-projector: no database: pass --db URL or set ANNALS_DATABASE_URL\n";
      return 2;
    }
  }
  return bank::run_projector(options);
}
