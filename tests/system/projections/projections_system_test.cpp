// System tests of the projection runner: real runner processes (projection_test_runner) over
// a real PostgreSQL, killed with SIGKILL at seeded points, two at once for failover, a writing
// transaction held open under concurrent writers, and the real `annals` CLI for dead letters
// and rebuilds. After each scenario the read model must equal a fresh computation from the log.
//
// Each test runs in its own process (gtest_discover_tests), so each gets a fresh database
// (annals::testing::test_database_url()). Waiting is bounded polling of a condition (a
// checkpoint in the database, a line on a runner's stdout) with a deadline, never a sleep.
//
// Seeds: ANNALS_TEST_SEED overrides the fixed default; the seed in use is printed, so a failing
// round can be replayed exactly.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/projection_store.hpp"
#include "child_process.hpp"
#include "test_database.hpp"

namespace {

using annals::EventStore;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::RecordedEvent;
using annals::StreamId;
using annals::projections::DeadLetterState;
using annals::projections::ProjectionStore;
using annals::testing::ChildProcess;
using annals::testing::test_database_url;
using namespace std::chrono_literals;

constexpr const char* kProjection = "sums";

std::uint64_t seed() {
  const char* env = std::getenv("ANNALS_TEST_SEED");
  const std::uint64_t s = env != nullptr && *env != '\0' ? std::stoull(env) : 20260404;
  std::cerr << "seed " << s << " (set ANNALS_TEST_SEED to replay another)\n";
  return s;
}

// The read model of projection_test_runner, and the same computed from the log.
struct StreamRow {
  std::int64_t events = 0;
  std::int64_t total = 0;
  std::int64_t last_version = 0;
  friend bool operator==(const StreamRow&, const StreamRow&) = default;
};

struct Model {
  std::map<std::string, StreamRow> streams;
  std::int64_t events = 0;
  std::int64_t hash = 0;
  friend bool operator==(const Model&, const Model&) = default;
};

std::ostream& operator<<(std::ostream& os, const Model& m) {
  os << "{events " << m.events << ", hash " << m.hash << ", " << m.streams.size() << " streams";
  std::size_t shown = 0;
  for (const auto& [stream, row] : m.streams) {
    if (shown++ == 3) {
      os << ", ...";
      break;
    }
    os << ", " << stream << ": " << row.events << "/" << row.total << "/" << row.last_version;
  }
  return os << "}";
}

void fold(Model& model, const RecordedEvent& e) {
  auto& row = model.streams[e.stream_id.value()];
  row.events += 1;
  row.total += e.data.value("amount", std::int64_t{0});
  row.last_version = std::max(row.last_version, e.version);
  model.events += 1;
  model.hash = (model.hash * 1000003 + e.position.sequence()) % 2147483647;
}

// What the projection must hold after applying exactly the events up to `upto`.
Model expected_model(const std::vector<RecordedEvent>& log, Position upto = Position(~0ULL, 0)) {
  Model model;
  for (const auto& e : log) {
    if (e.position > upto) break;
    fold(model, e);
  }
  return model;
}

// One snapshot for all the reads of a check: each statement of a READ COMMITTED transaction
// takes a snapshot of its own, so a batch committing between two of them (say after the
// streams, before the digest) would show a read model no replay can produce.
using Snapshot = pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>;

Model read_model(pqxx::dbtransaction& tx, const std::string& name = kProjection) {
  Model model;
  for (const auto& row :
       tx.exec("SELECT stream, events, total, last_version FROM " + name + "_streams")) {
    model.streams[row[0].as<std::string>()] = {row[1].as<std::int64_t>(), row[2].as<std::int64_t>(),
                                               row[3].as<std::int64_t>()};
  }
  const auto digest = tx.exec("SELECT events, hash FROM " + name + "_digest WHERE id = 1");
  if (!digest.empty()) {
    model.events = digest[0][0].as<std::int64_t>();
    model.hash = digest[0][1].as<std::int64_t>();
  }
  return model;
}

Model read_model(const std::string& name = kProjection) {
  pqxx::connection c(test_database_url());
  Snapshot tx(c);
  return read_model(tx, name);
}

// The stored checkpoint and the read model as one snapshot shows them.
struct CheckpointAndModel {
  Position checkpoint;
  Model model;
};

CheckpointAndModel checkpoint_and_model() {
  pqxx::connection c(test_database_url());
  Snapshot tx(c);
  const auto row = tx.exec_params1(
      "SELECT checkpoint_tx::text, checkpoint_position FROM annals.projections WHERE name = $1",
      kProjection);
  return {Position(row[0].as<std::uint64_t>(), row[1].as<std::int64_t>()), read_model(tx)};
}

std::vector<RecordedEvent> whole_log(EventStore& store) {
  std::vector<RecordedEvent> log;
  annals::ReadAllOptions options;
  options.max_count = 5000;
  while (true) {
    auto page = store.read_all(options);
    if (page.empty()) return log;
    options.after = page.back().position;
    log.insert(log.end(), std::make_move_iterator(page.begin()),
               std::make_move_iterator(page.end()));
  }
}

std::unique_ptr<EventStore> event_store() {
  return annals::postgres::make_postgres_event_store(
      {.connection_string = test_database_url(), .pool_size = 8});
}

std::unique_ptr<ProjectionStore> projection_store() {
  return annals::projections::make_postgres_projection_store(
      {.connection_string = test_database_url(), .pool_size = 2});
}

NewEvent deposit(std::int64_t amount) {
  return NewEvent{.type = "Deposited", .data = {{"amount", amount}}};
}

// Appends `count` events over `streams` streams of category acct, in appends of up to 100.
// Returns the position of the last one.
Position write_log(EventStore& store, std::int64_t count, int streams, std::mt19937_64& rng) {
  std::int64_t written = 0;
  int next = 0;
  Position last;
  while (written < count) {
    const auto n = std::min<std::int64_t>(100, count - written);
    std::vector<NewEvent> events;
    for (std::int64_t i = 0; i < n; ++i)
      events.push_back(deposit(static_cast<std::int64_t>(rng() % 1000)));
    last = store
               .append(StreamId("acct-" + std::to_string(next)), ExpectedVersion::any(),
                       std::move(events))
               .position;
    next = (next + 1) % streams;
    written += n;
  }
  return last;
}

// Bounded polling of a condition with a deadline.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// The whole log once every event up to `last` (an append's position) is readable. read_all
// returns only settled events, and any transaction running anywhere in the cluster (another
// test binary's included) holds them back until it ends.
std::vector<RecordedEvent> log_through(EventStore& store, Position last) {
  std::vector<RecordedEvent> log;
  const bool settled = eventually(
      [&] {
        log = whole_log(store);
        return !log.empty() && log.back().position >= last;
      },
      120s);
  EXPECT_TRUE(settled) << "events up to " << last.to_string() << " did not settle";
  return log;
}

std::vector<std::string> runner_args(const std::string& owner,
                                     const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{PROJECTION_TEST_RUNNER_PATH, "--db", test_database_url(), "--owner",
                                owner};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::unique_ptr<ChildProcess> start_runner(const std::string& owner,
                                           const std::vector<std::string>& extra = {}) {
  return std::make_unique<ChildProcess>(runner_args(owner, extra), owner);
}

// Waits until the stored checkpoint reaches `position` (the runner caught up to it).
bool caught_up(ProjectionStore& store, Position position, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        try {
          return store.checkpoint(kProjection) >= position;
        } catch (const annals::NotFoundError&) {
          return false;  // not registered yet
        }
      },
      timeout);
}

