// bank-service on PostgreSQL, end to end over HTTP: the shared suite on a test database, then
// what only a database can show: kill -9 under concurrent load and a restart after which the
// read models equal a replay of the event store, and the read models run by a separate
// bank-projector process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "annals/framework/personal_data.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/postgres/postgres_subject_key_store.hpp"
#include "bank_service_suite.hpp"
#include "run_process.hpp"
#include "tcp_proxy.hpp"
#include "test_database.hpp"
#include "test_roles.hpp"

namespace bank_test {

// The service runs as the writer role of `annals migrate --roles` and migrates through the
// administrator's connection, as docs/security.md tells users to. A short lease, so that a
// restarted service takes over a killed one's projections quickly.
std::vector<std::string> service_args() {
  return {"--db",           annals::testing::test_roles().writer_url,
          "--migrate-db",   annals::testing::test_roles().admin_url,
          "--port",         "0",
          "--lease-ttl-ms", "1000"};
}

namespace {

// RFC 3339, UTC, microseconds: computed here independently of the sample.
std::string rfc3339(std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const auto micros = floor<microseconds>(time);
  const auto day = floor<days>(micros);
  const year_month_day ymd{day};
  const hh_mm_ss hms{micros - day};
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%06lldZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<long long>(hms.subseconds().count()));
  return text;
}

// The three read models as a replay of the log computes them.
struct Replay {
  std::map<std::string, json> accounts;      // id -> GET /accounts/{id}
  std::map<std::string, json> transactions;  // id -> GET .../transactions
  std::map<std::string, json> days;          // day -> row of /totals/daily
  std::map<std::string, int> command_ids;    // command id -> events
  annals::Position head;
};

// Reads the whole log, at least up to `until` (the position of the last acknowledged command):
// the global log only shows events below the oldest running transaction of the cluster
// (ARCHITECTURE decision 5), so an event committed a moment ago may not be readable yet; wait
// for it on the store's change signal, bounded.
Replay replay_the_log(const std::string& url, const annals::Position& until) {
  auto store = annals::postgres::make_postgres_event_store({.connection_string = url});
  // The owner is stored encrypted (docs/personal-data.md): the replay opens it with the keys.
  auto keys = annals::postgres::make_postgres_subject_key_store({.connection_string = url});
  annals::PersonalData personal(*keys, *store);
  const auto signal = store->watch();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  Replay r;
  annals::Position after;
  for (;;) {
    const auto token = signal->observe();
    const auto page = store->read_all(
        {.after = after, .max_count = 1000, .filter = {.category = "account", .event_types = {}}});
    if (page.empty() && after < until) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the log did not settle up to " << until.to_string() << " in 60 s";
        break;
      }
      signal->wait(token, std::chrono::milliseconds(200));
      continue;
    }
    for (const auto& e : page) {
      const std::string id = e.stream_id.value().substr(std::string("account-").size());
      const std::string when = rfc3339(e.recorded_at);
      auto& account = r.accounts[id];
      auto& history = r.transactions[id];
      if (history.is_null()) history = json{{"account_id", id}, {"transactions", json::array()}};
      std::int64_t balance = account.is_null() ? 0 : account["balance"].get<std::int64_t>();
      std::string type;
      std::int64_t amount = 0;
      if (e.type == "bank.AccountOpened") {
        type = "opened";
        account = json{{"account_id", id},
                       {"owner", personal.reveal(e).value_or(e.data.get_json()).at("owner")},
                       {"balance", 0},
                       {"version", 0},
                       {"status", "open"}};
      } else if (e.type == "bank.MoneyDeposited" || e.type == "bank.MoneyWithdrawn") {
        const bool deposit = e.type == "bank.MoneyDeposited";
        type = deposit ? "deposit" : "withdrawal";
        amount = e.data.at("amount").get<std::int64_t>();
        balance += deposit ? amount : -amount;
        auto& day = r.days[when.substr(0, 10)];
        if (day.is_null()) {
          day = json{{"day", when.substr(0, 10)},
                     {"deposited", 0},
                     {"withdrawn", 0},
                     {"deposits", 0},
                     {"withdrawals", 0}};
        }
        day[deposit ? "deposited" : "withdrawn"] =
            day[deposit ? "deposited" : "withdrawn"].get<std::int64_t>() + amount;
        day[deposit ? "deposits" : "withdrawals"] =
            day[deposit ? "deposits" : "withdrawals"].get<std::int64_t>() + 1;
      } else if (e.type == "bank.AccountClosed") {
        type = "closed";
        account["status"] = "closed";
      } else {
        ADD_FAILURE() << "unexpected event type " << e.type;
        continue;
      }
      EXPECT_GE(balance, 0) << "account " << id << " went below zero at version " << e.version;
      account["balance"] = balance;
      account["version"] = e.version;
      history["transactions"].push_back(json{{"version", e.version},
                                             {"type", type},
                                             {"amount", amount},
                                             {"balance", balance},
                                             {"recorded_at", when}});
      ++r.command_ids[e.metadata.value("command_id", "")];
    }
    if (page.empty()) break;
    after = page.back().position;
    r.head = after;
  }
  return r;
}

