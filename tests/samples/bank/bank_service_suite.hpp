// End-to-end tests of bank-service through its real HTTP interface: the process is started
// per test (bank_service_memory_test: --memory; bank_service_postgres_test: a test database)
// and driven with httplib::Client. Every route and status code, idempotent re-sends,
// read-your-writes with ?after=, history by version and as of a time, bad input.
//
// Each binary defines service_args(), the flags that select its store.
#pragma once

#include <httplib.h>
#include <signal.h>

#include <cstdint>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "service_process.hpp"

namespace bank_test {

/// The flags that select the store of the binary's service (e.g. {"--memory"}).
std::vector<std::string> service_args();

using nlohmann::json;

struct Reply {
  int status = 0;  // 0: no answer (connection failed)
  json body;       // parsed when the body is JSON, else null
  std::string text;
};

/// A small HTTP client for one service. One per thread.
class Api {
 public:
  explicit Api(int port) : client_("127.0.0.1", port) {
    client_.set_connection_timeout(std::chrono::seconds(5));
    client_.set_read_timeout(std::chrono::seconds(60));
    client_.set_write_timeout(std::chrono::seconds(60));
  }

  Reply post(const std::string& path, const std::string& body) {
    return reply(client_.Post(path.c_str(), body, "application/json"));
  }
  Reply post(const std::string& path, const json& body) { return post(path, body.dump()); }
  Reply get(const std::string& path) { return reply(client_.Get(path.c_str())); }
  Reply del(const std::string& path) { return reply(client_.Delete(path.c_str())); }

 private:
  static Reply reply(const httplib::Result& result) {
    Reply r;
    if (!result) return r;
    r.status = result->status;
    r.text = result->body;
    r.body = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
    if (r.body.is_discarded()) r.body = nullptr;
    return r;
  }
  httplib::Client client_;
};

inline std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 12; ++i) out.push_back(kDigits[rng() % 16]);
  return out;
}

/// Checks that a reply is an error: the status and a JSON {"error": "<non-empty>"}.
inline void expect_error(const Reply& r, int status, const std::string& context = {}) {
  EXPECT_EQ(r.status, status) << context << ": " << r.text;
  ASSERT_TRUE(r.body.is_object()) << context << ": not JSON: " << r.text;
  ASSERT_TRUE(r.body.contains("error")) << context << ": " << r.text;
  ASSERT_TRUE(r.body["error"].is_string()) << context << ": " << r.text;
  EXPECT_FALSE(r.body["error"].get<std::string>().empty()) << context;
}

class BankServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_.emplace(service_args());
    ASSERT_TRUE(service_->ready());
    api_.emplace(service_->port());
  }
  void TearDown() override {
    if (service_ && service_->ready()) {
      EXPECT_EQ(service_->stop(SIGTERM), 0) << "bank-service did not shut down cleanly";
    }
  }

  Api& api() { return *api_; }

  static std::string new_id() { return "acc-" + random_suffix(); }

  /// Opens an account; returns the position of its event.
  std::string open(const std::string& id, const std::string& owner = "Ada") {
    const auto r = api().post("/accounts", json{{"account_id", id}, {"owner", owner}});
    EXPECT_EQ(r.status, 201) << r.text;
    return r.body.value("position", "");
  }

  /// Deposits or withdraws; returns the reply.
  Reply move(const std::string& id, const std::string& verb, std::int64_t amount,
             const std::string& command_id = {}) {
    json body{{"amount", amount}};
    if (!command_id.empty()) body["command_id"] = command_id;
    return api().post("/accounts/" + id + "/" + verb, body);
  }

  /// The balances read model's row, after `position`.
  Reply account(const std::string& id, const std::string& position) {
    return api().get("/accounts/" + id + "?after=" + position);
  }

  std::optional<ServiceProcess> service_;
  std::optional<Api> api_;
};

// --- Commands -----------------------------------------------------------------------------

