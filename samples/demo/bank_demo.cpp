// bank-demo: drives a running bank-service through its HTTP API with a realistic load, checks
// the read models against the event store, and prints a short report. scripts/demo runs it.
//
//   bank-demo --url http://127.0.0.1:8080 [--accounts 300] [--operations 4000]
//             [--concurrency 8] [--seed 42]
//
// The scenario: open the accounts; concurrent deposits and withdrawals (some refused for
// insufficient funds, some re-sent with the same command id as a client would after a lost
// reply, some malformed); empty and close a few accounts. Then, for every account, the balance
// read model (read-your-writes with ?after=) must equal both what the client saw acknowledged
// and the state rebuilt from the event store (/history). Exits 0 when every check holds.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "annals/eventstore/timestamp.hpp"
#include "annals/eventstore/types.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Options {
  std::string url = "http://127.0.0.1:8080";
  int accounts = 300;
  int operations = 4000;
  int concurrency = 8;
  std::uint64_t seed = 42;
};

// What the client knows of one account from acknowledged replies.
struct Account {
  std::string id;
  std::int64_t balance = 0;
  std::int64_t version = 0;
  std::string position = "0";
  bool closed = false;
  std::mutex mutex;
};

struct Reply {
  int status = 0;
  json body;
};

// Counts and latencies of every command sent, by outcome.
class Tally {
 public:
  void record(const std::string& outcome, Clock::duration took) {
    std::lock_guard lock(mutex_);
    ++counts_[outcome];
    micros_.push_back(std::chrono::duration_cast<std::chrono::microseconds>(took).count());
  }
  std::map<std::string, int> counts() const {
    std::lock_guard lock(mutex_);
    return counts_;
  }
  double percentile_ms(double p) const {
    std::lock_guard lock(mutex_);
    if (micros_.empty()) return 0;
    auto sorted = micros_;
    std::sort(sorted.begin(), sorted.end());
    const auto at = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
    return static_cast<double>(sorted[at]) / 1000.0;
  }
  std::size_t total() const {
    std::lock_guard lock(mutex_);
    return micros_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, int> counts_;
  std::vector<std::int64_t> micros_;
};

class Api {
 public:
  explicit Api(const std::string& url) : client_(url) {
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);  // no Nagle delay on requests written in several sends
    client_.set_connection_timeout(5);
    client_.set_read_timeout(30);
  }

  Reply post(const std::string& path, const std::string& body) {
    return to_reply(client_.Post(path.c_str(), body, "application/json"), path);
  }
  Reply get(const std::string& path) { return to_reply(client_.Get(path.c_str()), path); }

 private:
  static Reply to_reply(const httplib::Result& result, const std::string& path) {
    if (!result) {
      throw std::runtime_error("HTTP request to " + path +
                               " failed: " + httplib::to_string(result.error()));
    }
    Reply reply{result->status, json()};
    reply.body = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
    return reply;
  }
  httplib::Client client_;
};

// A new command id: the library's own time-ordered UUID (version 7), so that ids never repeat
// across runs against the same store.
std::string new_command_id() { return annals::EventId::generate().to_string(); }

// The larger of two positions in their string form.
std::string later(const std::string& a, const std::string& b) {
  return annals::Position::parse(a) < annals::Position::parse(b) ? b : a;
}

void wait_until_healthy(const std::string& url) {
  Api api(url);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (true) {
    try {
      if (api.get("/health").status == 200) return;
    } catch (const std::exception&) {
      // not listening yet
    }
    if (Clock::now() > deadline) throw std::runtime_error(url + "/health never answered 200");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling a process start
  }
}

// Applies an acknowledged money movement to the client's view of the account.
void acknowledge(Account& account, std::int64_t delta, const json& body) {
  std::lock_guard lock(account.mutex);
  account.balance += delta;
  if (body.contains("version")) {
    account.version = std::max(account.version, body.at("version").get<std::int64_t>());
  }
  if (body.contains("position")) {
    account.position = later(account.position, body.at("position").get<std::string>());
  }
}

