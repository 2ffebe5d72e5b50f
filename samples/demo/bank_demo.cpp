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
#include <ctime>
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

std::string new_command_id(std::mt19937_64& rng) {
  // A random (version 4) UUID in its text form.
  std::uniform_int_distribution<std::uint64_t> any;
  const std::uint64_t hi = (any(rng) & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
  const std::uint64_t lo = (any(rng) & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  char text[37];
  std::snprintf(text, sizeof text, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xFFFF),
                static_cast<unsigned long long>(hi & 0xFFFF),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return text;
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[80];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<long long>(micros));
  return text;
}

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

int run(const Options& options) {
  wait_until_healthy(options.url);
  const std::string run_id =
      std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000);
  std::vector<Account> accounts(static_cast<std::size_t>(options.accounts));
  for (std::size_t i = 0; i < accounts.size(); ++i) {
    accounts[i].id = "demo" + run_id + "-" + std::to_string(i);
  }
  Tally tally;
  std::atomic<int> failures{0};
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) {
      ++failures;
      std::cerr << "CHECK FAILED: " << what << '\n';
    }
  };

  // Runs `work(thread_index, api, rng)` on every client thread and waits.
  auto in_parallel = [&](auto work) {
    std::vector<std::thread> threads;
    for (int t = 0; t < options.concurrency; ++t) {
      threads.emplace_back([&, t] {
        Api api(options.url);
        std::mt19937_64 rng(options.seed * 1000 + static_cast<std::uint64_t>(t));
        try {
          work(t, api, rng);
        } catch (const std::exception& e) {
          ++failures;
          std::cerr << "client thread " << t << ": " << e.what() << '\n';
        }
      });
    }
    for (auto& thread : threads) thread.join();
  };

  std::cout << "bank-demo: " << options.accounts << " accounts, " << options.operations
            << " operations on " << options.concurrency << " concurrent clients, against "
            << options.url << "\n";

  // 1. Open every account.
  const auto started = Clock::now();
  in_parallel([&](int t, Api& api, std::mt19937_64&) {
    for (std::size_t i = static_cast<std::size_t>(t); i < accounts.size();
         i += static_cast<std::size_t>(options.concurrency)) {
      Account& account = accounts[i];
      const auto begin = Clock::now();
      const auto reply = api.post(
          "/accounts",
          json{{"account_id", account.id}, {"owner", "Owner " + std::to_string(i)}}.dump());
      tally.record(reply.status == 201 ? "opened" : "error", Clock::now() - begin);
      check(reply.status == 201, "open " + account.id + " answered " +
                                     std::to_string(reply.status) + " " + reply.body.dump());
      if (reply.status == 201) acknowledge(account, 0, reply.body);
    }
  });
  const std::string after_opening = rfc3339_now();
  {
    Api api(options.url);
    const auto again = api.post(
        "/accounts", json{{"account_id", accounts[0].id}, {"owner", "Someone else"}}.dump());
    check(again.status == 409,
          "opening an existing account answered " + std::to_string(again.status) + ", not 409");
  }

  // 2. Concurrent deposits and withdrawals.
  std::atomic<int> resent{0}, resent_same{0}, malformed{0};
  in_parallel([&](int t, Api& api, std::mt19937_64& rng) {
    const int share = options.operations / options.concurrency +
                      (t < options.operations % options.concurrency ? 1 : 0);
    std::uniform_int_distribution<std::size_t> pick(0, accounts.size() - 1);
    std::uniform_int_distribution<int> percent(0, 99);
    std::uniform_int_distribution<std::int64_t> deposit_amount(100, 50'000);
    std::uniform_int_distribution<std::int64_t> withdraw_amount(100, 60'000);
    for (int n = 0; n < share; ++n) {
      Account& account = accounts[pick(rng)];
      const int roll = percent(rng);
      if (roll < 2) {  // a broken client
        const auto begin = Clock::now();
        const auto reply = api.post("/accounts/" + account.id + "/deposit",
                                    roll == 0 ? std::string("{\"amount\": ") : R"({"amount":-5})");
        tally.record("bad input (400)", Clock::now() - begin);
        check(reply.status == 400, "malformed deposit answered " + std::to_string(reply.status));
        ++malformed;
        continue;
      }
      const bool deposit = roll < 60;
      const std::int64_t amount = deposit ? deposit_amount(rng) : withdraw_amount(rng);
      const json command{{"amount", amount}, {"command_id", new_command_id(rng)}};
      const std::string path = "/accounts/" + account.id + (deposit ? "/deposit" : "/withdraw");
      const auto begin = Clock::now();
      const auto reply = api.post(path, command.dump());
      if (reply.status == 200) {
        tally.record(deposit ? "deposited" : "withdrawn", Clock::now() - begin);
        acknowledge(account, deposit ? amount : -amount, reply.body);
        if (percent(rng) < 5) {  // the reply "was lost": send the same command again
          ++resent;
          const auto again = api.post(path, command.dump());
          tally.record("re-sent (same command id)", Clock::now() - begin);
          if (again.status == 200 && again.body == reply.body) ++resent_same;
          check(again.status == 200 && again.body == reply.body,
                "re-sent command answered " + std::to_string(again.status) + " " +
                    again.body.dump() + " instead of " + reply.body.dump());
        }
      } else if (reply.status == 422) {
        tally.record("refused (422)", Clock::now() - begin);
        check(!deposit, "a deposit was refused: " + reply.body.dump());
      } else {
        tally.record("error", Clock::now() - begin);
        check(false, path + " answered " + std::to_string(reply.status) + " " + reply.body.dump());
      }
    }
  });

  // 3. Empty and close every 20th account; closing one with money is refused.
  int closed = 0;
  {
    Api api(options.url);
    std::mt19937_64 rng(options.seed);
    for (std::size_t i = 0; i < accounts.size(); i += 20) {
      Account& account = accounts[i];
      if (account.balance > 0) {
        const auto refused = api.post("/accounts/" + account.id + "/close", "{}");
        check(refused.status == 422,
              "closing an account with money answered " + std::to_string(refused.status));
        const auto begin = Clock::now();
        const auto reply =
            api.post("/accounts/" + account.id + "/withdraw",
                     json{{"amount", account.balance}, {"command_id", new_command_id(rng)}}.dump());
        tally.record("withdrawn", Clock::now() - begin);
        check(reply.status == 200, "emptying " + account.id + " answered " +
                                       std::to_string(reply.status) + " " + reply.body.dump());
        if (reply.status == 200) acknowledge(account, -account.balance, reply.body);
      }
      const auto begin = Clock::now();
      const auto reply = api.post("/accounts/" + account.id + "/close", "{}");
      tally.record("closed", Clock::now() - begin);
      check(reply.status == 200, "closing " + account.id + " answered " +
                                     std::to_string(reply.status) + " " + reply.body.dump());
      if (reply.status == 200) {
        acknowledge(account, 0, reply.body);
        account.closed = true;
        ++closed;
      }
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();

  // 4. The read models against the client's view and against a replay of the event store.
  std::atomic<int> model_ok{0}, replay_ok{0};
  std::atomic<std::int64_t> total_balance{0};
  in_parallel([&](int t, Api& api, std::mt19937_64&) {
    for (std::size_t i = static_cast<std::size_t>(t); i < accounts.size();
         i += static_cast<std::size_t>(options.concurrency)) {
      Account& account = accounts[i];
      const auto model = api.get("/accounts/" + account.id + "?after=" + account.position);
      const bool model_matches = model.status == 200 &&
                                 model.body.value("balance", std::int64_t{-1}) == account.balance &&
                                 model.body.value("version", std::int64_t{-1}) == account.version;
      check(model_matches, "read model of " + account.id + " is " + model.body.dump() +
                               ", the client saw balance " + std::to_string(account.balance) +
                               " at version " + std::to_string(account.version));
      if (model_matches) ++model_ok;
      const auto replay = api.get("/accounts/" + account.id +
                                  "/history?version=" + std::to_string(account.version));
      const bool replay_matches =
          replay.status == 200 && replay.body.value("balance", std::int64_t{-1}) == account.balance;
      check(replay_matches, "replay of " + account.id + " is " + replay.body.dump());
      if (replay_matches) ++replay_ok;
      total_balance += account.balance;
    }
  });

  // 5. An auditor's question: what did the first account look like earlier?
  Api api(options.url);
  const Account& sample =
      *std::max_element(accounts.begin(), accounts.end(),
                        [](const Account& a, const Account& b) { return a.version < b.version; });
  const auto at_two = api.get("/accounts/" + sample.id + "/history?version=2");
  const auto at_open = api.get("/accounts/" + sample.id + "/history?as_of=" + after_opening);
  check(at_open.status == 200 && at_open.body.value("balance", std::int64_t{-1}) == 0,
        "history as of the end of opening is " + at_open.body.dump());

  // Report.
  const auto counts = tally.counts();
  std::printf(
      "\nCommands: %zu in %.1f s = %.0f commands/s; latency p50 %.1f ms, p95 %.1f ms, "
      "p99 %.1f ms\n",
      tally.total(), seconds, static_cast<double>(tally.total()) / seconds,
      tally.percentile_ms(0.50), tally.percentile_ms(0.95), tally.percentile_ms(0.99));
  for (const auto& [outcome, count] : counts) std::printf("  %-28s %6d\n", outcome.c_str(), count);
  std::printf("  re-sent commands answered with the original result: %d of %d\n",
              resent_same.load(), resent.load());
  std::printf(
      "\nRead models: %d of %d balances equal the client's acknowledged view "
      "(read-your-writes with ?after=)\n",
      model_ok.load(), options.accounts);
  std::printf("Event store: %d of %d balances equal a replay of the account's events\n",
              replay_ok.load(), options.accounts);
  std::printf("Money in the bank: %lld cents in %d accounts (%d closed)\n",
              static_cast<long long>(total_balance.load()), options.accounts, closed);
  std::printf("\nHistory of %s (version %lld now, balance %lld):\n", sample.id.c_str(),
              static_cast<long long>(sample.version), static_cast<long long>(sample.balance));
  std::printf("  GET /accounts/%s/history?version=2 -> %s\n", sample.id.c_str(),
              at_two.body.dump().c_str());
  std::printf("  GET /accounts/%s/history?as_of=%s -> %s\n", sample.id.c_str(),
              after_opening.c_str(), at_open.body.dump().c_str());
  if (failures.load() > 0) {
    std::printf("\n%d checks FAILED (see stderr)\n", failures.load());
    return 1;
  }
  std::printf("\nAll checks passed.\n");
  return 0;
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
