// bank-service: the bank sample's HTTP service (docs/samples/bank.md).
//
//   bank-service --db postgresql://annals@127.0.0.1:5432/bank --port 8080
//   bank-service --memory --port 0          # no database; prints "listening on 127.0.0.1:PORT"
//   bank-service --db URL --no-projections  # with bank-projector running the read models
//   bank-service --db URL --check-snapshots # compare snapshots with their events, then exit
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "service.hpp"

int main(int argc, char** argv) {
  bank::block_termination_signals();  // before any thread starts

  bank::ServiceOptions options;
  bool no_projections = false;
  bool check_snapshots = false;
  long long read_timeout_ms = options.read_timeout.count();
  long long lease_ttl_ms = options.lease_ttl.count();

  CLI::App app{"bank-service: the annals bank sample over HTTP"};
  app.add_option("--db", options.database_url,
                 "PostgreSQL connection string (default: $ANNALS_DATABASE_URL)");
  app.add_option("--migrate-db", options.migrate_url,
                 "apply migrations through this connection string (the owner or an "
                 "administrator; default: --db)");
  app.add_flag("--memory", options.memory, "in-memory store and read models, no database");
  app.add_flag("--no-projections", no_projections,
               "do not run the read models here (bank-projector runs them)");
  app.add_flag("--check-snapshots", check_snapshots,
               "replay every account from its events, compare with its snapshot, print the "
               "report and exit (0: all match, 6: a mismatch)");
  app.add_option("--host", options.host, "interface to listen on")->capture_default_str();
  app.add_option("--port", options.port, "port to listen on; 0 picks a free one")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--threads", options.threads, "HTTP worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--max-queued-requests", options.max_queued_requests,
                 "connections that may wait for a worker thread; beyond, 503 at once")
      ->capture_default_str()
      ->check(CLI::Range(0, 100'000));
  app.add_option("--read-timeout-ms", read_timeout_ms, "longest wait of GET ...?after=")
      ->capture_default_str()
      ->check(CLI::Range(1, 600'000));
  app.add_option("--max-body-bytes", options.max_body_bytes, "largest request body")
      ->capture_default_str()
      ->check(CLI::Range(1, 64 << 20));
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

  options.run_projections = !no_projections;
  options.read_timeout = std::chrono::milliseconds(read_timeout_ms);
  options.lease_ttl = std::chrono::milliseconds(lease_ttl_ms);
  if (options.memory && !options.database_url.empty()) {
    std::cerr << "bank-service: give either --memory or --db, not both\n";
    return 2;
  }
  if (options.memory && no_projections) {
    std::cerr << "bank-service: --no-projections needs a database (the read models of --memory "
                 "live in this process)\n";
    return 2;
  }
  if (!options.memory && options.database_url.empty()) {
    if (const char* url = std::getenv("ANNALS_DATABASE_URL"); url != nullptr && *url != '\0') {
      options.database_url = url;
    } else {
      std::cerr << "bank-service: no database: pass --db URL, set ANNALS_DATABASE_URL, or use "
                   "--memory\n";
      return 2;
    }
  }
  if (check_snapshots) return bank::check_snapshots(options);
  return bank::run_service(options);
}
