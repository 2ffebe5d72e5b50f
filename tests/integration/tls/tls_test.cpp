// TLS: connection strings with sslmode=verify-full work for the event store, the
// snapshot store, a projection runner over the PostgreSQL projection store and the `annals`
// CLI; a wrong CA, a host name the certificate does not name and a client without TLS are
// refused, each with the typed error (UnavailableError, CLI exit 1) naming the problem in
// libpq's words (docs/operations.md#tls).
//
// run_tls_test.sh runs this binary: it makes a CA, an unrelated CA and a server certificate
// (subjectAltName DNS:localhost, IP:127.0.0.1), starts a private cluster of its own with
// `scripts/pg start --tls` (TLS only: hostssl lines, hostnossl rejected) and passes its port
// and the certificates' folder in ANNALS_TLS_PORT and ANNALS_TLS_CERTS. The cluster of the
// other tests never serves TLS.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/runner.hpp"
#include "run_process.hpp"
#include "test_database.hpp"

namespace {

using namespace std::chrono_literals;

// Where run_tls_test.sh put the cluster and the certificates.
struct TlsCluster {
  std::string port;
  std::string certs;  // ca.crt (signed the server's certificate), other-ca.crt (unrelated)
};

const TlsCluster& cluster() {
  static const TlsCluster kCluster = [] {
    const char* port = std::getenv("ANNALS_TLS_PORT");
    const char* certs = std::getenv("ANNALS_TLS_CERTS");
    if (port == nullptr || certs == nullptr || *port == '\0' || *certs == '\0') {
      std::cerr << "\n*** annals_tls_test needs the TLS cluster of run_tls_test.sh: run "
                   "`ctest -L tls`, or tests/integration/tls/run_tls_test.sh WORKDIR "
                   "build/dev/tests/integration/tls/annals_tls_test.\n";
      std::exit(2);
    }
    return TlsCluster{port, certs};
  }();
  return kCluster;
}

std::string ca() { return cluster().certs + "/ca.crt"; }
std::string other_ca() { return cluster().certs + "/other-ca.crt"; }

// A keyword/value connection string to the TLS cluster: `params` adds or overrides keywords
// such as host, hostaddr, sslmode and sslrootcert.
std::string keywords(const std::string& params, const std::string& dbname = "annals") {
  return "port=" + cluster().port + " dbname=" + dbname + " user=annals " + params;
}

// The two forms a user writes, with the CA that signed the server's certificate:
// a host name (the certificate's DNS:localhost) and a URI with an address (IP:127.0.0.1).
std::string verify_full_by_name(const std::string& dbname = "annals") {
  return keywords("host=localhost sslmode=verify-full sslrootcert='" + ca() + "'", dbname);
}
std::string verify_full_by_address(const std::string& dbname = "annals") {
  return "postgresql://annals@127.0.0.1:" + cluster().port + "/" + dbname +
         "?sslmode=verify-full&sslrootcert=" + ca();
}

// verify-full with an unrelated CA, and with a host name the certificate does not name (the
// connection still goes to 127.0.0.1: libpq checks `host` and connects to `hostaddr`).
std::string wrong_ca() {
  return keywords("host=127.0.0.1 sslmode=verify-full sslrootcert='" + other_ca() + "'");
}
std::string wrong_host_name(const std::string& host, const std::string& sslmode = "verify-full") {
  return keywords("host=" + host + " hostaddr=127.0.0.1 sslmode=" + sslmode + " sslrootcert='" +
                  ca() + "'");
}

// The libpq messages these failures carry.
constexpr const char* kUntrustedCertificate = "certificate verify failed";
constexpr const char* kNameMismatch = R"(server certificate for "localhost" (and 1 other name))";

// Runs `call` and expects exactly UnavailableError whose message contains `text`.
template <typename F>
void expect_unavailable(F&& call, const std::string& text, const std::string& context) {
  SCOPED_TRACE(context);
  try {
    static_cast<void>(call());
    ADD_FAILURE() << "no error; expected UnavailableError naming: " << text;
  } catch (const annals::OutcomeUnknownError& e) {
    ADD_FAILURE() << "OutcomeUnknownError, expected UnavailableError: " << e.what();
  } catch (const annals::UnavailableError& e) {
    EXPECT_EQ(e.code(), annals::ErrorCode::kUnavailable);
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected UnavailableError, got " << typeid(e).name() << ": " << e.what();
  }
}

std::vector<annals::NewEvent> deposits(std::initializer_list<int> amounts) {
  std::vector<annals::NewEvent> events;
  for (const int amount : amounts) {
    events.push_back({.id = std::nullopt,
                      .type = "MoneyDeposited",
                      .schema_version = 1,
                      .data = {{"amount", amount}},
                      .metadata = nlohmann::json::object()});
  }
  return events;
}

// The `annals` database of the TLS cluster, migrated once per run over verify-full.
class TlsEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { annals::postgres::migrate(verify_full_by_address()); }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new TlsEnvironment);

