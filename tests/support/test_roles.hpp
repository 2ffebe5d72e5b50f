// Test support: the role layout of `annals migrate --roles` (sql/0005, docs/security.md) on the
// test database, with role names unique to this process (roles are cluster-wide).
#pragma once

#include <string>

#include "annals/postgres/postgres_event_store.hpp"

namespace annals::testing {

/// The configured layout and a connection string per role.
struct TestRoles {
  annals::postgres::RoleLayout layout;
  /// The server's own (superuser) connection to the test database.
  std::string admin_url;
  std::string writer_url;
  std::string reader_url;
  std::string auditor_url;
};

/// Configures the layout on test_database_url() once per process (migrate with roles named
/// annals_t<pid>_<random>_{owner,writer,reader,auditor}) and returns it. The roles are dropped
/// at exit, before the test database. Thread-safe. Connections log in without a password, so
/// the server must trust loopback (the private cluster of scripts/pg does).
const TestRoles& test_roles();

/// `url` with its user replaced by `user` (a URI gets a `user` query parameter, a keyword/value
/// string a `user=` keyword).
std::string url_as(const std::string& url, const std::string& user);

}  // namespace annals::testing
