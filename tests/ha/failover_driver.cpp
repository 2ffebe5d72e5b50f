// The failover driver (docs/scaling.md, "Failover"): the event store on a Patroni cluster of two
// PostgreSQL nodes with synchronous replication (scripts/ha), its primary killed mid-load.
//
//   annals_failover_driver URL KILL_COMMAND...
//   e.g. annals_failover_driver "$(scripts/ha url)" scripts/ha kill-primary
//
// URL is the cluster's multi-host URL with target_session_attrs=read-write: libpq tries the
// hosts in turn on every connect and keeps the one that accepts writes, so a store whose broken
// connections are replaced by new ones finds the new primary by itself. The driver:
//
//  1. migrates the database and opens one store (pool of 8) and a subscription on a category
//     of its own;
//  2. starts 4 writer threads, each appending one event at a time to its own stream with an
//     exact expected version and an event id chosen before the first attempt; an attempt that
//     fails with UnavailableError (OutcomeUnknownError included: the commit is in doubt) is
//     sent again, same id, same expected version, until it is acknowledged;
//  3. after 300 acknowledged appends runs KILL_COMMAND (SIGKILL to the primary's Patroni and
//     postmaster), and keeps appending until 300 more appends were acknowledged on the new
//     primary;
//  4. re-sends every append that had an outcome-unknown failure once more: each must return
//     its original result and add nothing;
//  5. checks the log: every acknowledged event is there exactly once, nothing else is, and each
//     stream's versions run 1..n in the order of the acknowledgements;
//  6. checks the subscription: it delivered exactly the log, in log order (nothing skipped,
//     nothing repeated), across the failover, apart from phantom deliveries, which it prints:
//     an append whose commit the dying primary made visible without replicating it (see
//     check_subscription); each must be an append that failed with OutcomeUnknownError, whose
//     re-send put it in the log at a later position;
//  7. prints the write outage: from the first failed append to the first append acknowledged
//     on the new primary (the first success of an attempt started after that failure).
//
// Exits 0 when every check held, 1 otherwise (the failed checks are printed), 2 on bad usage.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "annals/eventstore/error.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "run_process.hpp"
#include "test_database.hpp"

namespace {

using annals::AppendResult;
using annals::EventId;
using annals::ExpectedVersion;
using annals::NewEvent;
using annals::Position;
using annals::RecordedEvent;
using annals::StreamId;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kWriters = 4;
constexpr int kAppendsBeforeKill = 300;
constexpr int kAppendsAfterFailover = 300;
constexpr auto kGiveUpAfter = 120s;  // a failover that takes longer fails the run
constexpr auto kRetryPause = 20ms;   // between attempts of one append while it fails

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// An acknowledged append.
struct Acknowledged {
  EventId id;
  StreamId stream;
  int writer = 0;
  AppendResult result;
  bool in_doubt = false;  // an attempt failed with OutcomeUnknownError
};

// What the writers share: acknowledgements, failure counts and the outage's two ends.
class Ledger {
 public:
  void failed(Clock::time_point at, bool outcome_unknown) {
    std::lock_guard lock(mutex_);
    (outcome_unknown ? outcome_unknown_ : unavailable_) += 1;
    if (!first_failure_) first_failure_ = at;
  }

  void acknowledged(Acknowledged ack, Clock::time_point attempt_started, Clock::time_point at) {
    std::lock_guard lock(mutex_);
    if (first_failure_ && !first_recovered_ && attempt_started > *first_failure_) {
      first_recovered_ = at;
      acks_before_recovery_ = acks_.size();
    }
    acks_.push_back(std::move(ack));
  }

  std::size_t count() {
    std::lock_guard lock(mutex_);
    return acks_.size();
  }
  std::size_t count_since_recovery() {
    std::lock_guard lock(mutex_);
    return first_recovered_ ? acks_.size() - acks_before_recovery_ : 0;
  }