// GET with ?after=, retried on 504 a bounded number of times (a restarted service takes over
// the killed one's projections only once their leases lapse).
Reply get_after(Api& api, const std::string& path, const annals::Position& head) {
  Reply r;
  for (int attempt = 0; attempt < 6; ++attempt) {
    r = api.get(path + "?after=" + head.to_string());
    if (r.status != 504) return r;
  }
  return r;
}

void expect_read_models_equal(Api& api, const Replay& replay) {
  for (const auto& [id, expected] : replay.accounts) {
    const auto account = get_after(api, "/accounts/" + id, replay.head);
    EXPECT_EQ(account.status, 200) << account.text;
    EXPECT_EQ(account.body, expected) << "balances of " << id;
    const auto history = get_after(api, "/accounts/" + id + "/transactions", replay.head);
    EXPECT_EQ(history.body, replay.transactions.at(id)) << "transactions of " << id;
  }
  json days = json::array();
  for (const auto& [day, row] : replay.days) days.push_back(row);
  const auto totals = get_after(api, "/totals/daily", replay.head);
  EXPECT_EQ(totals.body, (json{{"days", days}})) << "daily totals";
}

}  // namespace

TEST(BankServicePostgresTest, KillNineUnderLoadLeavesReadModelsEqualToTheLog) {
  constexpr int kAccounts = 16;
  constexpr int kThreads = 8;
  constexpr int kResponsesBeforeKill = 300;
  constexpr int kRounds = 3;

  auto service = std::make_unique<ServiceProcess>(service_args());
  ASSERT_TRUE(service->ready());
  std::vector<std::string> ids;
  {
    Api api(service->port());
    for (int i = 0; i < kAccounts; ++i) {
      ids.push_back("load-" + random_suffix());
      ASSERT_EQ(api.post("/accounts", json{{"account_id", ids.back()}, {"owner", "Load"}}).status,
                201);
      ASSERT_EQ(api.post("/accounts/" + ids.back() + "/deposit", json{{"amount", 10'000}}).status,
                200);
    }
  }

  struct Sent {
    std::string path;
    json body;
  };
  std::vector<Sent> acknowledged;  // 200: must be in the log
  std::vector<std::string> unexpected;
  annals::Position last_acknowledged;
  const auto acknowledge = [&](const Sent& sent, const Reply& r) {
    acknowledged.push_back(sent);
    last_acknowledged =
        std::max(last_acknowledged, annals::Position::parse(r.body["position"].get<std::string>()));
  };

  // Each round: 8 clients send deposits and withdrawals until 300 answers came, then the
  // service is killed with SIGKILL (mid-batch for its projections, with requests in flight)
  // and started again; the requests that got no answer are re-sent with the same command ids
  // (at most once in the log, whatever happened to the first try).
  for (int round = 0; round < kRounds; ++round) {
    std::mutex mutex;
    std::condition_variable progress;
    int responses = 0;
    std::vector<Sent> unknown;  // no answer: in the log or not
    std::vector<std::thread> clients;
    const int port = service->port();
    for (int t = 0; t < kThreads; ++t) {
      clients.emplace_back([&, t] {
        Api api(port);
        std::mt19937 rng(static_cast<unsigned>(round * kThreads + t) * 7919u + 17u);
        for (int n = 0;; ++n) {
          const auto& id = ids[rng() % ids.size()];
          const bool deposit = rng() % 5 < 3;
          const Sent sent{
              "/accounts/" + id + (deposit ? "/deposit" : "/withdraw"),
              json{{"amount", 1 + static_cast<int>(rng() % 2000)},
                   {"command_id", "load-" + std::to_string(round) + "-" + std::to_string(t) + "-" +
                                      std::to_string(n) + "-" + random_suffix()}}};
          const auto r = api.post(sent.path, sent.body);
          std::lock_guard lock(mutex);
          if (r.status == 0) {
            unknown.push_back(sent);
            return;  // the service is gone
          }
          if (r.status == 200) {
            acknowledge(sent, r);
          } else if (r.status != 422 && r.status != 409) {
            unexpected.push_back(std::to_string(r.status) + " " + r.text);
          }
          ++responses;
          progress.notify_all();
        }
      });
    }
    {
      std::unique_lock lock(mutex);
      progress.wait(lock, [&] { return responses >= kResponsesBeforeKill; });
    }
    EXPECT_EQ(service->stop(SIGKILL), 128 + SIGKILL);
    for (auto& c : clients) c.join();
    EXPECT_EQ(unknown.size(), static_cast<std::size_t>(kThreads));

    service = std::make_unique<ServiceProcess>(service_args());
    ASSERT_TRUE(service->ready());
    Api api(service->port());
    for (const auto& sent : unknown) {
      const auto r = api.post(sent.path, sent.body);
      EXPECT_TRUE(r.status == 200 || r.status == 422) << r.status << " " << r.text;
      if (r.status == 200) acknowledge(sent, r);
    }
  }
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  Api api(service->port());

  const Replay replay = replay_the_log(annals::testing::test_database_url(), last_acknowledged);
  for (const auto& sent : acknowledged) {
    EXPECT_EQ(replay.command_ids.count(sent.body["command_id"]), 1u)
        << "acknowledged command missing from the log: " << sent.body;
  }
  for (const auto& [command_id, events] : replay.command_ids) {
    EXPECT_EQ(events, 1) << "command " << command_id << " wrote " << events << " events";
  }
  for (const auto& id : ids) EXPECT_EQ(replay.accounts.count(id), 1u) << id;
  expect_read_models_equal(api, replay);
  EXPECT_EQ(service->stop(SIGTERM), 0);
}

TEST(BankServicePostgresTest, ReadModelsRunInASeparateProjector) {
  ChildProcess projector(
      BANK_PROJECTOR_PATH,
      {"--db", annals::testing::test_roles().writer_url, "--lease-ttl-ms", "1000"},
      "projecting as ");
  ASSERT_TRUE(projector.ready());
  auto args = service_args();
  args.push_back("--no-projections");
  ServiceProcess service(args);
  ASSERT_TRUE(service.ready());
  Api api(service.port());

  const std::string id = "proj-" + random_suffix();
  ASSERT_EQ(api.post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}).status, 201);
  ASSERT_EQ(api.post("/accounts/" + id + "/deposit", json{{"amount", 300}}).status, 200);
  const auto last = api.post("/accounts/" + id + "/withdraw", json{{"amount", 100}});
  ASSERT_EQ(last.status, 200);
  // Read-your-writes across processes: the service waits on the projector's checkpoints.
  const auto read =
      api.get("/accounts/" + id + "?after=" + last.body["position"].get<std::string>());
  ASSERT_EQ(read.status, 200) << read.text;
  EXPECT_EQ(read.body, (json{{"account_id", id},
                             {"owner", "Ada"},
                             {"balance", 200},
                             {"version", 3},
                             {"status", "open"}}));
  const auto health = api.get("/health");
  ASSERT_EQ(health.status, 200) << health.text;
  EXPECT_EQ(health.body["projections"].size(), 3u) << health.text;

  const Replay replay =
      replay_the_log(annals::testing::test_database_url(),
                     annals::Position::parse(last.body["position"].get<std::string>()));
  expect_read_models_equal(api, replay);

  EXPECT_EQ(service.stop(SIGTERM), 0);
  EXPECT_EQ(projector.stop(SIGTERM), 0);
}

TEST(BankServicePostgresTest, ARestartedServiceContinuesWhereItStopped) {
  std::string id = "restart-" + random_suffix();
  std::string position;
  {
    ServiceProcess service(service_args());
    ASSERT_TRUE(service.ready());
    Api api(service.port());
    ASSERT_EQ(api.post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}).status, 201);
    const auto r =
        api.post("/accounts/" + id + "/deposit", json{{"amount", 42}, {"command_id", "r1"}});
    ASSERT_EQ(r.status, 200);
    position = r.body["position"];
    ASSERT_EQ(api.get("/accounts/" + id + "?after=" + position).status, 200);
    EXPECT_EQ(service.stop(SIGTERM), 0);
  }
  ServiceProcess service(service_args());
  ASSERT_TRUE(service.ready());
  Api api(service.port());
  // The re-send is recognised across the restart (the bus's cache is gone; the log is not).
  const auto again =
      api.post("/accounts/" + id + "/deposit", json{{"amount", 42}, {"command_id", "r1"}});
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body["position"], position);
  const auto next = api.post("/accounts/" + id + "/deposit", json{{"amount", 8}});
  ASSERT_EQ(next.status, 200);
  EXPECT_EQ(next.body["version"], 3);
  const auto read =
      api.get("/accounts/" + id + "?after=" + next.body["position"].get<std::string>());
  EXPECT_EQ(read.body["balance"], 50) << read.text;
  EXPECT_EQ(service.stop(SIGTERM), 0);
}

