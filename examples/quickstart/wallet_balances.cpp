// WalletBalances: how each Deposited event changes the wallet's document.
// docs:begin quickstart-projection
#include "wallet_balances.hpp"

#include "wallet.hpp"

namespace wallet {

WalletBalances::WalletBalances(const annals::EventRegistry& registry)
    : DocumentProjection(registry) {
  on<Deposited>([](const Deposited& deposited, const annals::EventContext& context,
                   annals::projections::Documents& documents) {
    // The stream "wallet-ada" holds the wallet "ada".
    const std::string wallet_id = context.stream_id().value().substr(Wallet::kCategory.size() + 1);
    // Adds to both counters, creating the document at the wallet's first deposit.
    documents.collection(kWalletBalances)
        .add_to(wallet_id, {{"balance", deposited.amount}, {"deposits", 1}});
  });
}

}  // namespace wallet
// docs:end