// The scenario, one method per step; run() below calls them in order. Each step that sends
// requests does it from options.concurrency client threads, each with its own connection.
class Scenario {
 public:
  explicit Scenario(const Options& options)
      : options_(options), accounts_(static_cast<std::size_t>(options.accounts)) {
    // Ids unique to this run, so that the demo can run again against the same store.
    const std::string run_id =
        std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000);
    for (std::size_t i = 0; i < accounts_.size(); ++i) {
      accounts_[i].id = "demo" + run_id + "-" + std::to_string(i);
    }
  }

  // 1. Open every account; opening one that exists is refused (409).
  void open_accounts() {
    in_parallel([&](int t, Api& api, std::mt19937_64&) {
      for (auto i = static_cast<std::size_t>(t); i < accounts_.size(); i += stride()) {
        Account& account = accounts_[i];
        const auto begin = Clock::now();
        const auto reply = api.post(
            "/accounts",
            json{{"account_id", account.id}, {"owner", "Owner " + std::to_string(i)}}.dump());
        tally_.record(reply.status == 201 ? "opened" : "error", Clock::now() - begin);
        check(reply.status == 201, "open " + account.id + " answered " +
                                       std::to_string(reply.status) + " " + reply.body.dump());
        if (reply.status == 201) acknowledge(account, 0, reply.body);
      }
    });
    after_opening_ = annals::format_timestamp(std::chrono::system_clock::now());
    Api api(options_.url);
    const auto again = api.post(
        "/accounts", json{{"account_id", accounts_[0].id}, {"owner", "Someone else"}}.dump());
    check(again.status == 409,
          "opening an existing account answered " + std::to_string(again.status) + ", not 409");
  }

  // 2. Concurrent deposits and withdrawals, options.operations in all.
  void move_money() {
    in_parallel([&](int t, Api& api, std::mt19937_64& rng) {
      const int share = options_.operations / options_.concurrency +
                        (t < options_.operations % options_.concurrency ? 1 : 0);
      std::uniform_int_distribution<std::size_t> pick(0, accounts_.size() - 1);
      std::uniform_int_distribution<int> percent(0, 99);
      for (int n = 0; n < share; ++n) {
        Account& account = accounts_[pick(rng)];
        const int roll = percent(rng);
        if (roll < 2) {
          send_malformed_deposit(api, account, roll == 0);
        } else {
          send_deposit_or_withdrawal(api, rng, account, /*deposit=*/roll < 60);
        }
      }
    });
  }

  // 3. Empty and close every 20th account; closing one with money is refused (422).
  void close_some_accounts() {
    Api api(options_.url);
    for (std::size_t i = 0; i < accounts_.size(); i += 20) {
      Account& account = accounts_[i];
      if (account.balance > 0) empty_account(api, account);
      const auto begin = Clock::now();
      const auto reply = api.post("/accounts/" + account.id + "/close", "{}");
      tally_.record("closed", Clock::now() - begin);
      check(reply.status == 200, "closing " + account.id + " answered " +
                                     std::to_string(reply.status) + " " + reply.body.dump());
      if (reply.status == 200) {
        acknowledge(account, 0, reply.body);
        account.closed = true;
        ++closed_;
      }
    }
  }

  // 4. The read models against the client's view and against a replay of the event store.
  void check_balances() {
    in_parallel([&](int t, Api& api, std::mt19937_64&) {
      for (auto i = static_cast<std::size_t>(t); i < accounts_.size(); i += stride()) {
        const Account& account = accounts_[i];
        // Read-your-writes: ?after= makes the read model catch up with the account's last
        // acknowledged position before it answers.
        if (check_read_model(api, account)) ++model_ok_;
        if (check_replay(api, account)) ++replay_ok_;
        total_balance_ += account.balance;
      }
    });
  }

  // What the auditor asked in step 5, and the answers.
  struct LookBack {
    const Account& sample;
    Reply at_two;
    Reply at_open;
  };

  // 5. An auditor's question: what did the busiest account look like earlier?
  LookBack look_back() {
    Api api(options_.url);
    const Account& sample =
        *std::max_element(accounts_.begin(), accounts_.end(),
                          [](const Account& a, const Account& b) { return a.version < b.version; });
    auto at_two = api.get("/accounts/" + sample.id + "/history?version=2");
    auto at_open = api.get("/accounts/" + sample.id + "/history?as_of=" + after_opening_);
    check(at_open.status == 200 && at_open.body.value("balance", std::int64_t{-1}) == 0,
          "history as of the end of opening is " + at_open.body.dump());
    return {sample, std::move(at_two), std::move(at_open)};
  }

  // Prints the report; returns the exit code (0 when every check held).
  int report(double seconds, const LookBack& look_back) const {
    print_commands(seconds);
    print_checks();
    print_look_back(look_back);
    if (failures_.load() > 0) {
      std::printf("\n%d checks FAILED (see stderr)\n", failures_.load());
      return 1;
    }
    std::printf("\nAll checks passed.\n");
    return 0;
  }

 private:
  // A broken client: a truncated body or a negative amount, refused with 400.
  void send_malformed_deposit(Api& api, Account& account, bool truncated) {
    const auto begin = Clock::now();
    const auto reply = api.post("/accounts/" + account.id + "/deposit",
                                truncated ? std::string("{\"amount\": ") : R"({"amount":-5})");
    tally_.record("bad input (400)", Clock::now() - begin);
    check(reply.status == 400, "malformed deposit answered " + std::to_string(reply.status));
  }

  // Deposits never fail; a withdrawal larger than the balance is refused (422).
  void send_deposit_or_withdrawal(Api& api, std::mt19937_64& rng, Account& account, bool deposit) {
    std::uniform_int_distribution<std::int64_t> deposit_amount(100, 50'000);
    std::uniform_int_distribution<std::int64_t> withdraw_amount(100, 60'000);
    std::uniform_int_distribution<int> percent(0, 99);
    const std::int64_t amount = deposit ? deposit_amount(rng) : withdraw_amount(rng);
    const json command{{"amount", amount}, {"command_id", new_command_id()}};
    const std::string path = "/accounts/" + account.id + (deposit ? "/deposit" : "/withdraw");
    const auto begin = Clock::now();
    const auto reply = api.post(path, command.dump());
    if (reply.status == 200) {
      tally_.record(deposit ? "deposited" : "withdrawn", Clock::now() - begin);
      acknowledge(account, deposit ? amount : -amount, reply.body);
      if (percent(rng) < 5) resend(api, path, command, reply, begin);
    } else if (reply.status == 422) {
      tally_.record("refused (422)", Clock::now() - begin);
      check(!deposit, "a deposit was refused: " + reply.body.dump());
    } else {
      tally_.record("error", Clock::now() - begin);
      check(false, path + " answered " + std::to_string(reply.status) + " " + reply.body.dump());
    }
  }

  // The reply "was lost": the client sends the same command (same command_id) again, and
  // gets the original result without the command being applied twice.
  void resend(Api& api, const std::string& path, const json& command, const Reply& first,
              Clock::time_point begin) {
    ++resent_;
    const auto again = api.post(path, command.dump());
    tally_.record("re-sent (same command id)", Clock::now() - begin);
    if (again.status == 200 && again.body == first.body) ++resent_same_;
    check(again.status == 200 && again.body == first.body,
          "re-sent command answered " + std::to_string(again.status) + " " + again.body.dump() +
              " instead of " + first.body.dump());
  }

  void empty_account(Api& api, Account& account) {
    const auto refused = api.post("/accounts/" + account.id + "/close", "{}");
    check(refused.status == 422,
          "closing an account with money answered " + std::to_string(refused.status));
    const auto begin = Clock::now();
    const auto reply =
        api.post("/accounts/" + account.id + "/withdraw",
                 json{{"amount", account.balance}, {"command_id", new_command_id()}}.dump());
    tally_.record("withdrawn", Clock::now() - begin);
    check(reply.status == 200, "emptying " + account.id + " answered " +
                                   std::to_string(reply.status) + " " + reply.body.dump());
    if (reply.status == 200) acknowledge(account, -account.balance, reply.body);
  }

  bool check_read_model(Api& api, const Account& account) {
    const auto model = api.get("/accounts/" + account.id + "?after=" + account.position);
    const bool matches = model.status == 200 &&
                         model.body.value("balance", std::int64_t{-1}) == account.balance &&
                         model.body.value("version", std::int64_t{-1}) == account.version;
    check(matches, "read model of " + account.id + " is " + model.body.dump() +
                       ", the client saw balance " + std::to_string(account.balance) +
                       " at version " + std::to_string(account.version));
    return matches;
  }

  bool check_replay(Api& api, const Account& account) {
    const auto replay =
        api.get("/accounts/" + account.id + "/history?version=" + std::to_string(account.version));
    const bool matches =
        replay.status == 200 && replay.body.value("balance", std::int64_t{-1}) == account.balance;
    check(matches, "replay of " + account.id + " is " + replay.body.dump());
    return matches;
  }

  void print_commands(double seconds) const {
    std::printf(
        "\nCommands: %zu in %.1f s = %.0f commands/s; latency p50 %.1f ms, p95 %.1f ms, "
        "p99 %.1f ms\n",
        tally_.total(), seconds, static_cast<double>(tally_.total()) / seconds,
        tally_.percentile_ms(0.50), tally_.percentile_ms(0.95), tally_.percentile_ms(0.99));
    for (const auto& [outcome, count] : tally_.counts()) {
      std::printf("  %-28s %6d\n", outcome.c_str(), count);
    }
    std::printf("  re-sent commands answered with the original result: %d of %d\n",
                resent_same_.load(), resent_.load());
  }

  void print_checks() const {
    std::printf(
        "\nRead models: %d of %d balances equal the client's acknowledged view "
        "(read-your-writes with ?after=)\n",
        model_ok_.load(), options_.accounts);
    std::printf("Event store: %d of %d balances equal a replay of the account's events\n",
                replay_ok_.load(), options_.accounts);
    std::printf("Money in the bank: %lld cents in %d accounts (%d closed)\n",
                static_cast<long long>(total_balance_.load()), options_.accounts, closed_);
  }

  void print_look_back(const LookBack& look_back) const {
    const Account& sample = look_back.sample;
    std::printf("\nHistory of %s (version %lld now, balance %lld):\n", sample.id.c_str(),
                static_cast<long long>(sample.version), static_cast<long long>(sample.balance));
    std::printf("  GET /accounts/%s/history?version=2 -> %s\n", sample.id.c_str(),
                look_back.at_two.body.dump().c_str());
    std::printf("  GET /accounts/%s/history?as_of=%s -> %s\n", sample.id.c_str(),
                after_opening_.c_str(), look_back.at_open.body.dump().c_str());
  }

  // Counts a check that does not hold and says which on stderr.
  void check(bool ok, const std::string& what) {
    if (ok) return;
    ++failures_;
    std::cerr << "CHECK FAILED: " << what << '\n';
  }

  // Runs `work(thread_index, api, rng)` on every client thread and waits.
  template <typename Work>
  void in_parallel(Work work) {
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(options_.concurrency));
    for (int t = 0; t < options_.concurrency; ++t) {
      threads.emplace_back([&, t] {
        Api api(options_.url);
        std::mt19937_64 rng(options_.seed * 1000 + static_cast<std::uint64_t>(t));
        try {
          work(t, api, rng);
        } catch (const std::exception& e) {
          ++failures_;
          std::cerr << "client thread " << t << ": " << e.what() << '\n';
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }

  // Client thread t takes accounts t, t + stride(), t + 2 * stride(), ...
  [[nodiscard]] std::size_t stride() const {
    return static_cast<std::size_t>(options_.concurrency);
  }

  const Options& options_;
  std::vector<Account> accounts_;
  Tally tally_;
  std::atomic<int> failures_{0};
  std::atomic<int> resent_{0};
  std::atomic<int> resent_same_{0};
  int closed_ = 0;
  std::atomic<int> model_ok_{0};
  std::atomic<int> replay_ok_{0};
  std::atomic<std::int64_t> total_balance_{0};
  std::string after_opening_;  // a time between the opening and the first deposit
};

int run(const Options& options) {
  wait_until_healthy(options.url);
  Scenario scenario(options);
  std::cout << "bank-demo: " << options.accounts << " accounts, " << options.operations
            << " operations on " << options.concurrency << " concurrent clients, against "
            << options.url << "\n";
  const auto started = Clock::now();
  scenario.open_accounts();
  scenario.move_money();
  scenario.close_some_accounts();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  scenario.check_balances();
  const auto look_back = scenario.look_back();
  return scenario.report(seconds, look_back);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Drive bank-service with a realistic load and check its read models"};
  app.add_option("--url", options.url, "bank-service base URL")->capture_default_str();
  app.add_option("--accounts", options.accounts, "accounts to open")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--operations", options.operations, "deposits and withdrawals")
      ->check(CLI::Range(0, 10000000))
      ->capture_default_str();
  app.add_option("--concurrency", options.concurrency, "concurrent clients")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--seed", options.seed, "random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return run(options);
  } catch (const std::exception& e) {
    std::cerr << "bank-demo: " << e.what() << '\n';
    return 1;
  }
}