TEST(BankServicePostgresTest, CheckSnapshotsReportsAnEditedSnapshotAndCommandsUseTheTrueState) {
  // A snapshot is a cache, never a source of truth.
  const std::string id = "snap-" + random_suffix();
  const std::string stream = "account-" + id;
  {
    ServiceProcess service(service_args());
    ASSERT_TRUE(service.ready());
    Api api(service.port());
    ASSERT_EQ(api.post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}).status, 201);
    for (int i = 0; i < 99; ++i) {  // the bank snapshots every 100 events
      ASSERT_EQ(api.post("/accounts/" + id + "/deposit", json{{"amount", 1}}).status, 200);
    }
    EXPECT_EQ(service.stop(SIGTERM), 0);
  }
  const auto check = [&stream] {
    // The check lists accounts via read_all, which shows only settled events (a writing
    // transaction still running anywhere in the cluster holds it back: decision 5): wait first.
    auto store = annals::postgres::make_postgres_event_store(
        {.connection_string = annals::testing::test_database_url()});
    const auto last = store->read_stream(annals::StreamId(stream)).back().position;
    const auto signal = store->watch();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      const auto token = signal->observe();
      if (!(store->head_position() < last)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the log did not settle";
        break;
      }
      signal->wait(token, std::chrono::milliseconds(200));
    }
    return annals::testing::run_process(
        {BANK_SERVICE_PATH, "--db", annals::testing::test_database_url(), "--check-snapshots"});
  };
  const auto clean = check();
  EXPECT_EQ(clean.exit_code, 0) << clean;
  EXPECT_NE(clean.out.find(": 0 mismatches"), std::string::npos) << clean;
  {
    pqxx::connection c(annals::testing::test_database_url());  // the database superuser
    pqxx::nontransaction tx(c);
    const auto edited = tx.exec_params(
        "UPDATE annals.snapshots SET state = jsonb_set(state, '{balance}', '1000000')"
        " WHERE stream_id = $1 AND stream_version = 100",
        stream);
    ASSERT_EQ(edited.affected_rows(), 1u);
  }
  const auto found = check();
  EXPECT_EQ(found.exit_code, 6) << found;
  EXPECT_NE(found.out.find("MISMATCH " + stream +
                           " at version 100: balance: snapshot 1000000, events 99 (loading "
                           "ignores it: state-edited)"),
            std::string::npos)
      << found;

  ServiceProcess service(service_args());
  ASSERT_TRUE(service.ready());
  Api api(service.port());
  // The edited balance would allow it; the true one (99) does not.
  expect_error(api.post("/accounts/" + id + "/withdraw", json{{"amount", 500}}), 422);
  const auto metrics = api.get("/metrics");
  EXPECT_NE(metrics.text.find("annals_snapshots_ignored_total{reason=\"state-edited\"} 1\n"),
            std::string::npos)
      << metrics.text;
  EXPECT_EQ(api.post("/accounts/" + id + "/withdraw", json{{"amount", 9}}).status, 200);
  const auto replaced = check();  // the save after the withdrawal replaced the bad snapshot
  EXPECT_EQ(replaced.exit_code, 0) << replaced;

  // A wrong snapshot that the store cannot tell from a good one (saved through the store, as a
  // buggy release would): the check still reports it, and /history never starts from it.
  {
    pqxx::connection c(annals::testing::test_database_url());
    pqxx::nontransaction tx(c);
    auto state = json::parse(tx.exec_params1("SELECT state::text FROM annals.snapshots"
                                             " WHERE stream_id = $1",
                                             stream)[0]
                                 .as<std::string>());
    state["balance"] = 1'000'000;
    auto snapshots = annals::postgres::make_postgres_snapshot_store(
        {.connection_string = annals::testing::test_database_url()});
    snapshots->save({.stream_id = annals::StreamId(stream),
                     .version = 101,
                     .schema_version = 1,
                     .state = state});
  }
  const auto trusted = check();
  EXPECT_EQ(trusted.exit_code, 6) << trusted;
  EXPECT_NE(trusted.out.find("MISMATCH " + stream +
                             " at version 101: balance: snapshot 1000000, events 90 (loading "
                             "would use it)"),
            std::string::npos)
      << trusted;
  EXPECT_EQ(api.get("/accounts/" + id + "/history").body["balance"], 90);
  EXPECT_EQ(api.get("/accounts/" + id + "/history?version=101").body["balance"], 90);
  EXPECT_EQ(service.stop(SIGTERM), 0);
}

