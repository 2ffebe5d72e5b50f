// The migration runner: applies the embedded sql/ migrations in order, each in its own
// transaction together with its record in annals.schema_migrations, under a
// transaction-scoped advisory lock (safe to run twice, and from two processes at once).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "embedded_migrations.hpp"
#include "error_translation.hpp"
#include "sql.hpp"

namespace annals::postgres {
namespace {

std::set<std::string> applied_names(pqxx::transaction_base& tx) {
  std::set<std::string> names;
  for (const auto& row : tx.exec(sql::kMigrationApplied)) names.insert(row[0].c_str());
  return names;
}

}  // namespace

std::vector<std::string> migrate(const std::string& connection_string) {
  return detail::with_connection(connection_string, "migrate", [](pqxx::connection& connection) {
    std::vector<std::string> applied_now;
    for (const auto& migration : detail::embedded_migrations()) {
      pqxx::work tx(connection);
      tx.exec(sql::kMigrationLock);
      tx.exec(sql::kMigrationTable);
      if (applied_names(tx).count(migration.name) != 0) continue;  // rolls back: nothing done
      try {
        tx.exec(migration.sql);
      } catch (const pqxx::sql_error& e) {
        throw InternalError("migration " + std::string(migration.name) +
                            " failed and was rolled back [SQLSTATE " + e.sqlstate() +
                            "]: " + e.what());
      }
      tx.exec_params(sql::kMigrationRecord, std::string(migration.name));
      tx.commit();
      applied_now.emplace_back(migration.name);
    }
    return applied_now;
  });
}

std::vector<MigrationStatus> migration_status(const std::string& connection_string) {
  return detail::with_connection(
      connection_string, "migration status", [](pqxx::connection& connection) {
        pqxx::read_transaction tx(connection);
        std::set<std::string> applied;
        if (!tx.exec1(sql::kMigrationAppliedIfExists)[0].is_null()) applied = applied_names(tx);
        std::vector<MigrationStatus> result;
        for (const auto& migration : detail::embedded_migrations()) {
          result.push_back({migration.name, applied.count(migration.name) != 0});
        }
        return result;
      });
}

}  // namespace annals::postgres