// Kills the owner `a` with SIGKILL once a third of the log is checkpointed, and waits for the
// standby `b` to acquire: `a_token` is the killed owner's fencing token, `takeover` the time
// from the kill to b's "owner acquired" line.
void kill_owner_mid_replay(EventStore& store, ProjectionStore& projections, ChildProcess& a,
                           ChildProcess& b, std::int64_t& a_token,
                           std::chrono::milliseconds& takeover) {
  const auto head = store.head_position();
  ASSERT_TRUE(eventually(
      [&] { return projections.checkpoint(kProjection).sequence() >= head.sequence() / 3; }, 120s));
  a_token = projections.list().front().fencing_token;
  a.kill(SIGKILL);
  const auto killed_at = ChildProcess::Clock::now();
  EXPECT_EQ(a.wait(), 128 + SIGKILL);

  const auto acquired = b.wait_for_line("owner acquired", 20s);
  ASSERT_TRUE(acquired) << b.out();
  takeover = std::chrono::duration_cast<std::chrono::milliseconds>(*acquired - killed_at);
}

void stop_gracefully(ChildProcess& runner) {
  // The runner blocks SIGTERM (to handle it) before it prints "ready"; earlier, SIGTERM would
  // kill it outright.
  ASSERT_TRUE(runner.wait_for_line("ready", 60s)) << runner.out();
  runner.kill(SIGTERM);
  const auto code = runner.wait_for_exit(30s);
  ASSERT_TRUE(code.has_value()) << "runner did not stop after SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(runner.wait_for_line("stopped", 0ms).has_value());
}