// ---- verify-full with the right CA -------------------------------------------------------

TEST(TlsTest, ConnectionsAreEncryptedAndTheServerRefusesPlainOnes) {
  pqxx::connection c(verify_full_by_name());
  pqxx::nontransaction tx(c);
  const auto row = tx.exec1("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  EXPECT_TRUE(row[0].as<bool>());
  EXPECT_EQ(row[1].as<std::string>().rfind("TLS", 0), 0u) << row[1].c_str();

  expect_unavailable(
      [] {
        return annals::postgres::make_postgres_event_store(
            {.connection_string = keywords("host=127.0.0.1 sslmode=disable")});
      },
      "no encryption", "sslmode=disable");
}

TEST(TlsTest, EventStoreAppendsAndReadsWithVerifyFull) {
  for (const auto& url : {verify_full_by_name(), verify_full_by_address()}) {
    SCOPED_TRACE(url);
    auto store = annals::postgres::make_postgres_event_store({.connection_string = url});
    const auto category = "tls" + annals::testing::unique_stream("x").substr(2);
    const annals::StreamId stream(category + "-1");
    const auto appended =
        store->append(stream, annals::ExpectedVersion::no_stream(), deposits({10, 20}));
    EXPECT_EQ(appended.last_version, 2);
    // A single-event append goes through group commit's statement.
    store->append(stream, annals::ExpectedVersion::exact(2), deposits({30}));

    const auto events = store->read_stream(stream);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[2].data, (nlohmann::json{{"amount", 30}}));
    annals::ReadAllOptions all;
    all.filter.category = category;
    EXPECT_EQ(store->read_all(all).size(), 3u);
    EXPECT_EQ(store->stream_version(stream), std::optional<annals::StreamVersion>(3));
  }
}

// Many threads: the pool opens its TLS connections concurrently, and single-event appends are
// sent in groups over them.
TEST(TlsTest, ConcurrentAppendsShareThePoolOfTlsConnections) {
  constexpr int kThreads = 8;
  constexpr int kAppends = 25;
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = verify_full_by_address(), .pool_size = 8});
  const auto category = "tlsc" + annals::testing::unique_stream("x").substr(2);
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      const annals::StreamId stream(category + "-" + std::to_string(t));
      try {
        for (int i = 0; i < kAppends; ++i) {
          store->append(stream, annals::ExpectedVersion::exact(i), deposits({i}));
        }
      } catch (const std::exception& e) {
        std::cerr << "append failed: " << e.what() << "\n";
        ++failures;
      }
    });
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(failures.load(), 0);
  annals::ReadAllOptions all;
  all.filter.category = category;
  EXPECT_EQ(store->read_all(all).size(), static_cast<std::size_t>(kThreads * kAppends));
}

TEST(TlsTest, SnapshotStoreSavesAndLoadsWithVerifyFull) {
  // A snapshot is bound to the event at its version (sql/0006): the stream needs 7 events.
  const annals::StreamId stream(annals::testing::unique_stream("acct"));
  auto store =
      annals::postgres::make_postgres_event_store({.connection_string = verify_full_by_address()});
  store->append(stream, annals::ExpectedVersion::no_stream(),
                std::vector<annals::NewEvent>(7, annals::NewEvent{.type = "Deposited"}));
  auto snapshots = annals::postgres::make_postgres_snapshot_store(
      {.connection_string = verify_full_by_address()});
  const annals::Snapshot snapshot{
      .stream_id = stream, .version = 7, .schema_version = 1, .state = {{"balance", 120}}};
  snapshots->save(snapshot);
  EXPECT_EQ(snapshots->load(snapshot.stream_id), snapshot);
}

// Balances per stream, written by a runner in the same transaction as its checkpoint.
class Balances final : public annals::projections::ReadModelProjection {
 public:
  explicit Balances(std::string category)
      : category_(std::move(category)), table_(category_ + "_balances") {}