TEST_F(BankServiceTest, OpensAnAccount) {
  const auto id = new_id();
  const auto r = api().post("/accounts", json{{"account_id", id}, {"owner", "Ada"}});
  ASSERT_EQ(r.status, 201) << r.text;
  ASSERT_EQ(r.body.size(), 3u) << r.text;
  EXPECT_EQ(r.body["account_id"], id);
  EXPECT_EQ(r.body["version"], 1);
  ASSERT_TRUE(r.body["position"].is_string());

  const auto read = account(id, r.body["position"]);
  ASSERT_EQ(read.status, 200) << read.text;
  EXPECT_EQ(read.body, (json{{"account_id", id},
                             {"owner", "Ada"},
                             {"balance", 0},
                             {"version", 1},
                             {"status", "open"}}));
}

TEST_F(BankServiceTest, RefusesToOpenAnAccountTwice) {
  const auto id = new_id();
  const auto position = open(id, "Ada");
  expect_error(api().post("/accounts", json{{"account_id", id}, {"owner", "Grace"}}), 409);
  const auto read = account(id, position);
  EXPECT_EQ(read.body["owner"], "Ada");
  EXPECT_EQ(read.body["version"], 1);
}

TEST_F(BankServiceTest, DepositsAndWithdraws) {
  const auto id = new_id();
  open(id);
  const auto deposited = move(id, "deposit", 1000);
  ASSERT_EQ(deposited.status, 200) << deposited.text;
  ASSERT_EQ(deposited.body.size(), 2u) << deposited.text;
  EXPECT_EQ(deposited.body["version"], 2);
  const auto withdrawn = move(id, "withdraw", 250);
  ASSERT_EQ(withdrawn.status, 200) << withdrawn.text;
  EXPECT_EQ(withdrawn.body["version"], 3);

  const auto read = account(id, withdrawn.body["position"]);
  ASSERT_EQ(read.status, 200) << read.text;
  EXPECT_EQ(read.body["balance"], 750);
  EXPECT_EQ(read.body["version"], 3);
}

TEST_F(BankServiceTest, RefusesToOverdraw) {
  const auto id = new_id();
  open(id);
  const auto deposited = move(id, "deposit", 100);
  expect_error(move(id, "withdraw", 101), 422);
  const auto read = account(id, deposited.body["position"]);
  EXPECT_EQ(read.body["balance"], 100);
  EXPECT_EQ(read.body["version"], 2);
  EXPECT_EQ(move(id, "withdraw", 100).status, 200);
}

TEST_F(BankServiceTest, AnswersNotFoundForAnUnknownAccount) {
  const auto id = new_id();
  expect_error(move(id, "deposit", 5), 404, "deposit");
  expect_error(move(id, "withdraw", 5), 404, "withdraw");
  expect_error(api().post("/accounts/" + id + "/close", std::string("{}")), 404, "close");
  expect_error(api().get("/accounts/" + id), 404, "balances");
  expect_error(api().get("/accounts/" + id + "/transactions"), 404, "transactions");
  expect_error(api().get("/accounts/" + id + "/history"), 404, "history");
  expect_error(api().get("/accounts/" + id + "/history?version=1"), 404, "history by version");
}

TEST_F(BankServiceTest, ClosesOnlyAtZeroBalance) {
  const auto id = new_id();
  open(id);
  move(id, "deposit", 40);
  expect_error(api().post("/accounts/" + id + "/close", std::string("{}")), 422, "balance 40");
  move(id, "withdraw", 40);
  const auto closed = api().post("/accounts/" + id + "/close", std::string());
  ASSERT_EQ(closed.status, 200) << closed.text;
  EXPECT_EQ(closed.body["version"], 4);

  expect_error(move(id, "deposit", 1), 422, "deposit after close");
  expect_error(api().post("/accounts/" + id + "/close", std::string("{}")), 422, "close again");
  expect_error(api().post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}), 409);
  const auto read = account(id, closed.body["position"]);
  EXPECT_EQ(read.body, (json{{"account_id", id},
                             {"owner", "Ada"},
                             {"balance", 0},
                             {"version", 4},
                             {"status", "closed"}}));
}

