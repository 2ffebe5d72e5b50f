// annals-bench, framework figures (see framework_bench.hpp and docs/performance.md).
#include "framework_bench.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <time.h>

#include <mutex>
#include <optional>
#include <unordered_map>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/detail/encoded_event.hpp"

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/event_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/framework/event_registry.hpp"
#include "annals/framework/repository.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/postgres_snapshot_store.hpp"
#include "harness.hpp"
#include "pg.hpp"
#include "workloads.hpp"

namespace annals::bench {
namespace {

// --- The benchmark's aggregate ------------------------------------------------------------
// A deposit carries exactly the JSON of the store benchmark's payload (make_payload), so that
// the bus and the bare append write the same bytes of data.

struct BenchAccountOpened {
  static constexpr std::string_view kTypeName = "BenchAccountOpened";
  static constexpr int kSchemaVersion = 1;
  std::string owner;
  friend bool operator==(const BenchAccountOpened&, const BenchAccountOpened&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BenchAccountOpened, owner)

struct BenchMoneyDeposited {
  static constexpr std::string_view kTypeName = "BenchMoneyDeposited";
  static constexpr int kSchemaVersion = 1;
  std::string account_id;
  std::int64_t amount_cents = 0;
  std::string currency;
  std::string description;
  std::string booked_on;
  std::string reference;
  std::vector<std::string> tags;
  std::uint64_t n = 0;
  friend bool operator==(const BenchMoneyDeposited&, const BenchMoneyDeposited&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BenchMoneyDeposited, account_id, amount_cents, currency,
                                   description, booked_on, reference, tags, n)

struct OpenBenchAccount {
  std::string account_id;
};
struct DepositToBenchAccount {
  std::string account_id;
  std::uint64_t n = 0;
};

struct BenchAccount {
  struct State {
    bool open = false;
    std::int64_t balance_cents = 0;
    std::uint64_t deposits = 0;
  };
  using Event = std::variant<BenchAccountOpened, BenchMoneyDeposited>;
  static constexpr std::string_view kCategory = "benchacct";

  static State evolve(State s, const BenchAccountOpened&) {
    s.open = true;
    return s;
  }
  static State evolve(State s, const BenchMoneyDeposited& e) {
    s.balance_cents += e.amount_cents;
    ++s.deposits;
    return s;
  }
  static std::vector<Event> decide(const State& s, const OpenBenchAccount&) {
    if (s.open) return {};
    return {BenchAccountOpened{"bench"}};
  }
  static BenchMoneyDeposited decide(const State&, const DepositToBenchAccount& c) {
    return deposit(c.n);
  }
  static BenchMoneyDeposited deposit(std::uint64_t n) {
    return BenchMoneyDeposited{"account-000042",
                               125000,
                               "EUR",
                               "Salary May 2024",
                               "2024-05-31",
                               "INV-2024-000042-5c4f9a",
                               {"payroll", "transfer"},
                               n};
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BenchAccount::State, open, balance_cents, deposits)

// --- A store that stores nothing --------------------------------------------------------------

// Keeps only each stream's version, but validates and serializes appends as every store does
// (encode_events): what a command costs the client's CPU without the server and the network.
// Only what the command bus and bare appends use is implemented.
class NullStore final : public EventStore {
 public:
  AppendResult append(const StreamId& stream, const ExpectedVersion& /*expected*/,
                      std::vector<NewEvent> events) override {
    const auto encoded = annals::detail::encode_events(stream, events, limits_);
    std::lock_guard lock(mutex_);
    auto& version = versions_[stream.value()];
    const StreamVersion first = version + 1;
    version += static_cast<StreamVersion>(encoded.size());
    sequence_ += static_cast<std::int64_t>(encoded.size());
    return AppendResult{stream, first, version, Position(1, sequence_)};
  }
  std::vector<AppendResult> append_multi(std::vector<StreamAppend> /*appends*/) override {
    throw InternalError("NullStore: append_multi");
  }
  std::vector<RecordedEvent> read_stream(const StreamId& /*stream*/,
                                         const ReadStreamOptions& /*options*/) override {
    return {};
  }
  std::vector<RecordedEvent> read_all(const ReadAllOptions& /*options*/) override { return {}; }
  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    std::lock_guard lock(mutex_);
    const auto found = versions_.find(stream.value());
    if (found == versions_.end()) return std::nullopt;
    return found->second;
  }
  Position head_position() override { return Position::start(); }
  void set_stream_metadata(const StreamId& /*stream*/,
                           const StreamMetadata& /*metadata*/) override {
    throw InternalError("NullStore: set_stream_metadata");
  }
  std::unique_ptr<ChangeSignal> watch() override { throw InternalError("NullStore: watch"); }
  std::unique_ptr<Subscription> subscribe(SubscriptionOptions /*options*/,
                                          EventHandler /*handler*/) override {
    throw InternalError("NullStore: subscribe");
  }

