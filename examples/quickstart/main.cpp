// quickstart: deposits into a wallet through the command bus, and reads the balance back from
// the read model the projection keeps in PostgreSQL.
//
//   quickstart postgresql://me@localhost/quickstart    (or set ANNALS_DATABASE_URL)
//
// The database should be one of its own: the program creates the event store's tables
// (schema annals) and the table wallet_balances in it.
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
    // projection store and runner, sharing one connection budget. `migrate` creates or
    // upgrades the schema annals first.
    auto app = annals::postgres::open(url, {.max_connections = 8, .migrate = true});

    // The write side: the events' names, and one line per command.
    app->registry().register_events<wallet::Wallet>();
    auto& bus = app->bus();
    bus.handle<wallet::Wallet>(&wallet::Deposit::wallet_id);

    // The read side: the runner keeps wallet_balances up to date.
    auto& runner = app->runner();
    runner.add(std::make_shared<wallet::WalletBalances>(app->registry()));  // creates the table
    runner.start();

    (void)bus.send(wallet::Deposit{"ada", 2'500});
    const annals::AppendResult last = bus.send(wallet::Deposit{"ada", 1'000});
    try {
      (void)bus.send(wallet::Deposit{"ada", -5});
    } catch (const wallet::InvalidAmount& e) {
      std::cout << "refused: " << e.what() << "\n";  // nothing was written
    }

    // Read your own writes: wait until the projection has applied the last deposit.
    if (!runner.wait_for("wallet_balances", last.position, std::chrono::seconds(10))) {
      std::cerr << "quickstart: the projection did not catch up within 10 s\n";
      return 1;
    }
    std::cout << "wallet ada: " << wallet::balance_of(url, "ada").value_or(0) << " cents after "
              << last.last_version << " deposits\n";
    runner.stop();  // (the App would stop it too, when destroyed)
    return 0;
  } catch (const annals::Error& e) {
    std::cerr << "quickstart: " << e.what() << "\n";
    return 1;
  }
}
// docs:end