// The service's advice when the store goes away is true to the request: with the
// connection cut after the deposit committed and every reconnect refused (a TCP proxy between
// the service and PostgreSQL), a request without a command_id is told that sending it again
// could apply it twice, never to "retry with the same command_id"; one with a command_id is
// told to retry with it, and that retry, once the store is back, returns the original result.
TEST(BankServicePostgresTest, AnUnknownOutcomeAdvisesOnlyWhatIsSafeForTheRequest) {
  annals::testing::TcpProxy proxy(annals::testing::test_database_url());
  // Without projections, nothing but the commands talks to the database through the proxy.
  ServiceProcess service({"--db", proxy.url(), "--port", "0", "--no-projections"});
  ASSERT_TRUE(service.ready());
  Api api(service.port());
  const std::string id = "doubt-" + random_suffix();
  ASSERT_EQ(api.post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}).status, 201);

  // No command_id. The cut fires on the account id, which only the deposit's append carries
  // (the bus has the account cached since it opened it, so it reads nothing first).
  proxy.cut_on_request(id, annals::testing::TcpProxy::Cut::kAfterServerReplies);
  const auto blind = api.post("/accounts/" + id + "/deposit", json{{"amount", 5}});
  EXPECT_EQ(blind.status, 503) << blind.text;
  const auto blind_error = blind.body.value("error", "");
  EXPECT_EQ(blind_error.find("retry with the same command_id"), std::string::npos) << blind_error;
  EXPECT_NE(blind_error.find("had no command_id"), std::string::npos) << blind_error;
  EXPECT_EQ(proxy.cuts(), 1U);

  // With a command_id.
  proxy.heal();
  proxy.cut_on_request(id, annals::testing::TcpProxy::Cut::kAfterServerReplies);
  const json body{{"amount", 7}, {"command_id", "doubt-" + id}};
  const auto named = api.post("/accounts/" + id + "/deposit", body);
  EXPECT_EQ(named.status, 503) << named.text;
  EXPECT_NE(named.body.value("error", "").find("retry with the same command_id"), std::string::npos)
      << named.text;

  proxy.heal();
  const auto retried = api.post("/accounts/" + id + "/deposit", body);
  ASSERT_EQ(retried.status, 200) << retried.text;
  EXPECT_EQ(retried.body["version"], 3) << retried.text;
  // Both deposits committed before their replies were lost, each exactly once.
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = annals::testing::test_database_url()});
  const auto events = store->read_stream(annals::StreamId("account-" + id));
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[1].data, (json{{"amount", 5}}));
  EXPECT_EQ(events[2].data, (json{{"amount", 7}}));
  EXPECT_EQ(service.stop(SIGTERM), 0);
}

