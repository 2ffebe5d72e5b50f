// The bank's read models in PostgreSQL tables, written by ReadModelProjections: each batch of
// events and the projection's checkpoint commit in one transaction, so after any crash the
// tables equal a replay of the log (exactly once; ARCHITECTURE decision 7).
//
//   bank_balances      (account_id) -> owner, balance, version, status
//   bank_transactions  (account_id, version) -> type, amount, balance after, recorded_at
//   bank_daily_totals  (day) -> deposited, withdrawn, deposits, withdrawals
//
// Each projection owns its table and its migration. The queries read the tables over their own
// small connection pool (the sample's read side may use libpqxx; its domain may not).
#pragma once

#include <string>

#include "views.hpp"

namespace bank {

/// The three read-model projections and queries over their tables. `registry` must outlive
/// them. Opens no connection until the first query.
[[nodiscard]] BankReadModels make_postgres_read_models(const annals::EventRegistry& registry,
                                                       const std::string& connection_string);

}  // namespace bank