// DELETE /accounts/{id} soft-deletes a closed account's stream (docs/stream-lifecycle.md): its
// events stay in the log, history before the deletion still rebuilds, and every other route of
// the account answers 410 Gone.
TEST_F(BankServiceTest, DeletesOnlyAClosedAccountWhichIsThenGone) {
  const auto id = new_id();
  open(id);
  expect_error(api().del("/accounts/" + id), 409, "delete an open account");
  expect_error(api().del("/accounts/" + new_id()), 404, "delete an unknown account");
  const auto closed = api().post("/accounts/" + id + "/close", std::string());
  ASSERT_EQ(closed.status, 200) << closed.text;
  const auto deleted = api().del("/accounts/" + id);
  ASSERT_EQ(deleted.status, 200) << deleted.text;
  EXPECT_EQ(deleted.body["deleted"], true);
  EXPECT_EQ(deleted.body["version"], 3);
  const std::string position = deleted.body["position"];

  expect_error(account(id, position), 410, "balances");
  expect_error(api().get("/accounts/" + id + "/transactions?after=" + position), 410,
               "transactions");
  expect_error(api().get("/accounts/" + id + "/history"), 410, "history");
  expect_error(move(id, "deposit", 5), 410, "deposit");
  expect_error(api().post("/accounts/" + id + "/close", std::string("{}")), 410, "close");
  expect_error(api().post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}), 410, "open");
  expect_error(api().del("/accounts/" + id), 410, "delete again");
  // The state before the deletion is still there for auditors.
  const auto before = api().get("/accounts/" + id + "/history?version=2");
  ASSERT_EQ(before.status, 200) << before.text;
  EXPECT_EQ(before.body["status"], "closed");
  // Other accounts are unaffected.
  const auto other = new_id();
  EXPECT_EQ(account(other, open(other)).status, 200);
}

// docs/personal-data.md: the owner's name is personal data of subject "account-<id>".
TEST_F(BankServiceTest, ForgetsTheOwnerInEveryView) {
  const auto id = new_id();
  open(id, "Ada Lovelace");
  ASSERT_EQ(move(id, "deposit", 100).status, 200);
  const auto forgot = api().post("/accounts/" + id + "/forget", std::string());
  ASSERT_EQ(forgot.status, 200) << forgot.text;
  EXPECT_EQ(forgot.body["keys_destroyed"], 1);

  const auto read = account(id, forgot.body["position"]);  // after the read model's erasure
  ASSERT_EQ(read.status, 200) << read.text;
  EXPECT_EQ(read.body["owner"], "[redacted]");
  EXPECT_EQ(read.body["balance"], 100);
  const auto history = api().get("/accounts/" + id + "/history");
  ASSERT_EQ(history.status, 200) << history.text;
  EXPECT_EQ(history.body["owner"], "[redacted]");
  EXPECT_EQ(history.body["balance"], 100);

  const auto again = api().post("/accounts/" + id + "/forget", std::string());
  ASSERT_EQ(again.status, 200) << again.text;
  EXPECT_EQ(again.body["keys_destroyed"], 0);
  const auto deposited = move(id, "deposit", 5);  // the account works as before
  ASSERT_EQ(deposited.status, 200) << deposited.text;
  EXPECT_EQ(account(id, deposited.body["position"]).body["balance"], 105);
}

TEST_F(BankServiceTest, ReSendingACommandIdReturnsTheOriginalResultAndChangesNothing) {
  const auto id = new_id();
  const std::string open_id = "open-" + random_suffix();
  const json open_body{{"account_id", id}, {"owner", "Ada"}, {"command_id", open_id}};
  const auto opened = api().post("/accounts", open_body);
  ASSERT_EQ(opened.status, 201);
  const auto opened_again = api().post("/accounts", open_body);
  EXPECT_EQ(opened_again.status, 201) << opened_again.text;
  EXPECT_EQ(opened_again.body, opened.body);

  const std::string command_id = "dep-" + random_suffix();
  const auto first = move(id, "deposit", 500, command_id);
  ASSERT_EQ(first.status, 200) << first.text;
  const auto again = move(id, "deposit", 500, command_id);
  EXPECT_EQ(again.status, 200) << again.text;
  EXPECT_EQ(again.body, first.body);

  // Later commands do not change what the re-send answers.
  const std::string withdraw_id = "wd-" + random_suffix();
  const auto withdrawn = move(id, "withdraw", 500, withdraw_id);
  ASSERT_EQ(withdrawn.status, 200);
  const auto late = move(id, "deposit", 500, command_id);
  EXPECT_EQ(late.body, first.body) << late.text;
  // A withdrawal re-sent when the balance no longer covers it still gets its original result;
  // a new one is refused.
  const auto withdrawn_again = move(id, "withdraw", 500, withdraw_id);
  EXPECT_EQ(withdrawn_again.status, 200) << withdrawn_again.text;
  EXPECT_EQ(withdrawn_again.body, withdrawn.body);
  expect_error(move(id, "withdraw", 500, "wd-" + random_suffix()), 422);

  const auto read = account(id, withdrawn.body["position"]);
  EXPECT_EQ(read.body["balance"], 0);
  EXPECT_EQ(read.body["version"], 3);
  const auto history = api().get("/accounts/" + id + "/history");
  EXPECT_EQ(history.body["version"], 3) << history.text;
}

