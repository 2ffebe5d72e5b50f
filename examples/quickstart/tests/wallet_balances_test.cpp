// The read side and the program. WalletBalancesTest runs the projection and a typed query with
// read-your-writes on the in-memory App (no server needed) and on PostgreSQL; the program test
// runs the program as a user would. On PostgreSQL each test gets a database of its own, made
// with PostgreSQL's createdb on the server of ANNALS_DATABASE_URL (the role needs CREATEDB) and
// dropped with dropdb after it; without ANNALS_DATABASE_URL those tests are skipped, saying so.
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include <annals/projections/app.hpp>
#include <annals/projections/postgres/open.hpp>

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

// A database of its own on the server of ANNALS_DATABASE_URL: created by PostgreSQL's createdb,
// dropped by dropdb (closing what is still connected) when destroyed.
class ScratchDatabase {
 public:
  // The server's URL, or empty when ANNALS_DATABASE_URL is not set.
  static std::string server() {
    const char* server = std::getenv("ANNALS_DATABASE_URL");
    return server == nullptr ? "" : server;
  }

  ScratchDatabase()
      : server_(server()),
        name_("quickstart_" + std::to_string(::getpid()) + "_" +
              std::to_string(std::random_device{}() % 1'000'000)),
        url_(with_database(server_, name_)) {
    if (std::system(("createdb --maintenance-db='" + server_ + "' " + name_).c_str()) != 0) {
      throw std::runtime_error("createdb " + name_ +
                               " failed (is PostgreSQL's createdb installed?)");
    }
  }
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  ~ScratchDatabase() {
    static_cast<void>(
        std::system(("dropdb --force --maintenance-db='" + server_ + "' " + name_).c_str()));
  }

  const std::string& url() const { return url_; }

 private:
  std::string server_;
  std::string name_;
  std::string url_;
};

enum class Store { kMemory, kPostgres };

class WalletBalancesTest : public ::testing::TestWithParam<Store> {
 protected:
  void SetUp() override {
    if (GetParam() == Store::kMemory) {
      app_ = annals::open_in_memory();
      return;
    }
    if (ScratchDatabase::server().empty()) {
      GTEST_SKIP() << "set ANNALS_DATABASE_URL to a PostgreSQL server to run this test";
    }
    database_ = std::make_unique<ScratchDatabase>();
    app_ = annals::postgres::open(database_->url(), {.max_connections = 8, .migrate = true});
  }

  std::unique_ptr<ScratchDatabase> database_;  // (declared first: dropped after the App closed)
  std::unique_ptr<annals::App> app_;
};

// docs:begin quickstart-read-test
TEST_P(WalletBalancesTest, SumsTheDepositsOfEachWallet) {
  app_->registry().register_events<wallet::Wallet>();
  app_->bus().handle<wallet::Wallet>(&wallet::Deposit::wallet_id);
  app_->runner().add(std::make_shared<wallet::WalletBalances>(app_->registry()));
  app_->runner().start();

  (void)app_->bus().send(wallet::Deposit{"ada", 2'500});
  (void)app_->bus().send(wallet::Deposit{"grace", 700});
  const auto last = app_->bus().send(wallet::Deposit{"ada", 1'000});
  EXPECT_THROW((void)app_->bus().send(wallet::Deposit{"ada", 0}), wallet::InvalidAmount);

  // Every query of this view waits until the projection has applied the last deposit.
  const auto balances = app_->collection<wallet::WalletBalance>(wallet::kWalletBalances)
                            .after(last.position, std::chrono::seconds(30));
  EXPECT_EQ(balances.get("ada"), (wallet::WalletBalance{.balance = 3'500, .deposits = 2}));
  EXPECT_EQ(balances.get("grace"), (wallet::WalletBalance{.balance = 700, .deposits = 1}));
  EXPECT_EQ(balances.get("nobody"), std::nullopt);
  EXPECT_EQ(balances.count(), 2);  // the refused deposit wrote nothing
}
// docs:end

INSTANTIATE_TEST_SUITE_P(Stores, WalletBalancesTest,
                         ::testing::Values(Store::kMemory, Store::kPostgres),
                         [](const ::testing::TestParamInfo<Store>& info) {
                           return info.param == Store::kMemory ? "InMemory" : "Postgres";
                         });

#ifdef QUICKSTART_PROGRAM
// The program itself, run as a user would, on a fresh database.
TEST(QuickstartTest, TheProgramPrintsTheBalance) {
  if (ScratchDatabase::server().empty()) {
    GTEST_SKIP() << "set ANNALS_DATABASE_URL to a PostgreSQL server to run this test";
  }
  const ScratchDatabase database;
  const std::string command = std::string(QUICKSTART_PROGRAM) + " '" + database.url() + "' 2>&1";
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