  // Read once the writers have stopped.
  const std::vector<Acknowledged>& acks() const { return acks_; }
  std::optional<Clock::time_point> first_failure() const { return first_failure_; }
  std::optional<Clock::time_point> first_recovered() const { return first_recovered_; }
  int unavailable() const { return unavailable_; }
  int outcome_unknown() const { return outcome_unknown_; }

 private:
  std::mutex mutex_;
  std::vector<Acknowledged> acks_;
  std::optional<Clock::time_point> first_failure_;
  std::optional<Clock::time_point> first_recovered_;
  std::size_t acks_before_recovery_ = 0;
  int unavailable_ = 0;
  int outcome_unknown_ = 0;
};

// One event a subscription delivered.
struct Delivery {
  EventId id;
  Position position;
};

// The events a subscription delivered, in delivery order.
class Delivered {
 public:
  void add(const RecordedEvent& event) {
    std::lock_guard lock(mutex_);
    deliveries_.push_back({event.id, event.position});
  }
  std::vector<Delivery> all() {
    std::lock_guard lock(mutex_);
    return deliveries_;
  }

 private:
  std::mutex mutex_;
  std::vector<Delivery> deliveries_;
};

NewEvent tick(EventId id, int writer, annals::StreamVersion n) {
  return NewEvent{.id = id, .type = "Ticked", .data = {{"writer", writer}, {"n", n}}};
}

// One writer: appends to its own stream until `stop`, re-sending an append that failed with
// the same event id and expected version until it is acknowledged.
void write(annals::EventStore& store, const std::string& category, int writer,
           const std::atomic<bool>& stop, Ledger& ledger, std::atomic<bool>& gave_up) {
  const StreamId stream(category + "-w" + std::to_string(writer));
  annals::StreamVersion version = 0;
  while (!stop.load()) {
    const auto id = EventId::generate();
    bool in_doubt = false;
    const auto deadline = Clock::now() + kGiveUpAfter;
    for (;;) {
      const auto started = Clock::now();
      try {
        auto result =
            store.append(stream, ExpectedVersion::exact(version), {tick(id, writer, version + 1)});
        version = result.last_version;
        ledger.acknowledged({id, stream, writer, result, in_doubt}, started, Clock::now());
        break;
      } catch (const annals::OutcomeUnknownError&) {
        in_doubt = true;
        ledger.failed(Clock::now(), true);
      } catch (const annals::UnavailableError&) {
        ledger.failed(Clock::now(), false);
      }
      if (Clock::now() > deadline) {
        gave_up = true;
        return;
      }
      std::this_thread::sleep_for(kRetryPause);
    }
  }
}

// Every event of `category` after `after`, in log order.
std::vector<RecordedEvent> read_category(annals::EventStore& store, const std::string& category,
                                         Position after) {
  std::vector<RecordedEvent> all;
  for (;;) {
    auto batch =
        store.read_all({.after = after, .max_count = 1000, .filter = {.category = category}});
    if (batch.empty()) return all;
    after = batch.back().position;
    std::move(batch.begin(), batch.end(), std::back_inserter(all));
  }
}

class Checks {
 public:
  void expect(bool ok, const std::string& what) {
    if (!ok) {
      std::cout << "FAILED: " << what << "\n";
      failed_ = true;
    }
  }
  [[nodiscard]] bool failed() const { return failed_; }