// Exactly once: SIGKILL at seeded points of a long replay, 25 rounds, restart each time; after
// every kill the read model equals the log folded up to the stored checkpoint, and at the end
// it equals the whole log.
TEST(ProjectionSystemTest, ExactlyOnceAcrossKillsAtRandomPoints) {
  std::mt19937_64 rng(seed());
  auto store = event_store();
  auto projections = projection_store();
  constexpr std::int64_t kEvents = 24'000;
  constexpr int kRounds = 25;
  constexpr std::int64_t kBatch = 100;
  const auto log = log_through(*store, write_log(*store, kEvents, 150, rng));
  ASSERT_EQ(static_cast<std::int64_t>(log.size()), kEvents);
  const auto head = log.back().position;
  const std::int64_t per_round = kEvents / kRounds;

  int crashed_inside = 0;
  int killed_outside = 0;
  for (int round = 0; round < kRounds; ++round) {
    const bool inside = rng() % 2 == 0;
    std::vector<std::string> extra{"--batch-size", std::to_string(kBatch)};
    // Inside: the runner raises SIGKILL in its N-th apply, before that batch commits (N a
    // multiple of the batch size + 1 dies just after a commit). Outside: the test kills it
    // once the checkpoint passed a random target, wherever the runner then is (applying,
    // committing, renewing its lease).
    const auto n = 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(2 * per_round));
    if (inside) extra.insert(extra.end(), {"--crash-after-events", std::to_string(n)});
    const auto before =
        projections->list().empty() ? Position::start() : projections->checkpoint(kProjection);
    const auto target_sequence = before.sequence() + n;
    auto runner = start_runner("runner-exact", extra);
    ASSERT_TRUE(eventually(
        [&] {
          if (runner->exited()) return true;
          const auto checkpoint = projections->list().empty()
                                      ? Position::start()
                                      : projections->checkpoint(kProjection);
          return checkpoint >= head || (!inside && checkpoint.sequence() >= target_sequence);
        },
        120s))
        << "round " << round << ": no progress";
    runner->kill(SIGKILL);
    EXPECT_EQ(runner->wait(), 128 + SIGKILL) << "round " << round;
    (runner->wait_for_line("crashing", 0ms) ? crashed_inside : killed_outside) += 1;

    // The killed runner may have sent a COMMIT that its backend has not carried out yet: the
    // backend goes on without its client, and the batch (read-model writes and checkpoint
    // together) can become visible at any moment after the kill. Reading the checkpoint and
    // then the read model in two snapshots would then find the read model a batch ahead
    // (AKilledRunnersLastCommitLandsAfterItsDeathWithItsCheckpoint pins this down), so both
    // are read in one.
    const auto [checkpoint, model] = checkpoint_and_model();
    EXPECT_EQ(model, expected_model(log, checkpoint))
        << "round " << round << " (" << (inside ? "inside" : "outside") << ", n " << n
        << "), checkpoint " << checkpoint.to_string();
    if (HasFailure()) return;
  }
  std::cerr << "crashed inside an apply: " << crashed_inside
            << ", killed from outside: " << killed_outside << '\n';
  EXPECT_GT(crashed_inside + killed_outside, 0);

  auto runner = start_runner("runner-exact", {"--batch-size", std::to_string(kBatch)});
  ASSERT_TRUE(caught_up(*projections, head, 180s));
  stop_gracefully(*runner);
  EXPECT_EQ(read_model(), expected_model(log));
}

