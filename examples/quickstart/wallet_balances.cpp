// WalletBalances: its table, how each Deposited event changes it, and the query of the read side.
// docs:begin quickstart-projection
#include "wallet_balances.hpp"

#include <pqxx/pqxx>

#include "wallet.hpp"

namespace wallet {

std::vector<annals::projections::ReadModelMigration> WalletBalances::migrations() const {
  return {{"0001_create_wallet_balances",
           "CREATE TABLE wallet_balances ("
           "  wallet_id text PRIMARY KEY,"
           "  balance   bigint NOT NULL DEFAULT 0,"
           "  deposits  integer NOT NULL DEFAULT 0)"}};
}

WalletBalances::WalletBalances(const annals::EventRegistry& registry)
    : ReadModelProjection(registry) {
  on<Deposited>([](const Deposited& deposited, const annals::EventContext& context,
                   annals::projections::ReadModel& db) {
    // The stream "wallet-ada" holds the wallet "ada".
    const std::string wallet_id = context.stream_id().value().substr(Wallet::kCategory.size() + 1);
    const annals::projections::Columns key = {{"wallet_id", wallet_id}};
    db.increment("wallet_balances", key, "balance", deposited.amount);
    db.increment("wallet_balances", key, "deposits", 1);
  });
}

std::optional<std::int64_t> balance_of(const std::string& database_url,
                                       const std::string& wallet_id) {
  pqxx::connection connection(database_url);
  pqxx::read_transaction tx(connection);
  const auto rows =
      tx.exec_params("SELECT balance FROM wallet_balances WHERE wallet_id = $1", wallet_id);
  if (rows.empty()) return std::nullopt;
  return rows[0][0].as<std::int64_t>();
}

}  // namespace wallet
// docs:end
