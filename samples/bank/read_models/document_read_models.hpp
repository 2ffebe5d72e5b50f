// The bank's read models as document collections (annals/projections/documents.hpp), one
// implementation for both stores: on PostgreSQL each collection is a jsonb table written in the
// same transaction as its projection's checkpoint (exactly once), in memory it lives in the
// in-memory projection store. The queries go through annals::projections::DocumentReader, so
// the read side holds no SQL and no database library.
//
//   bank_accounts      account id -> AccountView (owner, balance, version, status)
//   bank_entries       "<account id>/<version, 19 digits>" -> one history entry (amount and
//                      its signed effect on the balance; the running balance is summed when read)
//   bank_daily_totals  "YYYY-MM-DD" -> deposited, withdrawn, deposits, withdrawals (add_to)
#pragma once

#include <functional>
#include <optional>

#include "annals/projections/document_reader.hpp"
#include "views.hpp"

namespace bank {

/// Collection names (one projection each).
inline constexpr std::string_view kAccountsCollection = "bank_accounts";
inline constexpr std::string_view kEntriesCollection = "bank_entries";
inline constexpr std::string_view kDailyTotalsCollection = "bank_daily_totals";

/// Answers BankQueries::log_reaches (annals::postgres::log_reaches on PostgreSQL); empty when
/// the store's head is exact (in memory).
using LogReaches = std::function<std::optional<bool>(const annals::Position&)>;

/// The three projections, and queries over their collections through `reader` (which must read
/// the projection store the projections run on). `registry` and `reader` must outlive them.
/// Cost: nothing until used.
[[nodiscard]] BankReadModels make_read_models(const annals::EventRegistry& registry,
                                              annals::projections::DocumentReader& reader,
                                              LogReaches log_reaches = {});

}  // namespace bank