// A command_id reused for a different command (another amount, another account, another kind)
// is refused with 409 and an error that says so, and changes nothing.
TEST_F(BankServiceTest, ReusingACommandIdForADifferentCommandIsRefused) {
  const auto id = new_id();
  const auto other = new_id();
  open(id);
  open(other);
  const std::string command_id = "dep-" + random_suffix();
  const auto first = move(id, "deposit", 500, command_id);
  ASSERT_EQ(first.status, 200) << first.text;

  const std::vector<std::pair<std::string, Reply>> reuses{
      {"another amount", move(id, "deposit", 600, command_id)},
      {"another account", move(other, "deposit", 500, command_id)},
      {"another kind", move(id, "withdraw", 500, command_id)}};
  for (const auto& [what, r] : reuses) {
    expect_error(r, 409, what);
    const auto error = r.body.value("error", "");
    EXPECT_NE(error.find(command_id), std::string::npos) << what << ": " << error;
    EXPECT_NE(error.find("already used for a different command"), std::string::npos)
        << what << ": " << error;
  }
  const auto again = move(id, "deposit", 500, command_id);  // the same command: its result
  EXPECT_EQ(again.status, 200) << again.text;
  EXPECT_EQ(again.body, first.body);
  const auto read = account(id, first.body["position"]);
  EXPECT_EQ(read.body["balance"], 500) << read.text;
  EXPECT_EQ(read.body["version"], 2) << read.text;
  const auto other_read = account(other, first.body["position"]);
  EXPECT_EQ(other_read.body["balance"], 0) << other_read.text;
}

TEST_F(BankServiceTest, ReadsItsOwnWritesWithAfter) {
  const auto id = new_id();
  open(id);
  std::int64_t balance = 0;
  for (int i = 1; i <= 20; ++i) {
    const auto r = move(id, i % 3 == 0 ? "withdraw" : "deposit", i);
    ASSERT_EQ(r.status, 200) << r.text;
    balance += i % 3 == 0 ? -i : i;
    const auto read = account(id, r.body["position"]);
    ASSERT_EQ(read.status, 200) << read.text;
    EXPECT_EQ(read.body["balance"], balance) << "after command " << i;
    EXPECT_EQ(read.body["version"], i + 1);
  }
}

// A position above the head cannot come from a command: 400 at once on every route taking
// after= (a wait would hold a worker for the read timeout, then answer 504), while the position
// of the last command is served. `beyond` is just past the last event written.
TEST_F(BankServiceTest, AfterAPositionBeyondTheHeadIsRefusedAtOnce) {
  const auto id = new_id();
  open(id);
  const auto deposited = move(id, "deposit", 5);
  ASSERT_EQ(deposited.status, 200) << deposited.text;
  const std::string last = deposited.body["position"];
  const auto colon = last.find(':');
  ASSERT_NE(colon, std::string::npos) << last;
  const std::string beyond =
      last.substr(0, colon + 1) + std::to_string(std::stoll(last.substr(colon + 1)) + 1);
  for (const std::string& path :
       {"/accounts/" + id, "/accounts/" + id + "/transactions", std::string("/totals/daily")}) {
    for (const std::string& position : {beyond, std::string("999999999999:999999999")}) {
      const auto r = api().get(path + "?after=" + position);
      expect_error(r, 400, path + "?after=" + position);
      const std::string error = r.body.value("error", "");
      EXPECT_NE(error.find("position " + position + " is beyond the head of the log ("),
                std::string::npos)
          << error;
    }
  }
  const auto at_last = account(id, last);
  ASSERT_EQ(at_last.status, 200) << at_last.text;
  EXPECT_EQ(at_last.body["balance"], 5);
  expect_error(api().get("/accounts/" + id + "?after=not-a-position"), 400);
  expect_error(api().get("/accounts/" + id + "/transactions?after=-1"), 400);
}