// Why the check above reads the checkpoint and the read model in one snapshot: a runner killed
// after it sent its COMMIT leaves a backend that carries the COMMIT out later, whenever it
// gets to it (on a loaded machine, well after the runner's process was reaped). Here that
// COMMIT is held on purpose: a deferred trigger on the read model waits for an advisory lock
// the test holds. The batch then lands after its runner died, read-model writes and checkpoint
// together: a checkpoint read before it landed and a read model read after disagree by a batch,
// while any one snapshot agrees with a replay up to its checkpoint. (A backend waiting for a
// lock notices a dead client only with client_connection_check_interval set; it is 0, the
// default, on the test servers.)
TEST(ProjectionSystemTest, AKilledRunnersLastCommitLandsAfterItsDeathWithItsCheckpoint) {
  std::mt19937_64 rng(seed());
  auto store = event_store();
  auto projections = projection_store();
  const auto first = log_through(*store, write_log(*store, 200, 5, rng)).back().position;
  auto runner = start_runner("runner-late", {"--batch-size", "100"});
  ASSERT_TRUE(caught_up(*projections, first, 60s)) << runner->out();
  stop_gracefully(*runner);
  {
    pqxx::connection c(test_database_url());
    pqxx::work tx(c);
    tx.exec(
        "CREATE FUNCTION sums_hold_commit() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$");
    tx.exec(
        "CREATE CONSTRAINT TRIGGER sums_hold_commit AFTER INSERT OR UPDATE ON sums_digest"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sums_hold_commit()");
    tx.commit();
  }
  pqxx::connection holder(test_database_url());
  pqxx::nontransaction hold(holder);
  hold.exec("SELECT pg_advisory_lock(4242)");

  const auto log = log_through(*store, write_log(*store, 100, 5, rng));
  runner = start_runner("runner-late", {"--batch-size", "100"});
  pqxx::connection watcher(test_database_url());
  ASSERT_TRUE(eventually(
      [&] {
        pqxx::nontransaction tx(watcher);
        return tx.exec(
                     "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                     " AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
                     " AND query = 'COMMIT'")
                   .size() == 1;
      },
      60s))
      << "the runner's COMMIT never waited for the lock\n"
      << runner->out();
  runner->kill(SIGKILL);
  EXPECT_EQ(runner->wait(), 128 + SIGKILL);

  // The runner is gone; its batch is not visible yet.
  const auto before = checkpoint_and_model();
  EXPECT_EQ(before.checkpoint, first);
  EXPECT_EQ(before.model, expected_model(log, first));

  // Let the orphaned COMMIT go on: the batch commits, after its runner died.
  hold.exec("SELECT pg_advisory_unlock(4242)");
  ASSERT_TRUE(eventually([&] { return projections->checkpoint(kProjection) > first; }, 60s))
      << "the killed runner's batch never committed";
  const auto after = checkpoint_and_model();
  std::cerr << "runner killed with its COMMIT held: checkpoint " << before.checkpoint.to_string()
            << ", " << before.model.events
            << " events applied; once the orphaned COMMIT went on: " << after.checkpoint.to_string()
            << ", " << after.model.events << " events applied\n";
  EXPECT_GT(after.checkpoint, first);
  EXPECT_EQ(after.model, expected_model(log, after.checkpoint));
  // What reading the checkpoint before and the read model after would have seen.
  EXPECT_NE(after.model, expected_model(log, before.checkpoint));
}

// No skips under concurrency: a live projection, 8 writer threads and a writing transaction
// held open while they commit. Nothing after the held transaction is applied before it
// commits, and afterwards every event is applied exactly once, in log order.
TEST(ProjectionSystemTest, NoSkipsUnderConcurrentWritersAndAHeldTransaction) {
  std::mt19937_64 rng(seed());
  auto store = event_store();
  auto projections = projection_store();
  auto runner = start_runner("runner-live", {"--batch-size", "50"});
  ASSERT_TRUE(runner->wait_for_line("state live", 60s)) << runner->out();

  pqxx::connection holder(test_database_url());
  pqxx::work held(holder);
  held.exec(
      "SELECT * FROM annals.append_events(ARRAY['acct-held']::text[], ARRAY[-1]::bigint[],"
      " ARRAY[1], ARRAY[gen_random_uuid()], ARRAY['Deposited']::text[], ARRAY[1],"
      " ARRAY['{\"amount\": 5}'::jsonb], ARRAY['{}'::jsonb])");

  constexpr int kWriters = 8;
  constexpr int kAppendsEach = 150;
  std::vector<std::thread> writers;
  std::vector<std::uint64_t> seeds;
  for (int w = 0; w < kWriters; ++w) seeds.push_back(rng());
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 local(seeds[static_cast<std::size_t>(w)]);
      for (int i = 0; i < kAppendsEach; ++i) {
        std::vector<NewEvent> events;
        const auto n = 1 + local() % 3;
        for (std::uint64_t k = 0; k < n; ++k)
          events.push_back(deposit(static_cast<std::int64_t>(local() % 100)));
        // Streams shared between writers: appends with "any" interleave their versions.
        (void)store->append(StreamId("acct-w" + std::to_string(local() % 12)),
                            ExpectedVersion::any(), std::move(events));
      }
    });
  }
  for (auto& t : writers) t.join();

  // Every writer's transaction began after the held one took its id, so the projection can
  // see none of them yet: it has applied nothing.
  const auto committed = whole_log(*store);
  EXPECT_TRUE(committed.empty());
  EXPECT_EQ(read_model().events, 0);

  held.commit();
  // More live appends after the held transaction commits; the last one is the end of the log.
  Position last;
  for (int i = 0; i < 20; ++i) {
    last = store->append(StreamId("acct-after"), ExpectedVersion::any(), {deposit(i)}).position;
  }
  ASSERT_TRUE(caught_up(*projections, last, 120s));
  stop_gracefully(*runner);
  const auto log = log_through(*store, last);

  const auto model = read_model();
  EXPECT_EQ(model, expected_model(log));
  std::int64_t total = 0;
  for (const auto& [stream, row] : model.streams) {
    EXPECT_EQ(row.events, row.last_version) << stream << ": an event skipped or applied twice";
    total += row.events;
  }
  EXPECT_EQ(total, static_cast<std::int64_t>(log.size()));
  EXPECT_EQ(model.streams.count("acct-held"), 1U);
}