  std::string name() const override { return "balances_" + category_; }
  annals::EventFilter filter() const override { return {.category = category_, .event_types = {}}; }
  std::vector<annals::projections::ReadModelMigration> migrations() const override {
    return {{"0001_create", "CREATE TABLE " + table_ +
                                " (stream text PRIMARY KEY, balance bigint NOT NULL DEFAULT 0)"}};
  }
  std::vector<std::string> tables() const override { return {table_}; }
  void handle(const annals::RecordedEvent& e, annals::projections::ReadModel& db) override {
    db.increment(table_, {{"stream", e.stream_id.value()}}, "balance",
                 e.data.at("amount").get<std::int64_t>());
  }
  const std::string& table() const { return table_; }

 private:
  std::string category_;
  std::string table_;
};

TEST(TlsTest, ProjectionRunnerProcessesEventsIntoThePostgresProjectionStoreWithVerifyFull) {
  const auto url = verify_full_by_name();
  auto events = annals::postgres::make_postgres_event_store({.connection_string = url});
  auto store = annals::projections::make_postgres_projection_store({.connection_string = url});
  const auto category = "tlsp" + annals::testing::unique_stream("x").substr(2);
  events->append(annals::StreamId(category + "-a"), annals::ExpectedVersion::any(),
                 deposits({5, 7}));
  auto balances = std::make_shared<Balances>(category);

  annals::projections::ProjectionRunner runner(*events, *store, {.owner = "tls-test"});
  runner.add(balances);
  runner.start();
  // Catch-up, then a live event (the runner's LISTEN connection is a TLS connection too).
  const auto live = events->append(annals::StreamId(category + "-b"),
                                   annals::ExpectedVersion::any(), deposits({100}));
  ASSERT_TRUE(runner.wait_for(balances->name(), live.position, 60s))
      << runner.status(balances->name()).last_error.value_or("no error");
  runner.stop();

  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  const auto rows = tx.exec("SELECT stream, balance FROM " + balances->table() + " ORDER BY 1");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][1].as<std::int64_t>(), 12);
  EXPECT_EQ(rows[1][1].as<std::int64_t>(), 100);
  EXPECT_EQ(store->checkpoint(balances->name()), live.position);
}

// ---- refused: wrong CA, wrong host name ----------------------------------------------------

TEST(TlsTest, WrongCaFailsWithUnavailableErrorNamingTheCertificateProblem) {
  const auto url = wrong_ca();
  expect_unavailable(
      [&] { return annals::postgres::make_postgres_event_store({.connection_string = url}); },
      kUntrustedCertificate, "event store");
  expect_unavailable(
      [&] { return annals::postgres::make_postgres_snapshot_store({.connection_string = url}); },
      kUntrustedCertificate, "snapshot store");
  expect_unavailable(
      [&] {
        return annals::projections::make_postgres_projection_store({.connection_string = url});
      },
      kUntrustedCertificate, "projection store");
  expect_unavailable([&] { return annals::postgres::migrate(url); }, kUntrustedCertificate,
                     "migrate");
  // A CA file that is not there is named too (libpq's default is ~/.postgresql/root.crt).
  expect_unavailable(
      [] {
        return annals::postgres::make_postgres_event_store(
            {.connection_string = keywords("host=127.0.0.1 sslmode=verify-full "
                                           "sslrootcert=/nonexistent/annals-ca.crt")});
      },
      R"(root certificate file "/nonexistent/annals-ca.crt" does not exist)", "missing CA file");
}

TEST(TlsTest, HostNameNotInTheCertificateFailsVerifyFullButNotVerifyCa) {
  for (const std::string host : {"db.example.invalid", "127.0.0.2"}) {
    expect_unavailable(
        [&] {
          return annals::postgres::make_postgres_event_store(
              {.connection_string = wrong_host_name(host)});
        },
        std::string(kNameMismatch) + " does not match host name \"" + host + "\"", host);
  }
  // verify-ca checks the chain only: the same connection succeeds, which is why verify-full
  // is the mode to use.
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = wrong_host_name("db.example.invalid", "verify-ca")});
  EXPECT_EQ(store->read_stream(annals::StreamId(annals::testing::unique_stream("none"))).size(),
            0u);
}