// Found by the request fuzz target: a year the clock cannot hold overflowed its nanoseconds.
TEST_F(BankServiceTest, AsOfOutsideTheClocksRangeIsRefused) {
  const auto id = new_id();
  open(id);
  for (const std::string time : {"6990-05-01T12:00:00Z", "0001-01-01T00:00:00Z",
                                 "2262-12-31T23:59:59Z", "1677-01-01T00:00:00Z"}) {
    expect_error(api().get("/accounts/" + id + "/history?as_of=" + time), 400, time);
  }
  EXPECT_EQ(api().get("/accounts/" + id + "/history?as_of=2261-01-01T00:00:00Z").status, 200);
}

// Found by the request fuzz target: a number beyond a double was a 500.
TEST_F(BankServiceTest, ANumberBeyondADoubleIsMalformedJson) {
  const auto id = new_id();
  open(id);
  const auto r = api().post("/accounts/" + id + "/deposit", std::string(R"({"amount":1e8466})"));
  expect_error(r, 400);
  EXPECT_NE(r.body.value("error", "").find("malformed JSON"), std::string::npos) << r.text;
}

TEST_F(BankServiceTest, ListsTheTransactionHistory) {
  const auto id = new_id();
  open(id);
  move(id, "deposit", 300);
  move(id, "withdraw", 120);
  move(id, "withdraw", 180);
  const auto closed = api().post("/accounts/" + id + "/close", std::string("{}"));
  ASSERT_EQ(closed.status, 200);
  const auto r = api().get("/accounts/" + id +
                           "/transactions?after=" + closed.body["position"].get<std::string>());
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body["account_id"], id);
  const auto& entries = r.body["transactions"];
  ASSERT_EQ(entries.size(), 5u) << r.text;
  const std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> expected{
      {"opened", 0, 0},
      {"deposit", 300, 300},
      {"withdrawal", 120, 180},
      {"withdrawal", 180, 0},
      {"closed", 0, 0}};
  const std::regex rfc3339(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)");
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& e = entries[i];
    EXPECT_EQ(e.size(), 5u) << e;
    EXPECT_EQ(e["version"], i + 1) << e;
    EXPECT_EQ(e["type"], std::get<0>(expected[i])) << e;
    EXPECT_EQ(e["amount"], std::get<1>(expected[i])) << e;
    EXPECT_EQ(e["balance"], std::get<2>(expected[i])) << e;
    EXPECT_TRUE(std::regex_match(e["recorded_at"].get<std::string>(), rfc3339)) << e;
  }
}

TEST_F(BankServiceTest, RebuildsHistoryByVersionAndAsOfATime) {
  const auto id = new_id();
  open(id, "Ada");
  move(id, "deposit", 100);
  const auto last = move(id, "withdraw", 30);
  const auto history = api().get("/accounts/" + id +
                                 "/transactions?after=" + last.body["position"].get<std::string>());
  ASSERT_EQ(history.status, 200);
  const auto state = [&](std::int64_t balance, std::int64_t version) {
    return json{{"account_id", id},
                {"owner", "Ada"},
                {"balance", balance},
                {"version", version},
                {"status", "open"}};
  };
  const std::string base = "/accounts/" + id + "/history";
  EXPECT_EQ(api().get(base + "?version=1").body, state(0, 1));
  EXPECT_EQ(api().get(base + "?version=2").body, state(100, 2));
  EXPECT_EQ(api().get(base + "?version=3").body, state(70, 3));
  EXPECT_EQ(api().get(base + "?version=99").body, state(70, 3));  // the latest
  EXPECT_EQ(api().get(base).body, state(70, 3));

  // As of the recorded time of event 2: events recorded at or before it.
  const std::string at2 = history.body["transactions"][1]["recorded_at"];
  const auto r = api().get(base + "?as_of=" + at2);
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body, state(100, 2));
  // The same instant with an offset ('+' encoded as %2B in a query string), and one
  // microsecond earlier.
  const std::string no_zone = at2.substr(0, at2.size() - 1);
  EXPECT_EQ(api().get(base + "?as_of=" + no_zone + "%2B00:00").body, state(100, 2));
  EXPECT_EQ(api().get(base + "?as_of=" + no_zone + "-00:00").body, state(100, 2));
  const std::string micros = no_zone.substr(no_zone.size() - 6);
  if (micros != "000000") {
    const std::string earlier = no_zone.substr(0, no_zone.size() - 6) +
                                std::string(6 - std::to_string(std::stoi(micros) - 1).size(), '0') +
                                std::to_string(std::stoi(micros) - 1) + "Z";
    EXPECT_EQ(api().get(base + "?as_of=" + earlier).body, state(0, 1)) << earlier;
  }
  expect_error(api().get(base + "?as_of=2000-01-01T00:00:00Z"), 404, "before the account");

  for (const std::string bad :
       {"?version=0", "?version=-1", "?version=abc", "?version=1.5",
        "?version=99999999999999999999", "?as_of=yesterday", "?as_of=2024-02-30T00:00:00Z",
        "?as_of=2024-05-01T12:00:00", "?version=1&as_of=2024-05-01T12:00:00Z"}) {
    expect_error(api().get(base + bad), 400, bad);
  }
}

