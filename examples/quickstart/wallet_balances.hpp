// The quickstart's read model: one PostgreSQL table, wallet_balances, kept by a projection
// whose writes commit with its checkpoint (exactly once; docs/read-models.md).
// docs:begin quickstart-projection-declaration
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <annals/framework/event_registry.hpp>
#include <annals/projections/postgres/read_model.hpp>

namespace wallet {

// wallet_balances(wallet_id, balance, deposits), one row per wallet.
class WalletBalances final : public annals::projections::ReadModelProjection {
 public:
  // Declares a typed handler per event type; `registry` (which must outlive the projection)
  // upcasts and decodes each stored event before it reaches the handler.
  explicit WalletBalances(const annals::EventRegistry& registry);
  // The key of the projection's checkpoint: keep it stable.
  std::string name() const override { return "wallet_balances"; }
  // The handlers' event types, in "wallet-..." streams only.
  annals::EventFilter filter() const override {
    auto filter = ReadModelProjection::filter();
    filter.category = "wallet";
    return filter;
  }
  // Applied once each, in order; add new ones at the end.
  std::vector<annals::projections::ReadModelMigration> migrations() const override;
  // What a rebuild empties before it replays the log.
  std::vector<std::string> tables() const override { return {"wallet_balances"}; }
};

// The read side: a plain query of the table (empty when the wallet has no row yet).
std::optional<std::int64_t> balance_of(const std::string& database_url,
                                       const std::string& wallet_id);

}  // namespace wallet
// docs:end
