// Restores into another cluster: reading and moving the transaction-id offset of sql/0013.
#include "annals/postgres/restore.hpp"

#include <string>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "database_checks.hpp"
#include "parse_int.hpp"
#include "pooled_call.hpp"

namespace annals::postgres {
namespace {

constexpr const char* kRestoreCheck =
    "SELECT r.stored_max::text, r.server_next::text, r.xid_offset, r.other_sessions"
    "  FROM annals.restore_check() r";
constexpr const char* kFix = "SELECT f.old_offset, f.new_offset FROM annals.fix_restored_xids() f";
// SQLSTATE object_in_use: fix_restored_xids found other sessions connected.
constexpr const char* kObjectInUse = "55006";

void require_schema(pqxx::transaction_base& tx) {
  // Throws NotFoundError naming the migration to apply; the ids it returns are ours to read.
  static_cast<void>(detail::check_database(tx));
}

RestoreStatus read_status(pqxx::transaction_base& tx) {
  const auto row = tx.exec1(kRestoreCheck);
  RestoreStatus status;
  if (!row[0].is_null())
    status.stored_max = detail::parse_int<std::uint64_t>(row[0], "transaction id");
  status.server_next = detail::parse_int<std::uint64_t>(row[1], "transaction id");
  status.offset = detail::parse_int<std::uint64_t>(row[2], "transaction id offset");
  status.other_sessions = detail::parse_int<int>(row[3], "session count");
  return status;
}

}  // namespace

RestoreStatus check_restore(const std::string& connection_string) {
  return detail::with_connection(connection_string, "restore check",
                                 [](pqxx::connection& connection) {
                                   pqxx::read_transaction tx(connection);
                                   require_schema(tx);
                                   return read_status(tx);
                                 });
}

RestoreFix fix_restore(const std::string& connection_string) {
  return detail::with_connection(
      connection_string, "restore fix", [](pqxx::connection& connection) {
        RestoreFix fix;
        {
          pqxx::work tx(connection);
          require_schema(tx);
          try {
            const auto row = tx.exec1(kFix);
            fix.old_offset = detail::parse_int<std::uint64_t>(row[0], "transaction id offset");
            fix.new_offset = detail::parse_int<std::uint64_t>(row[1], "transaction id offset");
          } catch (const pqxx::sql_error& e) {
            if (e.sqlstate() != kObjectInUse) throw;
            throw RestoreBlockedError(
                "cannot fix the transaction ids of a restored store while other sessions are "
                "connected to the database (" +
                std::string(e.what()) + "); nothing was changed");
          }
          tx.commit();
        }
        pqxx::read_transaction tx(connection);
        fix.after = read_status(tx);
        return fix;
      });
}

}  // namespace annals::postgres