// A TCP listener on 127.0.0.1 that answers each client's SSLRequest with 'N', as a server
// without ssl = on does, and hangs up.
class ServerWithoutTls {
 public:
  ServerWithoutTls() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = 0;  // any free port
    ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    auto* generic = reinterpret_cast<sockaddr*>(&address);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, generic, length) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, generic, &length) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ServerWithoutTls(const ServerWithoutTls&) = delete;
  ServerWithoutTls& operator=(const ServerWithoutTls&) = delete;
  ~ServerWithoutTls() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(fd_);
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

 private:
  void serve() const {
    for (;;) {
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      char request[8];  // length 8, code 80877103
      std::size_t got = 0;
      while (got < sizeof request) {
        const auto n = ::read(client, request + got, sizeof request - got);
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
      if (got == sizeof request) static_cast<void>(::write(client, "N", 1));
      ::close(client);
    }
  }

  int fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST(TlsTest, RequireAgainstAServerWithoutTlsFails) {
  ServerWithoutTls server;
  // gssencmode=disable: libpq would try GSSAPI encryption first if it found Kerberos
  // credentials, and this server speaks neither.
  const auto url = "host=127.0.0.1 port=" + std::to_string(server.port()) +
                   " dbname=annals user=annals gssencmode=disable sslmode=require";
  expect_unavailable(
      [&] { return annals::postgres::make_postgres_event_store({.connection_string = url}); },
      "server does not support SSL, but SSL was required", "sslmode=require");
}

// ---- the CLI -----------------------------------------------------------------------------

#ifdef ANNALS_CLI_PATH

annals::testing::ProcessResult run_annals(std::vector<std::string> args) {
  args.insert(args.begin(), ANNALS_CLI_PATH);
  return annals::testing::run_process(args, "",
                                      annals::testing::environment_without("ANNALS_DATABASE_URL"));
}

// A fresh database on the TLS cluster, so that `annals migrate` has work to do.
std::string fresh_database() {
  auto name = "annals_cli_" + annals::testing::unique_stream("x").substr(2);
  pqxx::connection c(verify_full_by_address());
  pqxx::nontransaction tx(c);
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  return name;
}

TEST(TlsTest, CliMigratesAppendsReadsAndVerifiesWithVerifyFull) {
  const auto db = fresh_database();
  for (const auto& url : {verify_full_by_name(db), verify_full_by_address(db)}) {
    SCOPED_TRACE(url);
    const auto migrated = run_annals({"--db", url, "migrate"});
    EXPECT_EQ(migrated.exit_code, 0) << migrated;
    const auto stream = annals::testing::unique_stream("account");
    const auto appended =
        run_annals({"--db", url, "append", stream, "MoneyDeposited", R"({"amount":5})"});
    ASSERT_EQ(appended.exit_code, 0) << appended;
    EXPECT_EQ(nlohmann::json::parse(appended.out).at("last_version"), 1) << appended;
    const auto read = run_annals({"--db", url, "read", stream});
    ASSERT_EQ(read.exit_code, 0) << read;
    EXPECT_EQ(nlohmann::json::parse(read.out).at("data"), (nlohmann::json{{"amount", 5}}));
    const auto verified = run_annals({"--db", url, "verify"});
    EXPECT_EQ(verified.exit_code, 0) << verified;
    EXPECT_NE(verified.out.find(": ok"), std::string::npos) << verified;
  }
}

// Exit 1 (docs/cli.md: the server is unavailable) and one `annals: ...` line naming the
// problem; nothing on stdout, no password, no crash.
void expect_cli_refused(const std::string& url, const std::string& text) {
  for (const auto& verb :
       std::vector<std::vector<std::string>>{{"migrate"},
                                             {"append", "account-1", "MoneyDeposited", "{}"},
                                             {"read", "account-1"},
                                             {"verify"}}) {
    std::vector<std::string> args{"--db", url};
    args.insert(args.end(), verb.begin(), verb.end());
    const auto r = run_annals(args);
    SCOPED_TRACE(verb[0]);
    EXPECT_EQ(r.exit_code, 1) << r;
    EXPECT_EQ(r.out, "") << r;
    ASSERT_FALSE(r.err.empty()) << r;
    const auto last = r.err.substr(r.err.rfind('\n', r.err.size() - 2) + 1);
    EXPECT_EQ(last.rfind("annals: ", 0), 0u) << r;
    EXPECT_NE(last.find(text), std::string::npos) << r;
    EXPECT_EQ(r.err.find("s3cret-not-logged"), std::string::npos) << r;
    EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r;
  }
}

TEST(TlsTest, CliWithAWrongCaOrHostNameExitsOneNamingTheCertificateProblem) {
  // A password in the connection string must not appear in any message (the cluster trusts
  // every TLS client, so it is never used).
  expect_cli_refused(wrong_ca() + " password=s3cret-not-logged", kUntrustedCertificate);
  expect_cli_refused(wrong_host_name("db.example.invalid") + " password=s3cret-not-logged",
                     kNameMismatch);
}

#endif  // ANNALS_CLI_PATH

}  // namespace