// Failover: two runner processes with a 1.5 s lease; kill -9 the owner mid-replay; the standby
// takes over within the lease ttl plus its acquire interval (plus slack for this shared
// machine), with a higher fencing token, and the read model is still exact.
TEST(ProjectionSystemTest, StandbyTakesOverAfterTheOwnerIsKilled) {
  std::mt19937_64 rng(seed());
  auto store = event_store();
  auto projections = projection_store();
  (void)write_log(*store, 8000, 40, rng);
  const std::vector<std::string> options{"--lease-ttl-ms", "1500", "--acquire-interval-ms", "200",
                                         "--batch-size",   "50"};
  auto a = start_runner("runner-a", options);
  const auto a_token_line = a->wait_for_line("owner acquired", 60s);
  ASSERT_TRUE(a_token_line) << a->out();
  auto b = start_runner("runner-b", options);
  ASSERT_TRUE(b->wait_for_line("state standby", 60s)) << b->out();
  ASSERT_FALSE(b->wait_for_line("owner acquired", 0ms));

  // Kill the owner somewhere in the middle of its replay.
  std::int64_t a_token = 0;
  std::chrono::milliseconds takeover{};
  ASSERT_NO_FATAL_FAILURE(kill_owner_mid_replay(*store, *projections, *a, *b, a_token, takeover));
  std::cerr << "takeover after kill -9: " << takeover.count() << " ms (lease ttl 1500 ms)\n";
  RecordProperty("takeover_ms", static_cast<int>(takeover.count()));
  EXPECT_LE(takeover, 1500ms + 200ms + 3000ms);

  const auto record = projections->list().front();
  EXPECT_EQ(record.owner, "runner-b");
  EXPECT_GT(record.fencing_token, a_token);

  // B finishes the backlog and follows live events.
  Position last;
  for (int i = 0; i < 50; ++i) {
    last = store->append(StreamId("acct-live"), ExpectedVersion::any(), {deposit(i)}).position;
  }
  ASSERT_TRUE(caught_up(*projections, last, 120s));
  stop_gracefully(*b);
  const auto log = log_through(*store, last);
  EXPECT_EQ(read_model(), expected_model(log));
}