// --- A held transaction: positions above the settled head ---------------------------------

// Holds a transaction with an id open on the test database: every event committed after it is
// above head_position() (the log's settled head) until it ends, yet committed, and its
// position already returned to the client.
class HeldTransaction {
 public:
  HeldTransaction() : connection_(annals::testing::test_database_url()), tx_(connection_) {
    tx_.exec("SELECT pg_current_xact_id()");
  }
  void release() { tx_.abort(); }

 private:
  pqxx::connection connection_;
  pqxx::work tx_;
};

// A position a command has just returned is never refused, even above the settled head: the
// read waits (here into its 1 s timeout, while the older transaction is open) and succeeds
// once the log settles.
TEST(BankServicePostgresTest, AFreshPositionAboveTheSettledHeadWaitsInsteadOfBeingRefused) {
  ServiceProcess service(with_args(service_args(), {"--read-timeout-ms", "1000"}));
  ASSERT_TRUE(service.ready());
  Api api(service.port());
  const std::string id = "fresh-" + random_suffix();
  ASSERT_EQ(api.post("/accounts", json{{"account_id", id}, {"owner", "Ada"}}).status, 201);
  HeldTransaction older;
  const auto deposited = api.post("/accounts/" + id + "/deposit", json{{"amount", 5}});
  ASSERT_EQ(deposited.status, 200) << deposited.text;
  const std::string position = deposited.body["position"];
  const std::string head = api.get("/health").body.value("head", "");
  EXPECT_LT(annals::Position::parse(head), annals::Position::parse(position))
      << "the held transaction should keep the deposit above the settled head";

  expect_error(api.get("/accounts/" + id + "?after=" + position), 504, "while unsettled");
  older.release();
  // Each try waits up to 1 s; settling can take longer when other transactions of the cluster
  // (other tests' databases) are open, hence a bounded number of tries.
  Reply read;
  for (int attempt = 0; attempt < 30; ++attempt) {
    read = api.get("/accounts/" + id + "?after=" + position);
    if (read.status != 504) break;
  }
  ASSERT_EQ(read.status, 200) << read.text;
  EXPECT_EQ(read.body["balance"], 5);
  EXPECT_EQ(service.stop(SIGTERM), 0);
}