 private:
  bool failed_ = false;
};

// Step 4: a second re-send of each in-doubt append returns its original result.
int resend_in_doubt(annals::EventStore& store, const Ledger& ledger, Checks& checks) {
  int resent = 0;
  for (const auto& ack : ledger.acks()) {
    if (!ack.in_doubt) continue;
    const auto again =
        store.append(ack.stream, ExpectedVersion::exact(ack.result.first_version - 1),
                     {tick(ack.id, ack.writer, ack.result.first_version)});
    checks.expect(again == ack.result, "re-sending event " + ack.id.to_string() +
                                           " returned another result than its acknowledgement");
    ++resent;
  }
  return resent;
}

// Step 5: the log holds exactly the acknowledged events, each stream gap-free in ack order.
void check_log(const std::vector<RecordedEvent>& log, const Ledger& ledger, Checks& checks) {
  std::map<std::string, int> copies;
  for (const auto& event : log) copies[event.id.to_string()] += 1;
  std::size_t missing = 0;
  std::size_t duplicated = 0;
  for (const auto& ack : ledger.acks()) {
    const auto found = copies.find(ack.id.to_string());
    if (found == copies.end()) {
      ++missing;
    } else if (found->second != 1) {
      ++duplicated;
    }
  }
  checks.expect(missing == 0, std::to_string(missing) + " acknowledged events are not in the log");
  checks.expect(duplicated == 0, std::to_string(duplicated) + " events are in the log twice");
  checks.expect(log.size() == ledger.acks().size(),
                "the log holds " + std::to_string(log.size()) + " events, " +
                    std::to_string(ledger.acks().size()) + " were acknowledged");

  std::map<std::string, std::vector<const RecordedEvent*>> streams;
  for (const auto& event : log) streams[event.stream_id.value()].push_back(&event);
  std::map<std::string, std::vector<EventId>> acked_order;
  for (const auto& ack : ledger.acks()) acked_order[ack.stream.value()].push_back(ack.id);
  for (const auto& [stream, events] : streams) {
    for (std::size_t i = 0; i < events.size(); ++i) {
      checks.expect(events[i]->version == static_cast<annals::StreamVersion>(i + 1),
                    stream + ": version " + std::to_string(events[i]->version) + " at index " +
                        std::to_string(i));
      const auto& order = acked_order[stream];
      checks.expect(i < order.size() && order[i] == events[i]->id,
                    stream + ": event " + std::to_string(i + 1) + " is not the one acknowledged");
    }
  }
}

// Step 6: the subscription delivered the log exactly, apart from phantoms: deliveries of an
// (event id, position) the log does not hold. A commit whose wait for the standby is cut short
// by the death of the primary's postmaster is made visible on the dying primary without being
// replicated (PostgreSQL's SyncRepWaitForLSN "bails out"); a read running there at that moment
// can return it. Such an append was never acknowledged (its writer got OutcomeUnknownError and
// re-sent it, so it is in the log once, at a later position). Returns the phantoms, printed.
std::size_t check_subscription(const std::vector<Delivery>& delivered,
                               const std::vector<RecordedEvent>& log, const Ledger& ledger,
                               Checks& checks) {
  std::map<std::string, Position> in_log;
  for (const auto& event : log) in_log.emplace(event.id.to_string(), event.position);
  std::set<std::string> in_doubt;
  for (const auto& ack : ledger.acks()) {
    if (ack.in_doubt) in_doubt.insert(ack.id.to_string());
  }
  std::vector<Delivery> real;
  std::size_t phantoms = 0;
  for (const auto& d : delivered) {
    const auto found = in_log.find(d.id.to_string());
    if (found != in_log.end() && found->second == d.position) {
      real.push_back(d);
      continue;
    }
    ++phantoms;
    const bool doubted = in_doubt.contains(d.id.to_string());
    std::cout << "phantom delivery: event " << d.id.to_string() << " at " << d.position.to_string()
              << ", in the log at "
              << (found == in_log.end() ? std::string("no position") : found->second.to_string())
              << (doubted ? "; its append had failed with OutcomeUnknownError" : "") << "\n";
    checks.expect(doubted, "a phantom delivery of an append that was not in doubt");
  }
  bool same = real.size() == log.size();
  for (std::size_t i = 0; same && i < log.size(); ++i) same = real[i].id == log[i].id;
  checks.expect(same, "the subscription delivered " + std::to_string(real.size()) +
                          " of the log's events, not its " + std::to_string(log.size()) +
                          " in log order");
  return phantoms;
}

int run(const std::string& url, const std::vector<std::string>& kill_command) {
  annals::postgres::migrate(url);
  auto store = annals::postgres::make_postgres_event_store(
      {.connection_string = url, .pool_size = 8, .call_timeout = 10s});
  const std::string category = "failover" + annals::testing::random_hex(8);
  const auto start = store->head_position();
  Delivered delivered;
  auto subscription = store->subscribe({.after = start,
                                        .filter = {.category = category},
                                        .poll_interval = 500ms,
                                        .initial_reconnect_backoff = 50ms,
                                        .max_reconnect_backoff = 500ms},
                                       [&](const RecordedEvent& e) { delivered.add(e); });

  Ledger ledger;
  std::atomic<bool> stop{false};
  std::atomic<bool> gave_up{false};
  const auto began = Clock::now();
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] { write(*store, category, w, stop, ledger, gave_up); });
  }

  // Step 3. The driver polls its own counters here; nothing is synchronised by these sleeps.
  while (ledger.count() < kAppendsBeforeKill && !gave_up.load()) std::this_thread::sleep_for(5ms);
  const auto acked_before_kill = ledger.count();
  const auto killed_at = Clock::now();
  const auto killed = annals::testing::run_process(kill_command);
  std::cout << "killed the primary (" << killed.out.substr(0, killed.out.find('\n')) << ") at +"
            << seconds(killed_at - began) << " s, after " << acked_before_kill
            << " acknowledged appends\n";
  if (killed.exit_code != 0) {
    std::cout << "FAILED: the kill command failed: " << killed << "\n";
    stop = true;
    for (auto& t : writers) t.join();
    return 1;
  }
  while (ledger.count_since_recovery() < kAppendsAfterFailover && !gave_up.load() &&
         Clock::now() - killed_at < kGiveUpAfter) {
    std::this_thread::sleep_for(10ms);
  }
  stop = true;
  for (auto& t : writers) t.join();

  Checks checks;
  checks.expect(!gave_up.load() && ledger.first_recovered().has_value(),
                "appends did not recover within " + std::to_string(kGiveUpAfter.count()) + " s");
  if (checks.failed()) return 1;
  const int resent = resend_in_doubt(*store, ledger, checks);
  const auto log = read_category(*store, category, start);
  check_log(log, ledger, checks);
  if (!log.empty()) {
    checks.expect(subscription->wait_for(log.back().position, 60s),
                  "the subscription did not reach the end of the log within 60 s");
  }
  subscription->stop();
  checks.expect(subscription->stop_reason() == nullptr, "the subscription stopped on an error");
  const auto deliveries = delivered.all();
  const auto phantoms = check_subscription(deliveries, log, ledger, checks);

  const auto outage = *ledger.first_recovered() - *ledger.first_failure();
  std::printf(
      "write outage: %.2f s (first failed append at +%.3f s, first acknowledged on the "
      "new primary at +%.3f s)\n",
      seconds(outage), seconds(*ledger.first_failure() - began),
      seconds(*ledger.first_recovered() - began));
  std::cout << "appends acknowledged: " << ledger.acks().size() << " (" << acked_before_kill
            << " before the kill); failed attempts re-sent: " << ledger.unavailable()
            << " unavailable, " << ledger.outcome_unknown() << " outcome unknown\n";
  std::cout << "in-doubt appends re-sent once more with the same event ids: " << resent
            << ", each returned its original result\n";
  std::cout << "log: " << log.size()
            << " events, every acknowledged one exactly once, each stream gap-free\n";
  std::cout << "subscription: " << deliveries.size() - phantoms
            << " events of the log delivered, in log order, none skipped or repeated; phantom "
               "deliveries: "
            << phantoms << "\n";
  std::cout << (checks.failed() ? "RESULT: FAILED" : "RESULT: OK") << std::endl;
  return checks.failed() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: annals_failover_driver URL KILL_COMMAND...\n";
    return 2;
  }
  // The store's warnings (retries, reconnects) to stderr; the report alone on stdout.
  spdlog::stderr_logger_mt("annals");
  try {
    return run(argv[1], std::vector<std::string>(argv + 2, argv + argc));
  } catch (const std::exception& e) {
    std::cout << "FAILED: " << e.what() << "\nRESULT: FAILED" << std::endl;
    return 1;
  }
}
