// projection_test_runner: a projection runner process for the projection system tests
// (projections_system_test.cpp spawns it, kills it with SIGKILL, runs two at once).
//
// It runs one ReadModelProjection, "sums" by default, with a ProjectionRunner over
// PostgresEventStore + PostgresProjectionStore. The read model, per stream of the projected
// category: how many events, the sum of data.amount and the highest version applied; plus one
// row with the number of events applied and a running hash that depends on their order:
//   hash' = (hash * 1000003 + global sequence) mod 2147483647.
// expected_model() in the test computes the same from the log.
//
// Arguments: --db URL --owner NAME (required); --name PROJECTION (default sums), --category C
// (only that stream category), --lease-ttl-ms N (2000), --acquire-interval-ms N|default (200;
// "default" keeps RunnerOptions' default),
// --batch-size N (100), --max-attempts N (2), --dead-letter (park failing events instead of
// stopping), --crash-after-events N (below).
//
// Partitions: --partitions N runs the projection as N partitions (ProjectionOptions::
// partitions; the store's count wins once it has one) and leaves the digest row alone (its
// hash depends on the order across streams, which partitions do not keep); every mode keeps a
// per-stream hash in <name>_streams.hash, hash' = (hash * 1000003 + version) mod 2147483647,
// which depends on the order of each stream's events. --repartition N changes the stored
// partition count to N (annals::projections::repartition()), prints
// "repartitioned FROM TO SEQUENCE" and exits 0, without starting a runner.
//
// Poison rule: an event whose data has "poison": true fails to apply unless its event id is in
// the table <name>_fixes (which a rebuild does not empty): the tests "fix" it by inserting it.
//
// Crash rule: --crash-after-events N makes the process raise(SIGKILL) inside the N-th apply of
// this process, after applying it and before its batch commits (N = k * batch size + 1 dies
// right after batch k committed).
//
// Stdout, one line per fact, flushed at once (the tests wait for them):
//   ready OWNER                   the runner started
//   owner acquired TOKEN          this process now owns the projection
//   owner lost                    it no longer does (another took over, or it stopped)
//   state STATE                   the runner's state for the projection changed
//   stopped                       SIGTERM/SIGINT handled, leases released; exit 0 follows
// Exit codes: 0 after SIGTERM/SIGINT, 2 bad arguments, 1 anything else.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/partitions.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/runner.hpp"

namespace {

using annals::RecordedEvent;
using annals::projections::ReadModel;
using annals::projections::ReadModelMigration;

struct Args {
  std::string db;
  std::string owner;
  std::string name = "sums";
  std::optional<std::string> category;
  std::int64_t lease_ttl_ms = 2000;
  std::int64_t acquire_interval_ms = 200;
  std::int64_t batch_size = 100;
  std::int64_t max_attempts = 2;
  bool dead_letter = false;
  std::int64_t crash_after_events = 0;
  std::int64_t partitions = 0;
  std::int64_t repartition = 0;
};

void say(const std::string& line) {
  std::cout << line << std::endl;  // flushed: a test is waiting for it
}

std::int64_t crash_after_events = 0;
std::int64_t applied_here = 0;

class SumsProjection final : public annals::projections::ReadModelProjection {
 public:
  SumsProjection(std::string name, std::optional<std::string> category, bool digest)
      : name_(std::move(name)), category_(std::move(category)), digest_(digest) {}

  std::string name() const override { return name_; }

  annals::EventFilter filter() const override {
    annals::EventFilter f;
    f.category = category_;
    return f;
  }

  std::vector<ReadModelMigration> migrations() const override {
    return {{"0001_create", "CREATE TABLE " + name_ +
                                "_streams (stream text PRIMARY KEY, events bigint NOT NULL,"
                                " total bigint NOT NULL, last_version bigint NOT NULL,"
                                " hash bigint NOT NULL DEFAULT 0);"
                                "CREATE TABLE " +
                                name_ +
                                "_digest (id integer PRIMARY KEY, events bigint NOT NULL,"
                                " hash bigint NOT NULL);"
                                "CREATE TABLE " +
                                name_ + "_fixes (event_id text PRIMARY KEY);"}};
  }

  std::vector<std::string> tables() const override {
    return {name_ + "_streams", name_ + "_digest"};
  }

  void handle(const RecordedEvent& event, ReadModel& db) override {
    const auto& data = event.data;
    if (data.is_object() && data.value("poison", false)) {
      const auto fixed = db.exec("SELECT 1 AS fixed FROM " + name_ + "_fixes WHERE event_id = $1",
                                 {event.id.to_string()});
      if (fixed.empty()) {
        throw std::runtime_error("poison event " + event.id.to_string() + " (not fixed yet)");
      }
    }
    const std::int64_t amount = data.is_object() ? data.value("amount", std::int64_t{0}) : 0;
    db.exec("INSERT INTO " + name_ +
                "_streams (stream, events, total, last_version, hash)"
                " VALUES ($1, 1, $2, $3, $3::bigint % 2147483647)"
                " ON CONFLICT (stream) DO UPDATE SET events = " +
                name_ +
                "_streams.events + 1,"
                " total = " +
                name_ +
                "_streams.total + EXCLUDED.total,"
                " last_version = GREATEST(" +
                name_ +
                "_streams.last_version,"
                " EXCLUDED.last_version),"
                " hash = (" +
                name_ + "_streams.hash * 1000003 + EXCLUDED.last_version) % 2147483647",
            {event.stream_id.value(), amount, event.version});
    if (digest_) {
      db.exec("INSERT INTO " + name_ +
                  "_digest (id, events, hash) VALUES (1, 1, $1::bigint % 2147483647)"
                  " ON CONFLICT (id) DO UPDATE SET events = " +
                  name_ +
                  "_digest.events + 1,"
                  " hash = (" +
                  name_ + "_digest.hash * 1000003 + $1::bigint) % 2147483647",
              {event.position.sequence()});
    }
    if (crash_after_events > 0 && ++applied_here == crash_after_events) {
      say("crashing");
      ::raise(SIGKILL);
    }
  }