// --- The bounded worker queue --------------------------------------------------------------

// One HTTP/1.1 request with "Connection: close" on its own connection, sent at once; the answer
// is read later. Connections reach the server in the order of the constructors.
class RawRequest {
 public:
  RawRequest(int port, const std::string& target) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      ADD_FAILURE() << "connect: " << std::strerror(errno);
      return;
    }
    const timeval limit{.tv_sec = 60, .tv_usec = 0};  // an answer that does not come fails
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    const std::string request =
        "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    EXPECT_EQ(send(fd_, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
  }
  RawRequest(const RawRequest&) = delete;
  RawRequest& operator=(const RawRequest&) = delete;
  ~RawRequest() { close(fd_); }

  /// The whole response, read until the server closes the connection (at most 60 s).
  std::string response() {
    std::string out;
    char buffer[4096];
    for (;;) {
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fd_;
};

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

json body_of(const std::string& response) {
  const auto start = response.find("\r\n\r\n");
  if (start == std::string::npos) return nullptr;
  return json::parse(response.substr(start + 4), nullptr, false);
}

// Two workers, room for one waiting connection: with both workers parked on reads that wait
// for a position (the held transaction keeps it from settling) and one request waiting, the
// next request gets 503 with a JSON error and Retry-After at once. Released, every accepted
// request is served. The account is written straight to the store, so that no earlier HTTP
// connection still holds a slot when the four connections arrive.
TEST(BankServicePostgresTest, AFullWorkerQueueAnswers503AtOnceAndServesEveryAcceptedRequest) {
  ServiceProcess service(with_args(service_args(), {"--threads", "2", "--max-queued-requests", "1",
                                                    "--read-timeout-ms", "600000"}));
  ASSERT_TRUE(service.ready());
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = annals::testing::test_database_url()});
  const std::string id = "queue-" + random_suffix();
  HeldTransaction older;
  const auto written =
      store->append(annals::StreamId("account-" + id), annals::ExpectedVersion::no_stream(),
                    {{.id = std::nullopt,
                      .type = "bank.AccountOpened",
                      .schema_version = 1,
                      .data = json{{"owner", "Ada"}},
                      .metadata = json::object()},
                     {.id = std::nullopt,
                      .type = "bank.MoneyDeposited",
                      .schema_version = 1,
                      .data = json{{"amount", 5}},
                      .metadata = json::object()}});
  const std::string read = "/accounts/" + id + "?after=" + written.position.to_string();

  RawRequest parked_1(service.port(), read);
  RawRequest parked_2(service.port(), read);
  RawRequest waiting(service.port(), "/health");
  RawRequest refused(service.port(), "/health");

  const std::string refusal = refused.response();
  EXPECT_EQ(status_of(refusal), 503) << refusal;
  EXPECT_NE(refusal.find("Retry-After: 1\r\n"), std::string::npos) << refusal;
  const json error = body_of(refusal);
  ASSERT_TRUE(error.is_object()) << refusal;
  EXPECT_NE(error.value("error", "").find("2 workers are busy and 1 requests are waiting"),
            std::string::npos)
      << refusal;

  older.release();
  for (RawRequest* parked : {&parked_1, &parked_2}) {
    const std::string answer = parked->response();
    EXPECT_EQ(status_of(answer), 200) << answer;
    EXPECT_EQ(body_of(answer).value("balance", -1), 5) << answer;
  }
  const std::string health = waiting.response();
  EXPECT_EQ(status_of(health), 200) << health;
  EXPECT_EQ(service.stop(SIGTERM), 0);
}

