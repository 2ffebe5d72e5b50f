#include "test_roles.hpp"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <mutex>

#include <pqxx/pqxx>

#include "test_database.hpp"

namespace annals::testing {
namespace {

TestRoles* g_roles = nullptr;

void drop_roles() {
  if (g_roles == nullptr) return;
  const auto& l = g_roles->layout;
  try {
    pqxx::connection c(g_roles->admin_url);
    pqxx::nontransaction tx(c);
    // One role at a time: DROP OWNED BY several roles at once trips over a default ACL that
    // names more than one of them.
    for (const auto* role : {&l.writer, &l.reader, &l.auditor, &l.owner}) {
      tx.exec("REASSIGN OWNED BY " + tx.quote_name(*role) + " TO CURRENT_USER");
      tx.exec("DROP OWNED BY " + tx.quote_name(*role));
    }
    tx.exec("DROP ROLE " + tx.quote_name(l.owner) + ", " + tx.quote_name(l.writer) + ", " +
            tx.quote_name(l.reader) + ", " + tx.quote_name(l.auditor));
  } catch (const std::exception& e) {
    std::cerr << "warning: could not drop the test roles of " << l.owner << ": " << e.what()
              << "\n";
  }
}

}  // namespace

std::string url_as(const std::string& url, const std::string& user) {
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + "user=" + user;
  }
  return url + " user=" + user;
}

const TestRoles& test_roles() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto* roles = new TestRoles();  // lives until exit; the roles are dropped by drop_roles
    const std::string prefix = "annals_t" + std::to_string(::getpid()) + "_" + random_hex(6) + "_";
    roles->layout = {.owner = prefix + "owner",
                     .writer = prefix + "writer",
                     .reader = prefix + "reader",
                     .auditor = prefix + "auditor",
                     .read_model_schema = "public"};
    roles->admin_url = test_database_url();  // registers the database drop first
    annals::postgres::migrate(roles->admin_url, {.roles = roles->layout});
    roles->writer_url = url_as(roles->admin_url, roles->layout.writer);
    roles->reader_url = url_as(roles->admin_url, roles->layout.reader);
    roles->auditor_url = url_as(roles->admin_url, roles->layout.auditor);
    g_roles = roles;
    std::atexit(drop_roles);  // runs before the database drop registered earlier
  });
  return *g_roles;
}

}  // namespace annals::testing
