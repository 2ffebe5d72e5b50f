// Assembles the bank service and the bank projector from their options: stores, registry,
// command bus, read models, projection runner, HTTP server. main.cpp and projector.cpp only
// parse flags and call these.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace bank {

struct ServiceOptions {
  /// PostgreSQL connection string; required unless `memory`. In production, the writer role
  /// of `annals migrate --roles` (docs/security.md).
  std::string database_url;
  /// Connection string migrations are applied through (the owner or an administrator);
  /// empty = through `database_url`.
  std::string migrate_url;
  /// In-memory event store, snapshots, projections and read models: no database.
  bool memory = false;
  /// Run the projections in this process (default). Off, bank-projector must run them, and
  /// reads with ?after= wait on the checkpoints in PostgreSQL.
  bool run_projections = true;
  /// Interface to listen on. Default 127.0.0.1.
  std::string host = "127.0.0.1";
  /// Port; 0 picks a free one. The chosen address is printed to stdout as
  /// "listening on HOST:PORT". Default 8080.
  int port = 8080;
  /// HTTP worker threads; each serves one connection at a time. Default 16.
  std::size_t threads = 16;
  /// Connections that may wait for a worker; one more is answered 503 at once (with
  /// Retry-After). Default 64.
  std::size_t max_queued_requests = 64;
  /// How long ?after= waits before 504. Default 5 s.
  std::chrono::milliseconds read_timeout{5000};
  /// Largest request body in bytes (413 above). Default 64 KiB.
  std::size_t max_body_bytes = 64 * 1024;
  /// The projection runner's name in lease rows. Default: generated per process.
  std::string runner_name;
  /// Projection lease duration; a crashed owner's projections are taken over after it.
  /// Default 10 s.
  std::chrono::milliseconds lease_ttl{10'000};
  /// spdlog level of the service's and the library's log: trace, debug, info, warn, error,
  /// critical, off. At debug the projections name the trace id of every traced event they
  /// apply. Default info.
  std::string log_level = "info";
  /// A file that receives the log too (appended, flushed at every line); empty: stderr only.
  std::string log_file;
};

struct ProjectorOptions {
  std::string database_url;
  /// As ServiceOptions::migrate_url.
  std::string migrate_url;
  std::string runner_name;
  std::chrono::milliseconds lease_ttl{10'000};
  /// As ServiceOptions::log_level and log_file.
  std::string log_level = "info";
  std::string log_file;
};

/// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards; call
/// first thing in main, so that run_service/run_projector receive them with sigwait.
void block_termination_signals();

/// Runs bank-service until SIGINT or SIGTERM, then shuts down gracefully (stops accepting,
/// finishes requests, stops the projections and releases their leases). Returns the exit code:
/// 0 after a signal, 1 when it could not start.
int run_service(const ServiceOptions& options);

/// Runs the bank's projections (no HTTP) until SIGINT or SIGTERM. Returns the exit code.
int run_projector(const ProjectorOptions& options);

/// Exit code of check_snapshots when a snapshot differs from its events (as `annals verify`
/// exits with when it finds a problem).
inline constexpr int kSnapshotMismatchExitCode = 6;

/// bank-service --check-snapshots: replays every account from its events alone, compares each
/// with its stored snapshot (annals::check_snapshots), prints the report to stdout and returns
/// 0 when every snapshot matches, kSnapshotMismatchExitCode when one does not, 1 when the
/// check could not run.
int check_snapshots(const ServiceOptions& options);

}  // namespace bank
