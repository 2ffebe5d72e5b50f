// quickstart: deposits into a wallet through the command bus, and reads the balance back from
// the document the projection keeps in PostgreSQL, with a typed query that reads its own writes.
//
//   quickstart postgresql://me@localhost/quickstart    (or set ANNALS_DATABASE_URL)
//
// The database should be one of its own: the program creates the event store's tables
// (schema annals) and the wallets' documents (table doc_wallet_balances) in it.
// docs:begin quickstart-main
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <annals/eventstore/error.hpp>
#include <annals/projections/postgres/open.hpp>

#include "wallet.hpp"
#include "wallet_balances.hpp"

int main(int argc, char** argv) {
  const char* env = std::getenv("ANNALS_DATABASE_URL");
  const std::string url = argc > 1 ? argv[1] : (env != nullptr ? env : "");
  if (url.empty()) {
    std::cerr << "usage: quickstart DATABASE_URL (or set ANNALS_DATABASE_URL)\n";
    return 2;
  }
  try {
    // Every part on one database: event store, snapshot store, registry, command bus,
    // projection store, runner and document reader, sharing one connection budget. `migrate`
    // creates or upgrades the schema annals first. (annals::open_in_memory() makes the same
    // parts in memory: the tests run this code without a server.)
    auto app = annals::postgres::open(url, {.max_connections = 8, .migrate = true});

    // The write side: the events' names, and one line per command.
    app->registry().register_events<wallet::Wallet>();
    auto& bus = app->bus();
    bus.handle<wallet::Wallet>(&wallet::Deposit::wallet_id);

    // The read side: the runner keeps one document per wallet up to date.
    app->runner().add(std::make_shared<wallet::WalletBalances>(app->registry()));
    app->runner().start();

    (void)bus.send(wallet::Deposit{"ada", 2'500});
    const annals::AppendResult last = bus.send(wallet::Deposit{"ada", 1'000});
    try {
      (void)bus.send(wallet::Deposit{"ada", -5});
    } catch (const wallet::InvalidAmount& e) {
      std::cout << "refused: " << e.what() << "\n";  // nothing was written
    }

    // Read your own writes: the query first waits (at most 10 s) until the projection has
    // applied the last deposit, then reads the wallet's document, decoded into WalletBalance
    // (zeros for a wallet without a document).
    const wallet::WalletBalance ada =
        app->collection<wallet::WalletBalance>(wallet::kWalletBalances)
            .after(last.position, std::chrono::seconds(10))
            .get("ada")
            .value_or(wallet::WalletBalance{});
    std::cout << "wallet ada: " << ada.balance << " cents after " << ada.deposits << " deposits\n";
    // Destroying the App stops the runner.
    return 0;
  } catch (const annals::Error& e) {  // e.g. CatchUpTimeoutError: the projection lags
    std::cerr << "quickstart: " << e.what() << "\n";
    return 1;
  }
}
// docs:end
