// The fault-injection suite: a multi-writer load (client-chosen event ids, every failed append
// re-sent with the same ids until acknowledged), a subscription and a read-model projection
// runner (projection_test_runner processes) over a PostgreSQL cluster owned by the test,
// while one kind of fault hits them:
//   PostgresRestart          pg_ctl stop -m immediate, 5 s down, start again
//   TerminatedBackends       pg_terminate_backend of random client backends every 200-400 ms
//   RunnerKilledMidBatch     SIGKILL of the owning runner inside a batch, three times; a
//                            standby takes over (after the 2 s lease, or at once with takeover)
//   NetworkCut               every connection cut by a TCP proxy, new ones refused for 3 s,
//                            three times
//   BlackHole                the proxy forwards nothing and closes nothing for 5 s, twice
// Afterwards (fault_checks.hpp): every acknowledged append stored exactly once where its
// result says, stream versions contiguous, every OutcomeUnknownError resolved by the re-send,
// the subscription delivered the log exactly once in order, and the read model equals a fresh
// computation from the log. Each test prints one summary line ("faults: <fault>: ...").
//
// Each test runs in its own process with its own cluster (tests/support/private_cluster.hpp),
// never the shared one. Waiting is bounded polling with deadlines; the only sleeps are a
// fault's own duration (how long the server stays down, how long the proxy refuses).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "annals/postgres/postgres_event_store.hpp"
#include "child_process.hpp"
#include "eventually.hpp"
#include "fault_checks.hpp"
#include "fault_load.hpp"
#include "private_cluster.hpp"
#include "recorded_subscription.hpp"
#include "tcp_proxy.hpp"

namespace {

using annals::testing::eventually;

using annals::EventStore;
using annals::Position;
using annals::faults::RecordedSubscription;
using annals::faults::with_commas;
using annals::faults::WriteLoad;
using annals::testing::ChildProcess;
using annals::testing::PrivateCluster;
using annals::testing::TcpProxy;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::uint64_t seed() {
  const char* env = std::getenv("ANNALS_TEST_SEED");
  const std::uint64_t s = env != nullptr && *env != '\0' ? std::stoull(env) : 20261206;
  std::cerr << "seed " << s << " (set ANNALS_TEST_SEED to replay another)\n";
  return s;
}

std::int64_t ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

std::string seconds(std::int64_t ms) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000.0 << " s";
  return out.str();
}

// The per-call deadline of the black-hole test's stores (the default is 40 s).
constexpr auto kCallTimeout = 2000ms;

void short_timeouts(annals::postgres::PostgresEventStoreOptions& options) {
  options.call_timeout = kCallTimeout;
  options.acquire_timeout = kCallTimeout;
  options.read_statement_timeout = 1000ms;
  options.connection_timeouts.connect_timeout = 2s;
}

// The lease of the test's runners: short, so that a killed owner's lease expires soon when
// the runner cannot tell at once that its owner died.
constexpr const char* kLeaseTtlMs = "2000";

class FaultsTest : public ::testing::Test {
 protected:
  FaultsTest() : rng_(seed()) {}

  // Changes the options of the writers' and the subscription's stores.
  using StoreTuning = std::function<void(annals::postgres::PostgresEventStoreOptions&)>;

  // Starts the load, the subscription and a runner over `url` (the cluster's, or a proxy's).
  void start_load(const std::string& url, std::vector<std::string> runner_extra = {},
                  const StoreTuning& tune = {}) {
    client_url_ = url;
    annals::postgres::PostgresEventStoreOptions writer_options{.connection_string = url,
                                                               .pool_size = 8};
    annals::postgres::PostgresEventStoreOptions subscriber_options{.connection_string = url,
                                                                   .pool_size = 2};
    if (tune) {
      tune(writer_options);
      tune(subscriber_options);
    }
    writer_store_ = annals::postgres::make_postgres_event_store(writer_options);
    subscriber_store_ = annals::postgres::make_postgres_event_store(subscriber_options);
    runners_.push_back(start_runner("runner-0", std::move(runner_extra)));
    ASSERT_TRUE(runners_.back()->wait_for_line("owner acquired", 60s)) << runners_.back()->out();
    subscription_ = std::make_unique<RecordedSubscription>(*subscriber_store_);
    load_ = std::make_unique<WriteLoad>(*writer_store_,
                                        annals::faults::WriteLoadOptions{.seed = rng_()});
    load_->start();
  }