 private:
  AppendLimits limits_;
  std::mutex mutex_;
  std::unordered_map<std::string, StreamVersion> versions_;
  std::int64_t sequence_ = 0;
};

// Microseconds of the calling thread's CPU per call of `step`, over `calls` calls after
// `calls / 10` untimed ones.
template <typename F>
double cpu_us_per_call(int calls, F&& step) {
  for (int i = 0; i < calls / 10; ++i) step();
  timespec start{};
  timespec end{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  for (int i = 0; i < calls; ++i) step();
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
  const double us = static_cast<double>(end.tv_sec - start.tv_sec) * 1e6 +
                    static_cast<double>(end.tv_nsec - start.tv_nsec) / 1e3;
  return us / calls;
}

// --- Helpers --------------------------------------------------------------------------------

// A CHECKPOINT before each slice, as the store benchmark does, so that no slice pays for the
// previous one's dirty pages. Skipped (once reported) when not permitted.
class Checkpointer {
 public:
  explicit Checkpointer(const std::string& conninfo) : control_(conninfo) {}
  /// WAL written and events stored so far, for WAL bytes per event over a slice (warm-up
  /// included on both counts).
  struct Usage {
    double wal_bytes = 0;
    double events = 0;
  };
  Usage usage() {
    return {std::stod(control_.scalar("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")),
            std::stod(control_.scalar("SELECT count(*) FROM annals.events"))};
  }
  static double wal_per_event(const Usage& before, const Usage& after) {
    const double events = after.events - before.events;
    return events > 0 ? (after.wal_bytes - before.wal_bytes) / events : 0.0;
  }

  void operator()() {
    if (!enabled_) return;
    try {
      control_.exec("CHECKPOINT");
    } catch (const std::exception& e) {
      report_progress("CHECKPOINT not permitted ({}); slices start without one", e.what());
      enabled_ = false;
    }
  }

 private:
  PgConnection control_;
  bool enabled_ = true;
};

struct Figure {
  std::string name;
  std::string unit;
  std::vector<double> samples;
  std::string baseline;
  std::vector<double> baseline_samples;
  double target = 0.0;  // 0: none
  std::string note;
  // Client CPU (user + system, all threads of this process) per event, for command figures.
  std::vector<double> cpu_us;
  std::vector<double> baseline_cpu_us;
  // WAL bytes per stored event (warm-up included), for command figures.
  std::vector<double> wal;
  std::vector<double> baseline_wal;
};

nlohmann::json to_json(const Figure& f) {
  const double value = median(f.samples);
  nlohmann::json out{{"name", f.name},       {"unit", f.unit},      {"value", value},
                     {"samples", f.samples}, {"baseline", nullptr}, {"baseline_value", nullptr},
                     {"ratio", nullptr},     {"target", nullptr},   {"note", f.note}};
  if (!f.baseline_samples.empty()) {
    const double base = median(f.baseline_samples);
    out["baseline"] = f.baseline;
    out["baseline_value"] = base;
    out["baseline_samples"] = f.baseline_samples;
    out["ratio"] = base > 0.0 ? value / base : 0.0;
  }
  if (f.target > 0.0) out["target"] = f.target;
  if (!f.cpu_us.empty()) out["client_cpu_us_per_event"] = median(f.cpu_us);
  if (!f.baseline_cpu_us.empty()) {
    out["baseline_client_cpu_us_per_event"] = median(f.baseline_cpu_us);
  }
  if (!f.wal.empty()) out["wal_bytes_per_event"] = median(f.wal);
  if (!f.baseline_wal.empty()) out["baseline_wal_bytes_per_event"] = median(f.baseline_wal);
  return out;
}

// Appends `count` events (an opening, then deposits) to a fresh aggregate, 100 per append.
void fill_aggregate(EventStore& store, const EventRegistry& registry, const StreamId& stream,
                    int count) {
  StreamVersion version = 0;
  std::uint64_t n = 0;
  while (version < count) {
    std::vector<NewEvent> batch;
    for (int k = 0; k < 100 && version + static_cast<StreamVersion>(batch.size()) < count; ++k) {
      batch.push_back(version == 0 && k == 0 ? registry.encode(BenchAccountOpened{"bench"})
                                             : registry.encode(BenchAccount::deposit(++n)));
    }
    version = store.append(stream, ExpectedVersion::exact(version), std::move(batch)).last_version;
  }
}

// Median milliseconds per Repository::load over `loads` loads.
double time_loads(Repository<BenchAccount>& repository, const std::string& id, int loads,
                  StreamVersion expected_version) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < loads; ++i) {
    const auto account = repository.load(id);
    if (account.version() != expected_version) {
      throw std::runtime_error("rehydration: loaded version " + std::to_string(account.version()) +
                               ", expected " + std::to_string(expected_version));
    }
  }
  const std::chrono::duration<double, std::milli> elapsed =
      std::chrono::steady_clock::now() - start;
  return elapsed.count() / loads;
}

// The command step of writer `index`: one Deposit through the bus per call.
MakeStep bus_deposits(CommandBus& bus, std::string prefix, bool shared,
                      std::shared_ptr<std::atomic<std::uint64_t>> gave_up) {
  return [&bus, prefix = std::move(prefix), shared, gave_up](int index) -> Step {
    const std::string id = shared ? prefix + "-shared" : prefix + "-" + std::to_string(index);
    bus.send(OpenBenchAccount{id});  // untimed; concurrent opens of a shared one: a no-op
    auto n = std::make_shared<std::uint64_t>(0);
    return [&bus, id, n, gave_up]() -> std::uint64_t {
      try {
        bus.send(DepositToBenchAccount{id, ++*n});
        return 1;
      } catch (const ConcurrencyError&) {
        // Still conflicting after max_attempts (shared aggregates): not counted.
        gave_up->fetch_add(1, std::memory_order_relaxed);
        return 0;
      }
    };
  };
}

struct CommandFigure {
  std::string name;
  int writers;
  bool shared;
  std::size_t cache_capacity;
  /// Snapshots every 100 events (PostgreSQL snapshot store); without the cache, each command
  /// loads its aggregate, and without snapshots that replay grows with the stream.
  bool snapshots;
  double target;
};

}  // namespace

const std::vector<std::string>& framework_figure_names() {
  static const std::vector<std::string> kNames = {
      "rehydrate_1k_replay",    "rehydrate_1k_snapshot",   "rehydrate_10k_replay",
      "rehydrate_10k_snapshot", "bus_distinct_w1",         "bus_distinct_w16",
      "bus_shared_w16",         "bus_distinct_w1_nocache", "bus_distinct_w16_nocache",
      "bus_cpu_null_store"};
  return kNames;
}

nlohmann::json run_framework_benchmarks(const std::string& conninfo,
                                        const FrameworkBenchOptions& options) {
  const std::set<std::string> only = split_names(options.only);
  const auto wanted = [&](const std::string& name) { return only.empty() || only.count(name); };
  const int rounds = std::max(1, options.rounds);
  const std::string tag = random_tag(12);

  EventRegistry registry;
  registry.register_events<BenchAccount>();
  Checkpointer checkpoint(conninfo);
  std::vector<Figure> figures;

  // --- Rehydration --------------------------------------------------------------------------
  for (const int events : {1'000, 10'000}) {
    const std::string replay_name = fmt::format("rehydrate_{}k_replay", events / 1000);
    const std::string snapshot_name = fmt::format("rehydrate_{}k_snapshot", events / 1000);
    if (!wanted(replay_name) && !wanted(snapshot_name)) continue;
    auto store = open_store(conninfo, 2, true);
    auto snapshots = postgres::make_postgres_snapshot_store({.connection_string = conninfo});
    const std::string id = fmt::format("rehydrate{}-{}", events, tag);
    const StreamId stream("benchacct-" + id);
    report_progress("framework: filling an aggregate of {} events", events);
    fill_aggregate(*store, registry, stream, events);
    Repository<BenchAccount> replaying(*store, registry);
    Repository<BenchAccount> snapshotting(*store, registry, {.snapshots = snapshots.get()});
    const auto full = replaying.load(id);
    snapshots->save(Snapshot{.stream_id = stream,
                             .version = full.version(),
                             .schema_version = 1,
                             .state = nlohmann::json(full.state())});
    Figure replay{replay_name,
                  "ms/load",
                  {},
                  "",
                  {},
                  0.0,
                  fmt::format("Repository::load of {} events, no snapshot", events)};
    Figure snapshot{
        snapshot_name,
        "ms/load",
        {},
        replay_name,
        {},
        0.0,
        "Repository::load from a snapshot at the last event (ratio: snapshot / replay)"};
    for (int r = 0; r < rounds; ++r) {
      replay.samples.push_back(time_loads(replaying, id, options.loads_per_round, events));
      snapshot.samples.push_back(time_loads(snapshotting, id, options.loads_per_round, events));
      report_progress("framework: {} round {}: replay {:.2f} ms, snapshot {:.2f} ms", replay_name,
                      r + 1, replay.samples.back(), snapshot.samples.back());
    }
    snapshot.baseline_samples = replay.samples;
    if (wanted(replay_name)) figures.push_back(replay);
    if (wanted(snapshot_name)) figures.push_back(snapshot);
  }

  const Payload payload = make_payload();

  // --- The bus's own CPU per command -------------------------------------------------------
  if (wanted("bus_cpu_null_store")) {
    Figure figure{"bus_cpu_null_store",
                  "us/command",
                  {},
                  "bare append",
                  {},
                  0.0,
                  "client CPU per command through the bus (cached aggregate) and per bare append "
                  "of the same payload, on a store that only serializes (ratio: bus / bare)"};
    constexpr int kCalls = 20'000;
    for (int r = 0; r < rounds; ++r) {
      NullStore null_store;
      CommandBus bus(null_store, registry);
      bus.handle<BenchAccount>(&OpenBenchAccount::account_id);
      bus.handle<BenchAccount>(&DepositToBenchAccount::account_id);
      const std::string id = fmt::format("cpu-{}-r{}", tag, r);
      bus.send(OpenBenchAccount{id});
      std::uint64_t n = 0;
      const auto run_bus = [&] {
        figure.samples.push_back(cpu_us_per_call(kCalls, [&] {
          (void)bus.send(DepositToBenchAccount{id, ++n});
        }));
      };
      const StreamId bare_stream("benchbare-cpu-" + id);
      StreamVersion version = 0;
      std::uint64_t counter = 0;
      const auto run_bare = [&] {
        figure.baseline_samples.push_back(cpu_us_per_call(kCalls, [&] {
          std::vector<NewEvent> events(1);
          events[0].type = payload.event_type;
          events[0].data = payload.data;
          events[0].metadata = payload.metadata;
          events[0].data["n"] = ++counter;
          version =
              null_store.append(bare_stream, ExpectedVersion::exact(version), events).last_version;
        }));
      };
      if (r % 2 == 0) {
        run_bare();
        run_bus();
      } else {
        run_bus();
        run_bare();
      }
      report_progress(
          "framework: bus_cpu_null_store round {}: bus {:.2f} us, bare append {:.2f} us", r + 1,
          figure.samples.back(), figure.baseline_samples.back());
    }
    figures.push_back(figure);
  }

  // --- Commands through the bus vs bare appends ----------------------------------------------
  const std::vector<CommandFigure> command_figures = {
      {"bus_distinct_w1", 1, false, 1024, false, 0.85},
      {"bus_distinct_w16", 16, false, 1024, false, 0.85},
      {"bus_shared_w16", 16, true, 1024, false, 0.0},
      {"bus_distinct_w1_nocache", 1, false, 0, true, 0.0},
      {"bus_distinct_w16_nocache", 16, false, 0, true, 0.0},
  };
  for (const auto& spec : command_figures) {
    if (!wanted(spec.name)) continue;
    auto store = open_store(conninfo, static_cast<std::size_t>(spec.writers), true);
    std::unique_ptr<SnapshotStore> snapshots;
    if (spec.snapshots) {
      snapshots = postgres::make_postgres_snapshot_store(
          {.connection_string = conninfo, .pool_size = static_cast<std::size_t>(spec.writers)});
    }
    Figure figure{spec.name, "events/s",  {}, fmt::format("append_w{}", spec.writers),
                  {},        spec.target, ""};
    auto gave_up = std::make_shared<std::atomic<std::uint64_t>>(0);
    for (int r = 0; r < rounds; ++r) {
      const std::string prefix = fmt::format("{}-{}-r{}", spec.name, tag, r);
      CommandBus bus(
          *store, registry,
          {.snapshots = snapshots.get(),
           .snapshot_policy = spec.snapshots ? SnapshotPolicy::every(100) : SnapshotPolicy::never(),
           .cache_capacity = spec.cache_capacity});
      bus.handle<BenchAccount>(&OpenBenchAccount::account_id);
      bus.handle<BenchAccount>(&DepositToBenchAccount::account_id);
      const auto run_bare = [&] {
        checkpoint();
        const auto before = checkpoint.usage();
        const auto slice = run_writers(
            spec.writers, options.seconds, options.warmup_seconds,
            store_append(*store, payload, 1, "benchbare-" + prefix, AppendInput::kTree));
        figure.baseline_wal.push_back(Checkpointer::wal_per_event(before, checkpoint.usage()));
        figure.baseline_samples.push_back(slice.rate());
        figure.baseline_cpu_us.push_back(slice.client_cpu_us_per_event());
      };
      const auto run_bus = [&] {
        checkpoint();
        const auto before = checkpoint.usage();
        const auto slice = run_writers(spec.writers, options.seconds, options.warmup_seconds,
                                       bus_deposits(bus, prefix, spec.shared, gave_up));
        figure.wal.push_back(Checkpointer::wal_per_event(before, checkpoint.usage()));
        figure.samples.push_back(slice.rate());
        figure.cpu_us.push_back(slice.client_cpu_us_per_event());
      };
      if (r % 2 == 0) {
        run_bare();
        run_bus();
      } else {
        run_bus();
        run_bare();
      }
      report_progress(
          "framework: {} round {}: bus {:.0f} events/s, bare append {:.0f} events/s (WAL "
          "{:.0f} / {:.0f} bytes per event)",
          spec.name, r + 1, figure.samples.back(), figure.baseline_samples.back(),
          figure.wal.back(), figure.baseline_wal.back());
    }
    figure.note = fmt::format(
        "{} caller(s), {} aggregate(s), aggregate cache {}, snapshots {}; commands given up "
        "after 5 conflicting attempts: {}",
        spec.writers, spec.shared ? "one shared" : "their own",
        spec.cache_capacity > 0 ? "on" : "off", spec.snapshots ? "every 100 events" : "off",
        gave_up->load());
    figures.push_back(figure);
  }

  nlohmann::json result{{"figures", nlohmann::json::array()}};
  for (const auto& f : figures) result["figures"].push_back(to_json(f));
  return result;
}

std::string format_framework_figures(const nlohmann::json& result) {
  std::string out =
      fmt::format("{:<26} {:>12} {:<9} {:>12} {:>7} {:>7} {:>11} {:>11}\n", "figure", "value",
                  "unit", "baseline", "ratio", "target", "cpu us/ev", "wal B/ev");
  for (const auto& f : result.at("figures")) {
    const auto number = [](const nlohmann::json& v, const char* format) {
      return v.is_null() ? std::string("-") : fmt::format(fmt::runtime(format), v.get<double>());
    };
    const auto cpu = [&](const char* key) {
      return f.contains(key) ? number(f.at(key), "{:.0f}") : std::string("-");
    };
    out +=
        fmt::format("{:<26} {:>12} {:<9} {:>12} {:>7} {:>7} {:>11} {:>11}\n",
                    f.at("name").get<std::string>(), number(f.at("value"), "{:.2f}"),
                    f.at("unit").get<std::string>(), number(f.at("baseline_value"), "{:.2f}"),
                    number(f.at("ratio"), "{:.3f}"), number(f.at("target"), "{:.2f}"),
                    cpu("client_cpu_us_per_event") + "/" + cpu("baseline_client_cpu_us_per_event"),
                    cpu("wal_bytes_per_event") + "/" + cpu("baseline_wal_bytes_per_event"));
  }
  return out;
}

}  // namespace annals::bench