TEST_F(BankServiceTest, SumsDailyTotals) {
  const auto before = api().get("/totals/daily");
  ASSERT_EQ(before.status, 200) << before.text;
  const auto id = new_id();
  open(id);
  move(id, "deposit", 1000);
  move(id, "deposit", 500);
  const auto last = move(id, "withdraw", 200);
  const auto after = api().get("/totals/daily?after=" + last.body["position"].get<std::string>());
  ASSERT_EQ(after.status, 200) << after.text;
  const auto transactions = api().get(
      "/accounts/" + id + "/transactions?after=" + last.body["position"].get<std::string>());
  // Totals of the day of the last event, before and after (a day has at most one row).
  const std::string day =
      transactions.body["transactions"][3]["recorded_at"].get<std::string>().substr(0, 10);
  const auto row_of = [&](const json& totals) {
    for (const auto& row : totals["days"]) {
      if (row["day"] == day) return row;
    }
    return json{
        {"day", day}, {"deposited", 0}, {"withdrawn", 0}, {"deposits", 0}, {"withdrawals", 0}};
  };
  const auto was = row_of(before.body);
  const auto now = row_of(after.body);
  EXPECT_EQ(now["deposited"].get<std::int64_t>() - was["deposited"].get<std::int64_t>(), 1500);
  EXPECT_EQ(now["withdrawn"].get<std::int64_t>() - was["withdrawn"].get<std::int64_t>(), 200);
  EXPECT_EQ(now["deposits"].get<std::int64_t>() - was["deposits"].get<std::int64_t>(), 2);
  EXPECT_EQ(now["withdrawals"].get<std::int64_t>() - was["withdrawals"].get<std::int64_t>(), 1);
}

// --- Bad input: 4xx, a JSON error, and nothing written -------------------------------------

