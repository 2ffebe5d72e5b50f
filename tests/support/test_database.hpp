// Test support: a private, migrated PostgreSQL database per test binary.
//
// The server comes from ANNALS_DATABASE_URL (scripts/test sets it). Without it, tests that
// need PostgreSQL fail with a hint; they never skip (STYLE 2.7).
#pragma once

#include <cstddef>
#include <string>

namespace annals::testing {

/// The connection string of a fresh database created for this process (named
/// annals_test_<pid>_<random>), migrated to the latest schema, dropped at exit.
/// The first call creates it; later calls return the same URL. Thread-safe.
/// Fails the process (with a hint on stderr) when ANNALS_DATABASE_URL is not set or the
/// server cannot be reached.
const std::string& test_database_url();

/// The server URL from ANNALS_DATABASE_URL (the maintenance database), or fails like above.
const std::string& server_url();

/// `n` random lowercase hex digits (for names of databases, roles and streams).
std::string random_hex(std::size_t n);

/// A stream id unique to this process and call: "<prefix>-<random hex>".
std::string unique_stream(const std::string& prefix = "test");

/// A database of its own on the server of server_url(), named "<prefix>_<random hex>", for a
/// test that needs a store no other test touches (or none at all): created by the constructor,
/// migrated to the latest schema when `migrated`, dropped (WITH (FORCE)) by the destructor.
class ScratchDatabase {
 public:
  explicit ScratchDatabase(const std::string& prefix, bool migrated = true);
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  ~ScratchDatabase();

  [[nodiscard]] const std::string& name() const { return name_; }
  /// server_url() with this database's name (URI or keyword/value form).
  [[nodiscard]] const std::string& url() const { return url_; }

 private:
  std::string name_;
  std::string url_;
};

}  // namespace annals::testing
