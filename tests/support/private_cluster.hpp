// Test support: a PostgreSQL cluster owned by one test, which it may stop and start at will
// (the fault-injection suite restarts the database under load). Never the shared cluster of
// ANNALS_DATABASE_URL: other tests run on that one.
//
//   annals::testing::PrivateCluster cluster;           // initdb, start, migrate: ~2-5 s
//   auto store = make_postgres_event_store({.connection_string = cluster.url()});
//   cluster.stop_immediate();                           // like a crash: backends die at once
//   cluster.start();                                    // same port, crash recovery
//
// The cluster lives in a fresh folder under the system's temporary directory (TMPDIR or
// /tmp), listens on 127.0.0.1 on a free port (kept across restarts) and on a unix socket in
// that folder, and has the settings of scripts/pg, read from scripts/pg.conf in the source
// tree (fsync and synchronous_commit on), with less memory. When the test runs as root (CI
// containers), every server command runs as the unprivileged user annals-pg, created when
// missing, as scripts/pg does: PostgreSQL refuses to run as root. The server binaries come
// from /usr/lib/postgresql/<version>/bin or PATH.
//
// The destructor stops the server and removes the folder. A test process that is killed (a
// ctest timeout) cannot: its server keeps running until stopped by hand
// (`pg_ctl -D /tmp/annals-cluster-XXXXXX/data -m immediate stop`, as annals-pg when root).
//
// Thread safety: one thread drives a PrivateCluster; url() may be read from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace annals::testing {

class PrivateCluster {
 public:
  /// Creates the cluster, starts it, creates the database `annals` and migrates it to the
  /// latest schema.
  /// Throws: std::runtime_error naming the step that failed (with the end of its log).
  /// Cost: initdb and a server start, a few seconds.
  PrivateCluster();
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;
  /// Stops the server (immediate mode) and removes the folder. Never throws.
  ~PrivateCluster();

  /// postgresql://annals@127.0.0.1:<port>/annals, the migrated database.
  [[nodiscard]] const std::string& url() const noexcept { return url_; }

  /// The same server's maintenance database `postgres` (for pg_terminate_backend and the
  /// like, outside the database under test).
  [[nodiscard]] const std::string& admin_url() const noexcept { return admin_url_; }

  /// `pg_ctl stop -m immediate`: the postmaster kills every backend at once, without a
  /// checkpoint; the next start() runs crash recovery. Returns once the server is down.
  /// Throws: std::runtime_error when pg_ctl fails.
  void stop_immediate();

  /// Moves the server's transaction-id counter on to `next_xid` (a multiple of 1,048,576, where
  /// a new commit-log segment starts; above the current counter): a clean stop,
  /// `pg_resetwal -x`, a start. Lets a test give one cluster ids far ahead of another's, as
  /// after years of service (the restore tests).
  /// Throws: std::invalid_argument (not a segment boundary), std::runtime_error (a step failed).
  void restart_with_next_xid(std::uint64_t next_xid);

  /// A program of the server's installation (pg_dump, pg_restore, ...).
  [[nodiscard]] std::filesystem::path program(const std::string& name) const { return bin_ / name; }

  /// Starts the stopped server on the same port and waits until it accepts connections.
  /// Throws: std::runtime_error when pg_ctl fails (with the end of the server log).
  void start();

 private:
  void initdb();
  void configure();
  void create_database();
  void remove() noexcept;
  void run_as_owner(const std::string& step, std::vector<std::string> argv);

  std::filesystem::path dir_;
  std::filesystem::path bin_;
  int port_ = 0;
  std::string url_;
  std::string admin_url_;
  bool running_ = false;
};

}  // namespace annals::testing