 private:
  std::string name_;
  std::optional<std::string> category_;
  bool digest_;
};

std::int64_t to_int(const std::string& flag, const std::string& value) {
  try {
    std::size_t used = 0;
    const auto n = std::stoll(value, &used);
    if (used == value.size()) return n;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(flag + " needs an integer, got '" + value + "'");
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--dead-letter") {
      a.dead_letter = true;
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--db")
      a.db = value;
    else if (flag == "--owner")
      a.owner = value;
    else if (flag == "--name")
      a.name = value;
    else if (flag == "--category")
      a.category = value;
    else if (flag == "--lease-ttl-ms")
      a.lease_ttl_ms = to_int(flag, value);
    else if (flag == "--acquire-interval-ms")
      a.acquire_interval_ms = value == "default" ? 0 : to_int(flag, value);
    else if (flag == "--batch-size")
      a.batch_size = to_int(flag, value);
    else if (flag == "--max-attempts")
      a.max_attempts = to_int(flag, value);
    else if (flag == "--crash-after-events")
      a.crash_after_events = to_int(flag, value);
    else if (flag == "--partitions")
      a.partitions = to_int(flag, value);
    else if (flag == "--repartition")
      a.repartition = to_int(flag, value);
    else
      throw std::invalid_argument("unknown flag " + flag);
  }
  if (a.db.empty() || a.owner.empty()) throw std::invalid_argument("--db and --owner are required");
  if (a.batch_size < 1 || a.lease_ttl_ms < 1 || a.max_attempts < 1) {
    throw std::invalid_argument("--batch-size, --lease-ttl-ms and --max-attempts must be >= 1");
  }
  return a;
}

// A partitioned projection's runner reports how many partitions it holds:
//   partitions N                  this process now holds N partitions
int run_partitioned(annals::projections::ProjectionRunner& runner, sigset_t& stop_signals) {
  int held = -1;
  const timespec tick{0, 20'000'000};
  while (true) {
    int now = 0;
    for (const auto& status : runner.status()) now += status.lease ? 1 : 0;
    if (now != held) {
      say("partitions " + std::to_string(now));
      held = now;
    }
    if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) break;
  }
  runner.stop();
  say("stopped");
  return 0;
}

int run(const Args& args) {
  // Block the stop signals before any thread starts, so that only sigtimedwait() sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  crash_after_events = args.crash_after_events;
  auto events =
      annals::postgres::make_postgres_event_store({.connection_string = args.db, .pool_size = 2});
  auto store = annals::projections::make_postgres_projection_store(
      {.connection_string = args.db, .pool_size = 4});
  annals::projections::RunnerOptions options;
  options.owner = args.owner;
  options.lease_ttl = std::chrono::milliseconds(args.lease_ttl_ms);
  if (args.acquire_interval_ms > 0) {
    options.acquire_interval = std::chrono::milliseconds(args.acquire_interval_ms);
  }
  options.poll_interval = std::chrono::milliseconds(200);
  options.request_interval = std::chrono::milliseconds(100);
  const auto projection =
      std::make_shared<SumsProjection>(args.name, args.category, args.partitions == 0);
  if (args.repartition > 0) {
    store->prepare(*projection);
    const auto done = annals::projections::repartition(*events, *store, *projection,
                                                       static_cast<int>(args.repartition));
    say("repartitioned " + std::to_string(done.from) + " " + std::to_string(done.to) + " " +
        std::to_string(done.at.sequence()));
    return 0;
  }
  annals::projections::ProjectionRunner runner(*events, *store, options);

  annals::projections::ProjectionOptions projection_options;
  projection_options.batch_size = static_cast<std::size_t>(args.batch_size);
  projection_options.max_attempts = static_cast<int>(args.max_attempts);
  projection_options.initial_backoff = std::chrono::milliseconds(10);
  projection_options.max_backoff = std::chrono::milliseconds(50);
  projection_options.on_failure = args.dead_letter ? annals::projections::OnFailure::kDeadLetter
                                                   : annals::projections::OnFailure::kStop;
  if (args.partitions > 0) projection_options.partitions = static_cast<int>(args.partitions);
  runner.add(projection, projection_options);
  runner.start();
  say("ready " + runner.owner());
  if (args.partitions > 0) return run_partitioned(runner, stop_signals);

  // Report ownership and state changes until SIGTERM/SIGINT.
  std::optional<std::int64_t> token;
  std::string state;
  const timespec tick{0, 20'000'000};
  while (true) {
    const auto status = runner.status(args.name);
    const std::optional<std::int64_t> now =
        status.lease ? std::optional(status.lease->fencing_token) : std::nullopt;
    if (now != token) {
      say(now ? "owner acquired " + std::to_string(*now) : std::string("owner lost"));
      token = now;
    }
    const std::string current = annals::projections::to_string(status.state);
    if (current != state) {
      say("state " + current + (status.last_error ? " " + *status.last_error : std::string()));
      state = current;
    }
    if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) break;
  }
  runner.stop();
  say("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  try {
    args = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "projection_test_runner: " << e.what() << '\n';
    return 2;
  }
  try {
    auto logger = spdlog::stderr_logger_mt("annals");
    logger->set_pattern("[runner " + args.owner + "] [%l] %v");
    logger->set_level(spdlog::level::info);
    return run(args);
  } catch (const std::exception& e) {
    std::cerr << "projection_test_runner " << args.owner << ": " << e.what() << '\n';
    return 1;
  }
}