TEST_F(BankServiceTest, RefusesBadInputAndWritesNothing) {
  const auto id = new_id();
  open(id, "Ada");
  const auto good = move(id, "deposit", 100);
  ASSERT_EQ(good.status, 200);
  const std::string deposit = "/accounts/" + id + "/deposit";
  const std::string withdraw = "/accounts/" + id + "/withdraw";

  struct Case {
    std::string path;
    std::string body;
    int status;
  };
  const std::string huge(100 * 1024, ' ');
  const std::vector<Case> cases{
      {deposit, "{\"amount\": 5", 400},                           // malformed JSON
      {deposit, "", 400},                                         // no body
      {deposit, "[5]", 400},                                      // not an object
      {deposit, "\"5\"", 400},                                    // not an object
      {deposit, "{}", 400},                                       // missing amount
      {deposit, R"({"amount": "100"})", 400},                     // wrong type
      {deposit, R"({"amount": 1.5})", 400},                       // not an integer
      {deposit, R"({"amount": 1e3})", 400},                       // a float, even if whole
      {deposit, R"({"amount": true})", 400},                      // wrong type
      {deposit, R"({"amount": null})", 400},                      // wrong type
      {deposit, R"({"amount": 0})", 400},                         // not positive
      {withdraw, R"({"amount": -5})", 400},                       // not positive
      {deposit, R"({"amount": 9223372036854775808})", 400},       // beyond int64
      {deposit, R"({"amount": 100000000000000000000000})", 400},  // beyond anything
      {deposit, R"({"amount": 1000000000001})", 400},             // above the per-command limit
      {deposit, R"({"amount": 5, "amout": 5})", 400},             // unknown field
      {deposit, R"({"amount": 5, "command_id": 7})", 400},        // wrong type
      {deposit, R"({"amount": 5, "command_id": ""})", 400},       // empty id
      {deposit, "{\"amount\": 5, \"command_id\": \"" + std::string(200, 'c') + "\"}", 400},
      {deposit, "{\"amount\": 5, \"x\": \"" + huge + "\"}", 413},                      // huge body
      {deposit, "{\"amount\": 5, \"command_id\": \"\xff\xfe\"}", 400},                 // not UTF-8
      {"/accounts/" + std::string(100, 'x') + "/deposit", R"({"amount": 5})", 400},    // long id
      {"/accounts/" + std::string(20000, 'x') + "/deposit", R"({"amount": 5})", 414},  // URI
      {"/accounts/z%C3%AB/deposit", R"({"amount": 5})", 400},                          // unicode id
      {"/accounts/a%2Fb/deposit", R"({"amount": 5})", 404},  // a slash: no such route
      {"/accounts", R"({"account_id": "zoë", "owner": "Zoë"})", 400},
      {"/accounts", R"({"account_id": 5, "owner": "Ada"})", 400},
      {"/accounts", R"({"owner": "Ada"})", 400},
      {"/accounts", R"({"account_id": "ok1"})", 400},
      {"/accounts", R"({"account_id": "ok1", "owner": ["Ada"]})", 400},
      {"/accounts", R"({"account_id": "ok1", "owner": ""})", 400},
      {"/accounts", R"({"account_id": "ok1", "owner": "Ada\u0007"})", 400},
      {"/accounts", "{\"account_id\": \"ok1\", \"owner\": \"" + std::string(201, 'o') + "\"}", 400},
      {"/accounts/" + id + "/close", R"({"command_id": 1})", 400},
      {"/accounts/" + id + "/close", R"({"reason": "x"})", 400},
  };
  for (const auto& c : cases) {
    expect_error(api().post(c.path, c.body), c.status,
                 c.path.substr(0, 60) + " " + c.body.substr(0, 60));
  }

  // Nothing was written: the read model, the event store and the account's history agree.
  const auto read = account(id, good.body["position"]);
  EXPECT_EQ(read.body["balance"], 100);
  EXPECT_EQ(read.body["version"], 2);
  const auto history = api().get("/accounts/" + id + "/history");
  EXPECT_EQ(history.body["version"], 2) << history.text;
  EXPECT_EQ(history.body["balance"], 100);
  expect_error(api().get("/accounts/ok1/history"), 404, "no account ok1 was opened");
  // And the service still works.
  EXPECT_EQ(move(id, "deposit", 1).status, 200);
}

TEST_F(BankServiceTest, KeepsUnicodeOwnersExactly) {
  const auto id = new_id();
  const std::string owner = "Zoë 李 🏦 \"quoted\" \\ back";
  const auto position = open(id, owner);
  const auto read = account(id, position);
  ASSERT_EQ(read.status, 200) << read.text;
  EXPECT_EQ(read.body["owner"], owner);
  EXPECT_EQ(api().get("/accounts/" + id + "/history?version=1").body["owner"], owner);
}

TEST_F(BankServiceTest, AnswersUnknownRoutesWithJson) {
  expect_error(api().get("/nope"), 404);
  expect_error(api().get("/accounts/a1/deposit"), 404);
  expect_error(api().post("/accounts/a1/transfer", std::string("{}")), 404);
}

// --- Operations ---------------------------------------------------------------------------