// Takeover within a second (session liveness, sql/0011): the owner's lease lasts 30 s, but its
// database session ends with its process, and the standby, polling at RunnerOptions' default
// acquire_interval, takes over well before the lease would expire, with a higher token; the
// read model equals the log afterwards.
TEST(ProjectionSystemTest, StandbyTakesOverWithinASecondOfTheOwnersDeath) {
  std::mt19937_64 rng(seed());
  auto store = event_store();
  auto projections = projection_store();
  (void)write_log(*store, 4000, 20, rng);
  const std::vector<std::string> options{"--lease-ttl-ms", "30000",        "--acquire-interval-ms",
                                         "default",        "--batch-size", "50"};
  auto a = start_runner("runner-a", options);
  ASSERT_TRUE(a->wait_for_line("owner acquired", 60s)) << a->out();
  auto b = start_runner("runner-b", options);
  ASSERT_TRUE(b->wait_for_line("state standby", 60s)) << b->out();

  std::int64_t a_token = 0;
  std::chrono::milliseconds takeover{};
  ASSERT_NO_FATAL_FAILURE(kill_owner_mid_replay(*store, *projections, *a, *b, a_token, takeover));
  std::cerr << "takeover after kill -9 with a 30 s lease and the default acquire interval: "
            << takeover.count() << " ms\n";
  RecordProperty("takeover_ms", static_cast<int>(takeover.count()));
  // The goal is 1 s (the default acquire interval is 500 ms); the bound leaves room for a
  // loaded machine while staying far below the 30 s expiry it replaces.
  EXPECT_LE(takeover, 3000ms);
  const auto record = projections->list().front();
  EXPECT_EQ(record.owner, "runner-b");
  EXPECT_GT(record.fencing_token, a_token);

  Position last;
  for (int i = 0; i < 20; ++i) {
    last = store->append(StreamId("acct-live"), ExpectedVersion::any(), {deposit(i)}).position;
  }
  ASSERT_TRUE(caught_up(*projections, last, 120s));
  stop_gracefully(*b);
  const auto log = log_through(*store, last);
  EXPECT_EQ(read_model(), expected_model(log));
}