  std::unique_ptr<ChildProcess> start_runner(const std::string& owner,
                                             std::vector<std::string> extra = {}) {
    std::vector<std::string> args{PROJECTION_TEST_RUNNER_PATH,
                                  "--db",
                                  client_url_,
                                  "--owner",
                                  owner,
                                  "--batch-size",
                                  "50",
                                  "--lease-ttl-ms",
                                  kLeaseTtlMs,
                                  "--acquire-interval-ms",
                                  "200"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<ChildProcess>(std::move(args), owner);
  }

  // Waits until every writer has had `appends` more appends acknowledged.
  [[nodiscard]] bool writers_progress(std::size_t appends, std::chrono::milliseconds timeout) {
    const auto target = load_->slowest_writer_appends() + appends;
    return eventually([&] { return load_->slowest_writer_appends() >= target; }, timeout);
  }

  // Stops the load once every writer made progress after the last fault, checks everything
  // and prints the summary line.
  void finish_and_check(const std::string& fault, const std::string& injected) {
    ASSERT_TRUE(writers_progress(20, 90s)) << "the writers did not resume after the faults";
    load_->stop();
    ASSERT_TRUE(load_->errors().empty()) << load_->errors().front();
    const auto acknowledged = load_->acknowledged();
    Position last;
    for (const auto& a : acknowledged) last = std::max(last, a.result.position);

    auto checker =
        annals::postgres::make_postgres_event_store({.connection_string = cluster_.url()});
    const auto log = annals::faults::log_through(*checker, last, 60s);
    const auto check = annals::faults::check_log(log, acknowledged);
    for (const auto& problem : check.problems) ADD_FAILURE() << problem;
    EXPECT_EQ(check.lost, 0U);
    EXPECT_EQ(check.duplicated, 0U);
    EXPECT_EQ(check.gapped_streams, 0U);
    EXPECT_EQ(check.wrong_results, 0U);
    EXPECT_EQ(check.stored_events, check.acknowledged_events);
    EXPECT_EQ(check.outcome_unknown_resolved, check.outcome_unknown);

    check_subscription(log);
    check_read_model(log);

    const auto line = summary(fault, injected, check);
    std::cout << line << std::endl;
    RecordProperty("summary", line);
  }

  // "faults: <fault>: N events, <faults injected>, N retries, ..., N lost, N duplicated".
  std::string summary(const std::string& fault, const std::string& injected,
                      const annals::faults::LogCheck& check) const {
    const auto n = [](std::size_t v) { return with_commas(static_cast<std::int64_t>(v)); };
    return "faults: " + fault + ": " + n(check.acknowledged_events) + " events, " + injected +
           ", " + n(load_->retries()) + " retries, " + n(check.outcome_unknown) +
           " outcome unknown (" + n(check.outcome_unknown_resolved) +
           " resolved by the re-send), longest stall " +
           with_commas(load_->longest_stall().count()) + " ms (longest failed attempt " +
           with_commas(load_->longest_failed_attempt().count()) + " ms), " + n(check.lost) +
           " lost, " + n(check.duplicated) + " duplicated, subscription restarts " +
           n(subscription_->restarts());
  }

  void check_subscription(const std::vector<annals::RecordedEvent>& log) {
    ASSERT_TRUE(subscription_->wait_for(log.back().position, 60s))
        << "the subscription did not deliver up to the end of the log"
        << (subscription_->failure() ? ": " + *subscription_->failure() : std::string());
    const auto delivery = annals::faults::check_deliveries(log, subscription_->delivered());
    EXPECT_EQ(delivery.missing, 0U);
    EXPECT_EQ(delivery.repeated, 0U);
    EXPECT_TRUE(delivery.in_log_order)
        << delivery.delivered << " delivered, log has " << log.size();
    EXPECT_EQ(subscription_->restarts(), 0U)
        << "the subscription stopped on an UnavailableError instead of reconnecting";
  }

  void check_read_model(const std::vector<annals::RecordedEvent>& log) {
    const auto head = log.back().position;
    annals::faults::StoredSums stored;
    ASSERT_TRUE(eventually(
        [&] {
          stored = annals::faults::read_sums(cluster_.url());
          return stored.checkpoint >= head;
        },
        120s))
        << "the runner did not catch up: checkpoint " << stored.checkpoint.to_string() << ", head "
        << head.to_string();
    EXPECT_EQ(stored.checkpoint, head);
    EXPECT_EQ(stored.model, annals::faults::fold(log));
  }

  std::mt19937_64 rng_;
  PrivateCluster cluster_;
  std::string client_url_;
  std::unique_ptr<EventStore> writer_store_;
  std::unique_ptr<EventStore> subscriber_store_;
  std::vector<std::unique_ptr<ChildProcess>> runners_;
  std::unique_ptr<RecordedSubscription> subscription_;
  std::unique_ptr<WriteLoad> load_;
};

// (a) The server stops at once (every backend killed, no checkpoint) and stays down 5 s.
TEST_F(FaultsTest, PostgresRestart) {
  ASSERT_NO_FATAL_FAILURE(start_load(cluster_.url()));
  ASSERT_TRUE(writers_progress(30, 60s));
  const auto stopping_at = Clock::now();
  cluster_.stop_immediate();
  const auto stop_ms = ms_since(stopping_at);
  const auto down_at = Clock::now();
  std::this_thread::sleep_for(5s);  // the fault: the server stays down
  const auto down_ms = ms_since(down_at);
  const auto starting_at = Clock::now();
  cluster_.start();  // returns once crash recovery is over and connections are accepted
  const auto start_ms = ms_since(starting_at);
  EXPECT_GT(load_->retries(), 0U) << "the restart did not reach the writers";
  EXPECT_TRUE(runners_.front()->wait_for_line("state reconnecting", 30s))
      << runners_.front()->out();
  finish_and_check("pg-restart", "1 restart (stop " + seconds(stop_ms) + ", " + seconds(down_ms) +
                                     " down, start with crash recovery " + seconds(start_ms) + ")");
}

// (b) Random client backends of the database are terminated every 200-400 ms for 15 s:
// writers', the subscription's and the runner's alike.
TEST_F(FaultsTest, TerminatedBackends) {
  ASSERT_NO_FATAL_FAILURE(start_load(cluster_.url()));
  ASSERT_TRUE(writers_progress(30, 60s));
  pqxx::connection admin(cluster_.admin_url());
  std::size_t terminated = 0;
  const auto until = Clock::now() + 15s;
  while (Clock::now() < until) {
    pqxx::nontransaction tx(admin);
    const auto pids = tx.exec(
        "SELECT pid FROM pg_stat_activity WHERE datname = 'annals'"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()");
    if (!pids.empty()) {
      const auto pid =
          pids[static_cast<pqxx::result::size_type>(rng_() % pids.size())][0].as<int>();
      if (tx.exec_params1("SELECT pg_terminate_backend($1)", pid)[0].as<bool>()) ++terminated;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng_() % 200));  // the cadence
  }
  EXPECT_GE(terminated, 20U);
  finish_and_check("terminate-backend", with_commas(static_cast<std::int64_t>(terminated)) +
                                            " backends terminated over 15.0 s");
}

// (c) The owning runner dies by SIGKILL inside a batch (projection_test_runner raises it in
// its N-th apply, before the batch commits), three times; each time a standby takes over and
// a new standby is started.
TEST_F(FaultsTest, RunnerKilledMidBatch) {
  const auto crash_after = [&] { return std::to_string(60 + rng_() % 240); };
  ASSERT_NO_FATAL_FAILURE(start_load(cluster_.url(), {"--crash-after-events", crash_after()}));
  runners_.push_back(start_runner("runner-1", {"--crash-after-events", crash_after()}));
  ASSERT_TRUE(runners_.back()->wait_for_line("ready", 60s)) << runners_.back()->out();
  constexpr int kKills = 3;
  std::int64_t longest_takeover_ms = 0;
  for (int kill = 0; kill < kKills; ++kill) {
    auto& owner = *runners_[static_cast<std::size_t>(kill)];
    const auto code = owner.wait_for_exit(90s);
    ASSERT_TRUE(code.has_value()) << "runner-" << kill << " never crashed";
    ASSERT_EQ(*code, 128 + SIGKILL);
    ASSERT_TRUE(owner.wait_for_line("crashing", 0ms));
    const auto died_at = *owner.wait_for_line("crashing", 0ms);
    auto& standby = *runners_[static_cast<std::size_t>(kill) + 1];
    const auto acquired = standby.wait_for_line("owner acquired", 60s);
    ASSERT_TRUE(acquired) << standby.out();
    longest_takeover_ms = std::max<std::int64_t>(
        longest_takeover_ms,
        std::chrono::duration_cast<std::chrono::milliseconds>(*acquired - died_at).count());
    // The next standby: it crashes in its turn, except the last, which stays.
    if (kill + 1 == kKills) break;
    std::vector<std::string> extra;
    if (kill + 2 < kKills) extra = {"--crash-after-events", crash_after()};
    runners_.push_back(start_runner("runner-" + std::to_string(kill + 2), extra));
    ASSERT_TRUE(runners_.back()->wait_for_line("ready", 60s)) << runners_.back()->out();
  }
  // Without immediate takeover the standby waits out the lease (2 s) plus its acquire interval.
  EXPECT_LE(longest_takeover_ms, 2000 + 200 + 5000);
  finish_and_check("runner-kill", std::to_string(kKills) +
                                      " runner kills mid-batch (longest takeover " +
                                      with_commas(longest_takeover_ms) + " ms)");
}

// (d) A TCP proxy between every client and the server cuts all connections at once and
// refuses new ones for 3 s, three times. The first and third cut drop the next request of
// any client before the server sees it; the second lets it through and drops the server's
// reply (an append then committed without its writer knowing: OutcomeUnknownError).
TEST_F(FaultsTest, NetworkCut) {
  TcpProxy proxy(cluster_.url());
  ASSERT_NO_FATAL_FAILURE(start_load(proxy.url()));
  ASSERT_TRUE(writers_progress(30, 60s));
  constexpr int kCuts = 3;
  for (int cut = 0; cut < kCuts; ++cut) {
    // An empty pattern matches the next bytes any client sends.
    proxy.cut_on_request(
        "", cut == 1 ? TcpProxy::Cut::kAfterServerReplies : TcpProxy::Cut::kBeforeServer);
    ASSERT_TRUE(eventually([&] { return proxy.cuts() == static_cast<std::size_t>(cut + 1); }, 30s));
    std::this_thread::sleep_for(3s);  // the fault: the network stays cut
    proxy.heal();
    ASSERT_TRUE(writers_progress(10, 90s)) << "the writers did not resume after cut " << cut;
  }
  finish_and_check("network-cut", std::to_string(kCuts) + " cuts (3.0 s each, " +
                                      with_commas(static_cast<std::int64_t>(proxy.refused())) +
                                      " connections refused)");
}

// (e) The TCP proxy stops forwarding in both directions and closes nothing (a hung proxy, a
// black hole), for 5 s, twice. The writers' and the subscription's stores have a 2 s call
// timeout: an append waiting behind the black hole fails within it (OutcomeUnknownError or
// UnavailableError) and is re-sent; nothing hangs. The runner keeps its default timeouts: it
// waits the stall out.
TEST_F(FaultsTest, BlackHole) {
  TcpProxy proxy(cluster_.url());
  ASSERT_NO_FATAL_FAILURE(start_load(proxy.url(), {}, short_timeouts));
  ASSERT_TRUE(writers_progress(30, 60s));
  constexpr int kStalls = 2;
  for (int stall = 0; stall < kStalls; ++stall) {
    const auto retries_before = load_->retries();
    proxy.stall();
    std::this_thread::sleep_for(5s);  // the fault: nothing gets through
    proxy.resume();
    EXPECT_GT(load_->retries(), retries_before) << "stall " << stall << " reached no writer";
    ASSERT_TRUE(writers_progress(10, 90s)) << "the writers did not resume after stall " << stall;
  }
  // Each failed attempt ended within the call timeout (2 s), plus scheduling slack.
  EXPECT_LE(load_->longest_failed_attempt(), kCallTimeout + 3s);
  finish_and_check("black-hole", std::to_string(kStalls) + " stalls (5.0 s each, call timeout " +
                                     seconds(kCallTimeout.count()) + ")");
}

}  // namespace
