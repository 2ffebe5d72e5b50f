// The code of docs/read-side.md, compiled and run in memory (the PostgreSQL wiring of the page
// is compiled and run by tests/integration/projections/documents_postgres_test.cpp).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/projections/app.hpp"
#include "annals/projections/document_reader.hpp"
#include "annals/projections/documents.hpp"

namespace read_side {

struct Opened {
  static constexpr std::string_view kTypeName = "AccountOpened";
  static constexpr int kSchemaVersion = 1;
  std::string owner;
  friend bool operator==(const Opened&, const Opened&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Opened, owner)

struct Deposited {
  static constexpr std::string_view kTypeName = "MoneyDeposited";
  static constexpr int kSchemaVersion = 1;
  std::int64_t amount = 0;
  friend bool operator==(const Deposited&, const Deposited&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Deposited, amount)

struct Open {
  std::string account_id;
  std::string owner;
};
struct Deposit {
  std::string account_id;
  std::int64_t amount = 0;
};

struct Account {
  static constexpr std::string_view kCategory = "account";
  struct State {
    bool open = false;
  };
  using Event = std::variant<Opened, Deposited>;
  static State evolve(State, const Opened&) { return State{true}; }
  static State evolve(State state, const Deposited&) { return state; }
  static Opened decide(const State&, const Open& c) { return Opened{c.owner}; }
  static Deposited decide(const State&, const Deposit& c) { return Deposited{c.amount}; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account::State, open)

// docs:begin read-side-view
// What the read API returns for one account: a plain struct, stored as a JSON document.
struct AccountView {
  std::string owner;
  std::int64_t balance = 0;
  friend bool operator==(const AccountView&, const AccountView&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(AccountView, owner, balance)
// docs:end

// docs:begin read-side-projection
// Keeps one AccountView per account in the collection "accounts".
class AccountViews final : public annals::projections::DocumentProjection {
 public:
  explicit AccountViews(const annals::EventRegistry& registry) : DocumentProjection(registry) {
    using annals::projections::Documents;
    on<Opened>([](const Opened& e, const annals::EventContext& c, Documents& docs) {
      docs.collection("accounts").upsert(c.stream_id().value(), AccountView{e.owner, 0});
    });
    on<Deposited>([](const Deposited& e, const annals::EventContext& c, Documents& docs) {
      docs.collection("accounts").increment(c.stream_id().value(), "balance", e.amount);
    });
  }
  // The key of the checkpoint: keep it stable.
  std::string name() const override { return "account_views"; }
  // Its collections, with an index on the field the read API sorts and filters by.
  std::vector<annals::projections::CollectionSpec> collections() const override {
    return {{"accounts", {annals::projections::DocumentIndex::ordered("balance")}}};
  }
};
// docs:end

// docs:begin read-side-endpoint
// What an HTTP route hands back: a status and a JSON body (mount it on any HTTP library).
struct Response {
  int status = 200;
  nlohmann::json body;
};

// GET /accounts/{id}?after=<position>: `after` is the position a command returned (the POST
// that sent it puts it in its response), so a client reads its own writes.
Response get_account(annals::App& app, const std::string& id,
                     const std::optional<std::string>& after) {
  auto accounts = app.collection<AccountView>("accounts");
  try {
    if (after) accounts = accounts.after(annals::Position::parse(*after), std::chrono::seconds(2));
    const auto view = accounts.get("account-" + id);
    if (!view) return {404, {{"error", "no account " + id}}};
    return {200, *view};
  } catch (const annals::projections::CatchUpTimeoutError&) {
    return {503, {{"error", "the read model is catching up; retry"}}};
  } catch (const annals::InvalidArgumentError& e) {
    return {400, {{"error", e.what()}}};
  }
}

// GET /accounts?min_balance=<n>&page=<cursor>: richest first, 20 per page.
Response list_accounts(annals::App& app, std::int64_t min_balance,
                       const std::optional<std::string>& page) {
  try {
    const auto found =
        app.collection<AccountView>("accounts")
            .find({.filter = annals::projections::DocumentFilter().ge("balance", min_balance),
                   .order_by = "balance",
                   .descending = true,
                   .after = page,
                   .limit = 20});
    nlohmann::json body = {{"accounts", found.items}, {"next", nullptr}};
    if (found.next) body["next"] = *found.next;
    return {200, body};
  } catch (const annals::InvalidArgumentError& e) {
    return {400, {{"error", e.what()}}};  // e.g. a cursor that is not one
  }
}
// docs:end

}  // namespace read_side

namespace {

TEST(ReadSideDocsTest, FromACommandToTheEndpointWithReadYourWrites) {
  using read_side::Account;
  // docs:begin read-side-wiring
  auto app = annals::open_in_memory();  // or annals::postgres::open(url, options)
  app->registry().register_events<Account>();
  app->bus().handle<Account>(&read_side::Open::account_id);
  app->bus().handle<Account>(&read_side::Deposit::account_id);
  app->runner().add(std::make_shared<read_side::AccountViews>(app->registry()));
  app->runner().start();

  static_cast<void>(app->bus().send(read_side::Open{"42", "ada"}));
  const annals::AppendResult sent = app->bus().send(read_side::Deposit{"42", 250});
  // The POST answers with sent.position.to_string(); the client passes it to the GET.
  const auto response = read_side::get_account(*app, "42", sent.position.to_string());
  // docs:end
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, (nlohmann::json{{"owner", "ada"}, {"balance", 250}}));
  EXPECT_EQ(read_side::get_account(*app, "7", std::nullopt).status, 404);
  EXPECT_EQ(read_side::get_account(*app, "42", "not-a-position").status, 400);

  static_cast<void>(app->bus().send(read_side::Open{"43", "bob"}));
  const auto last = app->bus().send(read_side::Deposit{"43", 900});
  ASSERT_EQ(read_side::get_account(*app, "43", last.position.to_string()).status, 200);
  const auto listed = read_side::list_accounts(*app, 100, std::nullopt);
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body["accounts"],
            (nlohmann::json::array(
                {{{"owner", "bob"}, {"balance", 900}}, {{"owner", "ada"}, {"balance", 250}}})));
  EXPECT_TRUE(listed.body["next"].is_null());
  EXPECT_EQ(read_side::list_accounts(*app, 0, "garbage").status, 400);
}

}  // namespace
