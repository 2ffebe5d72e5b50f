// The quickstart's read model: one JSON document per wallet in the collection
// "wallet_balances", kept by a document projection whose writes commit with its checkpoint
// (exactly once), on PostgreSQL and in memory alike (docs/read-side.md).
// docs:begin quickstart-projection-declaration
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <annals/framework/event_registry.hpp>
#include <annals/projections/documents.hpp>

namespace wallet {

// The collection the read side queries: one document per wallet, its id the wallet id.
inline constexpr char kWalletBalances[] = "wallet_balances";

// One wallet as the read side sees it: a plain struct, stored as a JSON document.
struct WalletBalance {
  std::int64_t balance = 0;   // cents
  std::int64_t deposits = 0;  // how many
  friend bool operator==(const WalletBalance&, const WalletBalance&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(WalletBalance, balance, deposits)

class WalletBalances final : public annals::projections::DocumentProjection {
 public:
  // Declares a typed handler per event type; `registry` (which must outlive the projection)
  // upcasts and decodes each stored event before it reaches the handler.
  explicit WalletBalances(const annals::EventRegistry& registry);
  // The key of the projection's checkpoint: keep it stable.
  std::string name() const override { return "wallet_balance_views"; }
  // The handlers' event types, in "wallet-..." streams only.
  annals::EventFilter filter() const override {
    auto filter = DocumentProjection::filter();
    filter.category = "wallet";
    return filter;
  }
  // The collections it keeps (on PostgreSQL, a jsonb table each, created at its first start).
  std::vector<annals::projections::CollectionSpec> collections() const override {
    return {{kWalletBalances, {}}};
  }
};

}  // namespace wallet
// docs:end
