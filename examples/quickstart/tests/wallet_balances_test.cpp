// The projection and the program against PostgreSQL. Each test gets a database of its own,
// created on the server of ANNALS_DATABASE_URL (the role needs CREATEDB) and dropped after it;
// without ANNALS_DATABASE_URL the tests are skipped, saying so.
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <annals/framework/command_bus.hpp>
#include <annals/framework/event_registry.hpp>
#include <annals/postgres/postgres_event_store.hpp>
#include <annals/projections/postgres/postgres_projection_store.hpp>
#include <annals/projections/runner.hpp>

#include "wallet.hpp"
#include "wallet_balances.hpp"

namespace {

// `url` with its database replaced by `database` (a URI, or keyword/value pairs).
std::string with_database(const std::string& url, const std::string& database) {
  static const std::regex kUri(R"(^(postgres(?:ql)?://[^/?]*)(/[^?]*)?(\?.*)?$)");
  std::smatch m;
  if (std::regex_match(url, m, kUri)) return m[1].str() + "/" + database + m[3].str();
  return url + " dbname=" + database;
}

class WalletBalancesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* server = std::getenv("ANNALS_DATABASE_URL");
    if (server == nullptr || *server == '\0') {
      GTEST_SKIP() << "set ANNALS_DATABASE_URL to a PostgreSQL server to run this test";
    }
    admin_url_ = server;
    name_ = "quickstart_" + std::to_string(::getpid()) + "_" +
            std::to_string(std::random_device{}() % 1'000'000);
    pqxx::connection admin(admin_url_);
    pqxx::nontransaction tx(admin);
    tx.exec0("CREATE DATABASE " + tx.quote_name(name_));
    url_ = with_database(admin_url_, name_);
    (void)annals::postgres::migrate(url_);
  }

  void TearDown() override {
    if (name_.empty()) return;
    pqxx::connection admin(admin_url_);
    pqxx::nontransaction tx(admin);
    tx.exec0("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  }

  std::string admin_url_;
  std::string name_;
  std::string url_;
};

TEST_F(WalletBalancesTest, SumsTheDepositsOfEachWallet) {
  auto events = annals::postgres::make_postgres_event_store({.connection_string = url_});
  auto projection_store =
      annals::projections::make_postgres_projection_store({.connection_string = url_});
  annals::EventRegistry registry;
  registry.register_events<wallet::Wallet>();
  annals::CommandBus bus(*events, registry);
  bus.handle<wallet::Wallet>(&wallet::Deposit::wallet_id);
  annals::projections::ProjectionRunner runner(*events, *projection_store);
  runner.add(std::make_shared<wallet::WalletBalances>(registry));
  runner.start();

  (void)bus.send(wallet::Deposit{"ada", 2'500});
  (void)bus.send(wallet::Deposit{"grace", 700});
  const auto last = bus.send(wallet::Deposit{"ada", 1'000});
  EXPECT_THROW((void)bus.send(wallet::Deposit{"ada", 0}), wallet::InvalidAmount);

  ASSERT_TRUE(runner.wait_for("wallet_balances", last.position, std::chrono::seconds(30)));
  EXPECT_EQ(wallet::balance_of(url_, "ada"), 3'500);
  EXPECT_EQ(wallet::balance_of(url_, "grace"), 700);
  EXPECT_EQ(wallet::balance_of(url_, "nobody"), std::nullopt);
  pqxx::connection reader(url_);
  pqxx::read_transaction tx(reader);
  const auto row = tx.exec1("SELECT deposits FROM wallet_balances WHERE wallet_id = 'ada'");
  EXPECT_EQ(row[0].as<int>(), 2);  // the refused deposit wrote nothing
  runner.stop();
}

#ifdef QUICKSTART_PROGRAM
// The program itself, run as a user would, on a fresh database.
TEST_F(WalletBalancesTest, TheProgramPrintsTheBalance) {
  const std::string command = std::string(QUICKSTART_PROGRAM) + " '" + url_ + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 256> buffer{};
  while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) {
    output += buffer.data();
  }
  EXPECT_EQ(::pclose(pipe), 0) << output;  // the program's exit status
  EXPECT_NE(output.find("refused: invalid amount -5: must be positive"), std::string::npos)
      << output;
  EXPECT_NE(output.find("wallet ada: 3500 cents after 2 deposits"), std::string::npos) << output;
}
#endif

}  // namespace
