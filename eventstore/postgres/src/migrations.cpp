// The migration runner: applies the embedded sql/ migrations in order, each in its own
// transaction together with its record in annals.schema_migrations, under a
// transaction-scoped advisory lock (safe to run twice, and from two processes at once).
// With a role layout (sql/0005) migrations run as the layout's owner, so every object
// they create belongs to it, and the roles' grants are brought up to date afterwards.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "connection_string.hpp"
#include "db_error.hpp"
#include "embedded_migrations.hpp"
#include "pooled_call.hpp"
#include "sql.hpp"
#include "watchdog.hpp"

namespace annals::postgres {
namespace {

std::set<std::string> applied_names(pqxx::transaction_base& tx) {
  std::set<std::string> names;
  if (tx.exec1(sql::kMigrationAppliedIfExists)[0].is_null()) return names;
  for (const auto& row : tx.exec(sql::kMigrationApplied)) names.insert(row[0].c_str());
  return names;
}

std::optional<std::string> recorded_owner(pqxx::transaction_base& tx) {
  if (!tx.exec1(sql::kRoleLayoutPresent)[0].as<bool>()) return std::nullopt;
  const auto rows = tx.exec(sql::kRoleLayoutOwner);
  if (rows.empty()) return std::nullopt;
  return std::string(rows[0][0].c_str());
}

// When a layout is recorded, becomes its owner for the rest of the transaction. A caller that
// is not a member of the owner gets a PermissionDeniedError naming the role.
void begin_as_owner(pqxx::transaction_base& tx) {
  if (const auto owner = recorded_owner(tx)) {
    try {
      tx.exec_params(sql::kSetLocalRole, *owner);
    } catch (const pqxx::sql_error& e) {
      throw PermissionDeniedError("migrate: migrations run as the store's owner role \"" + *owner +
                                  "\"; connect as it or as a member of it [SQLSTATE " +
                                  detail::to_db_error(e).sqlstate() + "]: " + e.what());
    }
  }
}

void validate(const RoleLayout& roles) {
  const std::vector<std::string> names{roles.owner, roles.writer, roles.reader, roles.auditor};
  for (const auto& name : names) {
    if (name.empty() || name.size() > 63 || name.find('\0') != std::string::npos) {
      throw InvalidArgumentError("migrate: role names must have 1 to 63 bytes (got \"" + name +
                                 "\")");
    }
  }
  if (std::set<std::string>(names.begin(), names.end()).size() != names.size()) {
    throw InvalidArgumentError(
        "migrate: the owner, writer, reader and auditor roles must be four different roles");
  }
  if (roles.read_model_schema.size() > 63) {
    throw InvalidArgumentError("migrate: the read-model schema name has more than 63 bytes");
  }
}

bool apply_one(pqxx::connection& connection, const detail::EmbeddedMigration& migration) {
  pqxx::work tx(connection);
  tx.exec(sql::kMigrationLock);
  // Only a fresh database needs the record table; creating it needs CREATE on the database,
  // which neither the owner of a role layout nor the writer (running an up-to-date check) has.
  if (tx.exec1(sql::kMigrationAppliedIfExists)[0].is_null()) tx.exec(sql::kMigrationTable);
  if (applied_names(tx).count(migration.name) != 0) return false;  // rolls back: nothing done
  begin_as_owner(tx);
  try {
    tx.exec(migration.sql);
  } catch (const pqxx::sql_error& e) {
    throw InternalError("migration " + std::string(migration.name) +
                        " failed and was rolled back [SQLSTATE " +
                        detail::to_db_error(e).sqlstate() + "]: " + e.what());
  }
  tx.exec_params(sql::kMigrationRecord, std::string(migration.name));
  tx.commit();
  return true;
}

void configure_roles(pqxx::connection& connection, const RoleLayout& roles) {
  pqxx::work tx(connection);
  tx.exec(sql::kMigrationLock);
  try {
    const std::optional<std::string> schema =
        roles.read_model_schema.empty() ? std::nullopt
                                        : std::optional<std::string>(roles.read_model_schema);
    tx.exec_params(sql::kConfigureRoles, roles.owner, roles.writer, roles.reader, roles.auditor,
                   schema);
  } catch (const pqxx::sql_error& e) {
    const std::string state = detail::to_db_error(e).sqlstate();
    if (state == detail::sqlstate::kInvalidParameterValue) {
      throw InvalidArgumentError(std::string("migrate --roles: ") + e.what());
    }
    if (state == detail::sqlstate::kInsufficientPrivilege) {
      throw PermissionDeniedError(
          "migrate --roles: creating roles and handing the store to the owner needs a superuser "
          "or a role with CREATEROLE that owns the store [SQLSTATE 42501]: " +
          std::string(e.what()));
    }
    throw InternalError("migrate --roles failed and was rolled back [SQLSTATE " + state +
                        "]: " + e.what());
  }
  tx.commit();
}

void refresh_grants(pqxx::connection& connection) {
  pqxx::work tx(connection);
  tx.exec(sql::kMigrationLock);
  begin_as_owner(tx);
  tx.exec(sql::kGrantRolePrivileges);
  tx.commit();
}

// Partitions annals.events (sql/0017) as the recorded owner, when there is one.
void partition_log(pqxx::connection& connection, std::int64_t partition_size) {
  pqxx::work tx(connection);
  tx.exec(sql::kMigrationLock);
  begin_as_owner(tx);
  try {
    tx.exec_params(sql::kPartitionLog, partition_size);
  } catch (const pqxx::sql_error& e) {
    throw InternalError("migrate --partitioned-log failed and was rolled back [SQLSTATE " +
                        detail::to_db_error(e).sqlstate() + "]: " + e.what());
  }
  tx.commit();
}

// Runs `f` in one transaction as the recorded owner; errors are translated as for any call.
template <typename F>
auto as_owner(const std::string& connection_string, const std::string& what, F&& f) {
  return detail::with_connection(connection_string, what, [&](pqxx::connection& connection) {
    pqxx::work tx(connection);
    begin_as_owner(tx);
    auto result = f(tx);
    tx.commit();
    return result;
  });
}

}  // namespace

std::vector<std::string> migrate(const std::string& connection_string,
                                 const MigrateOptions& options) {
  if (options.roles) validate(*options.roles);
  if (options.partitioned_log && *options.partitioned_log < 1) {
    throw InvalidArgumentError(
        "migrate: the partition size of a partitioned log must be at least "
        "1 (got " +
        std::to_string(*options.partitioned_log) + ")");
  }
  detail::validate_duration(options.step_timeout, "MigrateOptions", "step_timeout", true);
  // Each step (a transaction) is watched until step_timeout from its start.
  const detail::CallBound bound{
      .watchdog = options.step_timeout.count() > 0
                      ? std::make_shared<detail::Watchdog>(options.step_timeout)
                      : nullptr,
      .timeout = options.step_timeout};
  return detail::with_connection(connection_string, "migrate", [&](pqxx::connection& connection) {
    const auto step = [&](const char* what, const auto& f) {
      return detail::run_bounded(bound, connection.sock(), what, f);
    };
    std::vector<std::string> applied_now;
    for (const auto& migration : detail::embedded_migrations()) {
      if (step("apply a migration", [&] { return apply_one(connection, migration); })) {
        applied_now.emplace_back(migration.name);
      }
    }
    if (options.roles) {
      step("configure roles", [&] { configure_roles(connection, *options.roles); });
    } else if (!applied_now.empty()) {
      // New objects of a store with a recorded layout get their roles' grants.
      const bool has_layout = step("read the role layout", [&] {
        pqxx::read_transaction probe(connection);
        const bool recorded = recorded_owner(probe).has_value();
        probe.commit();
        return recorded;
      });
      if (has_layout) step("refresh grants", [&] { refresh_grants(connection); });
    }
    if (options.partitioned_log) {
      step("partition the log", [&] { partition_log(connection, *options.partitioned_log); });
    }
    return applied_now;
  });
}

int ensure_log_partitions(const std::string& connection_string, std::optional<int> ahead) {
  if (ahead && *ahead < 1) {
    throw InvalidArgumentError("ensure_log_partitions: ahead must be at least 1 (got " +
                               std::to_string(*ahead) + ")");
  }
  return as_owner(connection_string, "ensure log partitions", [&](pqxx::work& tx) {
    if (ahead) tx.exec_params(sql::kSetPartitionsAhead, *ahead);
    return tx.exec1(sql::kEnsureLogPartitions)[0].as<int>();
  });
}

std::vector<LogPartition> list_log_partitions(const std::string& connection_string) {
  return as_owner(connection_string, "list log partitions", [](pqxx::work& tx) {
    std::vector<LogPartition> partitions;
    for (const auto& row : tx.exec(sql::kListLogPartitions)) {
      partitions.push_back({.name = row[0].c_str(),
                            .from_position = row[1].as<std::int64_t>(),
                            .to_position = row[2].as<std::int64_t>(),
                            .archived_in = row[3].is_null() ? "" : row[3].c_str(),
                            .tablespace = row[4].is_null() ? "" : row[4].c_str()});
    }
    return partitions;
  });
}

std::int64_t archive_log_partition(const std::string& connection_string,
                                   const std::string& partition,
                                   const std::string& archive_schema) {
  return as_owner(connection_string, "archive a log partition", [&](pqxx::work& tx) {
    return tx.exec_params1(sql::kArchiveLogPartition, partition, archive_schema)[0]
        .as<std::int64_t>();
  });
}

std::int64_t restore_log_partition(const std::string& connection_string,
                                   const std::string& partition) {
  return as_owner(connection_string, "restore a log partition", [&](pqxx::work& tx) {
    return tx.exec_params1(sql::kRestoreLogPartition, partition)[0].as<std::int64_t>();
  });
}

std::vector<MigrationStatus> migration_status(const std::string& connection_string) {
  return detail::with_connection(
      connection_string, "migration status", [](pqxx::connection& connection) {
        pqxx::read_transaction tx(connection);
        const std::set<std::string> applied = applied_names(tx);
        std::vector<MigrationStatus> result;
        for (const auto& migration : detail::embedded_migrations()) {
          result.push_back({migration.name, applied.count(migration.name) != 0});
        }
        return result;
      });
}

}  // namespace annals::postgres