TEST_F(BankServiceTest, ReportsHealth) {
  const auto r = api().get("/health");
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body["status"], "ok");
  ASSERT_EQ(r.body["projections"].size(), 3u) << r.text;
  std::set<std::string> names;
  for (const auto& p : r.body["projections"]) names.insert(p["name"]);
  EXPECT_EQ(names,
            (std::set<std::string>{"bank.balances", "bank.transactions", "bank.daily_totals"}));
}

TEST_F(BankServiceTest, ExportsMetrics) {
  const auto id = new_id();
  open(id);
  move(id, "deposit", 10);
  move(id, "deposit", 10);
  move(id, "withdraw", 100);  // rejected
  move(id, "withdraw", 0);    // invalid
  const auto last = move(id, "withdraw", 5);
  account(id, last.body["position"]);
  const auto r = api().get("/metrics");
  ASSERT_EQ(r.status, 200);
  const std::string& text = r.text;
  for (const std::string line :
       {"bank_commands_total{command=\"open\",outcome=\"ok\"} 1\n",
        "bank_commands_total{command=\"deposit\",outcome=\"ok\"} 2\n",
        "bank_commands_total{command=\"withdraw\",outcome=\"ok\"} 1\n",
        "bank_commands_total{command=\"withdraw\",outcome=\"rejected\"} 1\n",
        "bank_commands_total{command=\"withdraw\",outcome=\"invalid\"} 1\n",
        "bank_commands_total{command=\"withdraw\",outcome=\"failed\"} 0\n",
        "bank_command_duration_seconds_count{command=\"withdraw\"} 3\n",
        "bank_command_duration_seconds_bucket{command=\"deposit\",le=\"+Inf\"} 2\n",
        "# TYPE bank_command_duration_seconds histogram\n",
        "annals_projection_lag_events{projection=\"bank.balances\"} ",
        "annals_projection_state{projection=\"bank.balances\",state=\"live\"} 1\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "\nin:\n" << text;
  }
}

TEST_F(BankServiceTest, ShutsDownOnSigint) {
  const auto id = new_id();
  open(id);
  EXPECT_EQ(service_->stop(SIGINT), 0);
  service_.reset();
}

// --- Limits -----------------------------------------------------------------------------

inline std::vector<std::string> with_args(std::vector<std::string> args,
                                          const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// `levels` arrays nested in one another around `inner`.
inline std::string nested_arrays(std::size_t levels, const std::string& inner = "") {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}

// JSON nested 100,000 deep is refused with 400 before it is built (the depth limit,
// kMaxRequestJsonDepth = 32 levels), never a crash; 32 levels still parse. The body limit is
// raised to 1 MiB so that such bodies reach the parser at all.
TEST(BankServiceLimitsTest, RefusesDeeplyNestedBodiesWithoutCrashing) {
  ServiceProcess service(with_args(service_args(), {"--max-body-bytes", "1048576"}));
  ASSERT_TRUE(service.ready());
  Api api(service.port());
  const std::string too_deep = "more than 32 levels deep";
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += R"({"a":)";
  objects += "1" + std::string(100'000, '}');
  const std::vector<std::pair<std::string, std::string>> bodies = {
      {"/accounts", nested_arrays(100'000)},
      {"/accounts", objects},
      {"/accounts", std::string(500'000, '[')},  // never closed
      {"/accounts/a1/deposit", nested_arrays(100'000)},
      {"/accounts/a1/close", nested_arrays(100'000)},
      {"/accounts", R"({"account_id":"a1","owner":)" + nested_arrays(32, "\"x\"") + "}"}};
  for (const auto& [path, body] : bodies) {
    const auto r = api.post(path, body);
    expect_error(r, 400, path);
    EXPECT_NE(r.body.value("error", "").find(too_deep), std::string::npos) << r.text;
  }
  // 32 levels (the object and 31 arrays) parse; the field's type is what is wrong.
  const auto at_limit =
      api.post("/accounts", R"({"account_id":"a1","owner":)" + nested_arrays(31, "\"x\"") + "}");
  expect_error(at_limit, 400);
  EXPECT_NE(at_limit.body.value("error", "").find(R"(field "owner" must be a string)"),
            std::string::npos)
      << at_limit.text;
  EXPECT_EQ(api.get("/health").status, 200);
  EXPECT_EQ(service.stop(SIGTERM), 0);
}

}  // namespace bank_test