#ifdef ANNALS_CLI_PATH

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const CliResult& r) {
  return os << "exit " << r.exit_code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

// Runs the real `annals` binary against the test database, to its end.
CliResult annals_cli(std::vector<std::string> args) {
  args.insert(args.begin(), {ANNALS_CLI_PATH, "--db", test_database_url()});
  ChildProcess cli(args, "annals", /*capture_stderr=*/true);
  const auto code = cli.wait_for_exit(300s);
  if (!code) return {-1, cli.out(), "did not exit within 300 s"};
  return {*code, cli.out(), cli.err()};
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    out.push_back(nlohmann::json::parse(text.substr(start, end - start)));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

std::optional<annals::projections::DeadLetter> dead_letter(ProjectionStore& store,
                                                           std::int64_t id) {
  for (auto& d : store.list_dead_letters({})) {
    if (d.id == id) return d;
  }
  return std::nullopt;
}

// Poison events: parked as dead letters while the runner goes on; a retry before the fix
// fails again (parked, one more attempt); after the fix `annals dead-letters retry` makes the
// owner apply it and the list shows it resolved; `annals dead-letters skip` gives up on the
// other one.
TEST(ProjectionSystemTest, PoisonEventsAreParkedRetriedAfterAFixAndSkipped) {
  auto store = event_store();
  auto projections = projection_store();
  for (int i = 0; i < 30; ++i)
    (void)store->append(StreamId("acct-1"), ExpectedVersion::any(), {deposit(1)});
  const auto poison1 =
      store->append(StreamId("acct-2"), ExpectedVersion::any(),
                    {NewEvent{.type = "Deposited", .data = {{"amount", 1000}, {"poison", true}}}});
  for (int i = 0; i < 30; ++i)
    (void)store->append(StreamId("acct-1"), ExpectedVersion::any(), {deposit(1)});
  (void)store->append(StreamId("acct-3"), ExpectedVersion::any(),
                      {NewEvent{.type = "Deposited", .data = {{"amount", 7}, {"poison", true}}}});
  Position last;
  for (int i = 0; i < 30; ++i) {
    last = store->append(StreamId("acct-1"), ExpectedVersion::any(), {deposit(1)}).position;
  }
  const auto log = log_through(*store, last);

  auto runner =
      start_runner("runner-poison", {"--dead-letter", "--max-attempts", "2", "--batch-size", "20"});
  ASSERT_TRUE(caught_up(*projections, log.back().position, 60s)) << runner->out();

  // Both parked; everything else applied (the runner continued past them).
  auto parked = projections->list_dead_letters({.state = DeadLetterState::kParked});
  ASSERT_EQ(parked.size(), 2U);
  EXPECT_EQ(parked[0].event.position, poison1.position);
  EXPECT_EQ(parked[0].attempts, 2);
  const auto id1 = parked[0].id;
  const auto id2 = parked[1].id;
  auto model = read_model();
  EXPECT_EQ(model.events, static_cast<std::int64_t>(log.size()) - 2);
  EXPECT_EQ(model.streams.count("acct-2"), 0U);
  EXPECT_EQ(model.streams.at("acct-1").events, 90);

  const auto listed = annals_cli({"dead-letters", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  const auto rows = json_lines(listed.out);
  ASSERT_EQ(rows.size(), 2U) << listed;
  EXPECT_EQ(rows[0]["id"], id1);
  EXPECT_EQ(rows[0]["state"], "parked");
  EXPECT_EQ(rows[0]["projection"], kProjection);
  EXPECT_EQ(rows[0]["stream"], "acct-2");

  // A retry before the fix fails again: back to parked with more attempts.
  auto retried = annals_cli({"dead-letters", "retry", std::to_string(id1)});
  ASSERT_EQ(retried.exit_code, 0) << retried;
  ASSERT_TRUE(eventually(
      [&] {
        const auto d = dead_letter(*projections, id1);
        return d && d->state == DeadLetterState::kParked && d->attempts > 2;
      },
      30s));

  // The fix, then a retry: the owner applies it and marks it resolved.
  {
    pqxx::connection c(test_database_url());
    pqxx::work tx(c);
    tx.exec_params("INSERT INTO sums_fixes (event_id) VALUES ($1)", parked[0].event.id.to_string());
    tx.commit();
  }
  retried = annals_cli({"dead-letters", "retry", std::to_string(id1)});
  ASSERT_EQ(retried.exit_code, 0) << retried;
  ASSERT_TRUE(eventually(
      [&] {
        const auto d = dead_letter(*projections, id1);
        return d && d->state == DeadLetterState::kResolved;
      },
      30s));
  model = read_model();
  EXPECT_EQ(model.events, static_cast<std::int64_t>(log.size()) - 1);
  EXPECT_EQ(model.streams.at("acct-2").total, 1000);

  const auto skipped = annals_cli({"dead-letters", "skip", std::to_string(id2)});
  ASSERT_EQ(skipped.exit_code, 0) << skipped;
  const auto after = annals_cli({"dead-letters", "list", "--json"});
  ASSERT_EQ(after.exit_code, 0) << after;
  const auto final_rows = json_lines(after.out);
  ASSERT_EQ(final_rows.size(), 2U) << after;
  EXPECT_EQ(final_rows[0]["state"], "resolved");
  EXPECT_EQ(final_rows[1]["state"], "skipped");
  const auto resolved_only = annals_cli({"dead-letters", "list", "--state", "resolved"});
  EXPECT_EQ(resolved_only.exit_code, 0) << resolved_only;
  EXPECT_NE(resolved_only.out.find("resolved"), std::string::npos) << resolved_only;
  EXPECT_EQ(resolved_only.out.find("skipped"), std::string::npos) << resolved_only;

  // Retrying a resolved one is refused (2); an unknown id is not found (4).
  EXPECT_EQ(annals_cli({"dead-letters", "retry", std::to_string(id1)}).exit_code, 2);
  EXPECT_EQ(annals_cli({"dead-letters", "retry", "999999"}).exit_code, 4);
  EXPECT_EQ(annals_cli({"dead-letters", "skip", "999999"}).exit_code, 4);
  stop_gracefully(*runner);
}

// `annals projections rebuild` while a runner owns the projection: the owner resets the read
// model (here deliberately damaged first) and replays; the CLI follows it (progress lines,
// as stdout is not a terminal) and exits 0; the read model equals the log again. Without an owner
// the request waits (said plainly) and --timeout exits 5; a runner started later carries it out and
// the same command then follows it to the end.
TEST(ProjectionSystemTest, RebuildFromTheCliIsCarriedOutByTheOwner) {
  std::mt19937_64 rng(seed());
  auto store = event_store();
  auto projections = projection_store();
  auto log = log_through(*store, write_log(*store, 6000, 30, rng));
  auto runner = start_runner("runner-rebuild", {"--batch-size", "200"});
  ASSERT_TRUE(caught_up(*projections, log.back().position, 120s));
  ASSERT_EQ(read_model(), expected_model(log));

  const auto status = annals_cli({"projections", "status", kProjection, "--json"});
  ASSERT_EQ(status.exit_code, 0) << status;
  const auto row = json_lines(status.out).at(0);
  EXPECT_EQ(row["name"], kProjection);
  EXPECT_EQ(row["owner"], "runner-rebuild");
  EXPECT_EQ(row["owned"], true);
  EXPECT_EQ(row["lag"], 0);
  EXPECT_EQ(row["position"], log.back().position.to_string());
  const auto table = annals_cli({"projections", "list"});
  ASSERT_EQ(table.exit_code, 0) << table;
  EXPECT_EQ(table.out.rfind("NAME", 0), 0U) << table;
  EXPECT_NE(table.out.find("runner-rebuild"), std::string::npos) << table;

  {
    pqxx::connection c(test_database_url());
    pqxx::work tx(c);
    tx.exec("UPDATE sums_streams SET total = total + 1");
    tx.exec("DELETE FROM sums_digest");
    tx.commit();
  }
  ASSERT_NE(read_model(), expected_model(log));

  const auto rebuilt = annals_cli({"projections", "rebuild", kProjection, "--timeout", "240"});
  ASSERT_EQ(rebuilt.exit_code, 0) << rebuilt;
  EXPECT_NE(rebuilt.out.find("rebuild sums: done"), std::string::npos) << rebuilt;
  // Progress lines depend on how fast the replay is compared with the CLI's polls; their
  // format is pinned down by tests/cli/projection_commands_test.cpp.
  EXPECT_EQ(read_model(), expected_model(log));

  // No owner: the request waits, the CLI says so and gives up after --timeout with exit 5.
  stop_gracefully(*runner);
  log = log_through(
      *store, store->append(StreamId("acct-late"), ExpectedVersion::any(), {deposit(3)}).position);
  const auto waiting = annals_cli({"projections", "rebuild", kProjection, "--timeout", "1"});
  EXPECT_EQ(waiting.exit_code, 5) << waiting;
  EXPECT_NE(waiting.out.find("no runner owns sums"), std::string::npos) << waiting;
  ASSERT_TRUE(projections->open_rebuild(kProjection).has_value());

  runner = start_runner("runner-rebuild-2", {"--batch-size", "200"});
  const auto followed = annals_cli({"projections", "rebuild", kProjection, "--timeout", "240"});
  ASSERT_EQ(followed.exit_code, 0) << followed;
  ASSERT_TRUE(caught_up(*projections, log.back().position, 120s));
  stop_gracefully(*runner);
  EXPECT_EQ(read_model(), expected_model(log));

  EXPECT_EQ(annals_cli({"projections", "rebuild", "no-such-projection"}).exit_code, 4);
  EXPECT_EQ(annals_cli({"projections", "status", "no-such-projection"}).exit_code, 4);
}

#endif  // ANNALS_CLI_PATH

}  // namespace