// A connection that is opened and then neither sends nor reads.
class SilentClient {
 public:
  explicit SilentClient(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      ADD_FAILURE() << "connect: " << std::strerror(errno);
    }
  }
  SilentClient(const SilentClient&) = delete;
  SilentClient& operator=(const SilentClient&) = delete;
  ~SilentClient() { close(fd_); }

 private:
  int fd_;
};

// Refusals do not wait on each other. With the one worker parked and the one queue place taken,
// a client that connects and never sends nor reads is refused first, then one that sends its
// request and never reads; five more refused requests still get their 503 at once. (A single
// overflow thread read each refused request in turn, so the silent client held every later
// refusal for httplib's read timeout, 5 s.) /metrics counts the six 503s; the silent client,
// which sent no request, got none.
TEST(BankServicePostgresTest, AClientThatNeverSendsNorReadsCannotDelayOtherRefusals) {
  using std::chrono::steady_clock;
  ServiceProcess service(with_args(service_args(), {"--threads", "1", "--max-queued-requests", "1",
                                                    "--read-timeout-ms", "600000"}));
  ASSERT_TRUE(service.ready());
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = annals::testing::test_database_url()});
  const std::string id = "refusals-" + random_suffix();
  HeldTransaction older;
  const auto written =
      store->append(annals::StreamId("account-" + id), annals::ExpectedVersion::no_stream(),
                    {{.id = std::nullopt,
                      .type = "bank.AccountOpened",
                      .schema_version = 1,
                      .data = json{{"owner", "Ada"}},
                      .metadata = json::object()}});
  RawRequest parked(service.port(), "/accounts/" + id + "?after=" + written.position.to_string());
  RawRequest waiting(service.port(), "/health");
  auto silent = std::make_unique<SilentClient>(service.port());
  RawRequest never_read(service.port(), "/health");

  const auto started = steady_clock::now();
  std::vector<std::unique_ptr<RawRequest>> refused;
  for (int i = 0; i < 5; ++i) {
    refused.push_back(std::make_unique<RawRequest>(service.port(), "/health"));
  }
  for (const auto& request : refused) {
    const std::string answer = request->response();
    EXPECT_EQ(status_of(answer), 503) << answer;
    EXPECT_NE(body_of(answer)
                  .value("error", "")
                  .find("1 workers are busy and 1 requests are "
                        "waiting"),
              std::string::npos)
        << answer;
  }
  const auto took = steady_clock::now() - started;
  // Milliseconds on an idle machine; the silent client used to hold them for 5 s.
  EXPECT_LT(took, std::chrono::seconds(2))
      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";

  older.release();
  EXPECT_EQ(status_of(parked.response()), 200);
  EXPECT_EQ(status_of(waiting.response()), 200);
  const auto metrics = Api(service.port()).get("/metrics");
  EXPECT_NE(metrics.text.find("# TYPE bank_http_requests_rejected_total counter\n"
                              "bank_http_requests_rejected_total 6\n"),
            std::string::npos)
      << metrics.text;
  EXPECT_EQ(status_of(never_read.response()), 503);
  silent.reset();  // its overflow thread would otherwise wait out the read timeout at shutdown
  EXPECT_EQ(service.stop(SIGTERM), 0);
}

}  // namespace bank_test
