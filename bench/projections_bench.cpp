// annals-bench, projection figures (see projections_bench.hpp and
// docs/performance.md).
#include "projections_bench.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/event_store.hpp"
#include "annals/projections/partitions.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/projections/projection.hpp"
#include "annals/projections/runner.hpp"
#include "harness.hpp"
#include "pg.hpp"
#include "projection_kit.hpp"
#include "workloads.hpp"

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;
using projections::ProjectionRunner;

struct Figure {
  std::string name;
  std::string unit;
  std::vector<double> samples;
  std::string baseline;
  std::vector<double> baseline_samples;
  /// Target on the value (events/s: at least; ms: at most); 0: none.
  double target = 0.0;
  bool lower_is_better = false;
  std::string note;
};

nlohmann::json to_json(const Figure& f) {
  const double value = median(f.samples);
  nlohmann::json out{{"name", f.name},       {"unit", f.unit},      {"value", value},
                     {"samples", f.samples}, {"baseline", nullptr}, {"baseline_value", nullptr},
                     {"ratio", nullptr},     {"target", nullptr},   {"pass", nullptr},
                     {"note", f.note}};
  if (!f.baseline_samples.empty()) {
    const double base = median(f.baseline_samples);
    out["baseline"] = f.baseline;
    out["baseline_value"] = base;
    out["baseline_samples"] = f.baseline_samples;
    out["ratio"] = base > 0.0 ? value / base : 0.0;
  }
  if (f.target > 0.0) {
    out["target"] = f.target;
    out["pass"] = f.lower_is_better ? value <= f.target : value >= f.target;
  }
  return out;
}

// Seconds for read_all to read the log's first `events` events in pages of `page_size`.
double time_read_all(EventStore& store, std::uint64_t events, std::size_t page_size) {
  const auto start = Clock::now();
  Position after = Position::start();
  std::uint64_t read = 0;
  while (read < events) {
    const auto page = store.read_all(
        {.after = after,
         .max_count = static_cast<std::size_t>(std::min<std::uint64_t>(page_size, events - read))});
    if (page.empty()) throw std::runtime_error("read_all: the log ended early");
    read += page.size();
    after = page.back().position;
  }
  const std::chrono::duration<double> elapsed = Clock::now() - start;
  return elapsed.count();
}

struct LatencyRound {
  std::vector<double> latencies_ms;  // one per append
  double appends_per_second = 0;
};

// `writers` threads append single events at `rate` appends/s in all for `seconds` to their own
// streams of category `category`, while `runner` keeps projection `name` live; one checker per
// writer waits (wait_for) for each of its appends in order and records the time from the append
// returning to its commit in the read model.
LatencyRound measure_latency(EventStore& store, ProjectionRunner& runner, const std::string& name,
                             const std::string& category, const Payload& payload, int writers,
                             double rate, double seconds) {
  struct Ack {
    Position position;
    Clock::time_point at;
  };
  struct Lane {
    std::mutex mutex;
    std::condition_variable ready;
    std::vector<Ack> acks;
    bool done = false;
    std::vector<double> latencies_ms;
  };
  std::vector<Lane> lanes(static_cast<std::size_t>(writers));
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(static_cast<double>(writers) / rate));
  const auto start = Clock::now() + std::chrono::milliseconds(20);
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::atomic<std::uint64_t> appended{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  const auto record_error = [&] {
    std::lock_guard lock(error_mutex);
    if (!error) error = std::current_exception();
    failed = true;
  };

  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      auto& lane = lanes[static_cast<std::size_t>(w)];
      try {
        const StreamId stream(category + "-" + std::to_string(w));
        StreamVersion version = 0;
        // Writer w starts its schedule w / writers of an interval late: evenly spread.
        auto next = start + interval * w / writers;
        for (std::uint64_t n = 1; next < end && !failed; ++n, next += interval) {
          std::this_thread::sleep_until(next);  // pacing: the schedule, not a synchronization
          NewEvent event;
          event.type = payload.event_type;
          event.data = payload.data;
          event.data["n"] = n;
          event.metadata = payload.metadata;
          const auto result =
              store.append(stream, ExpectedVersion::exact(version), {std::move(event)});
          const auto acked = Clock::now();
          version = result.last_version;
          appended.fetch_add(1);
          {
            std::lock_guard lock(lane.mutex);
            lane.acks.push_back({result.position, acked});
          }
          lane.ready.notify_one();
        }
      } catch (...) {
        record_error();
      }
      {
        std::lock_guard lock(lane.mutex);
        lane.done = true;
      }
      lane.ready.notify_one();
    });
    threads.emplace_back([&, w] {
      auto& lane = lanes[static_cast<std::size_t>(w)];
      std::size_t next = 0;
      try {
        for (;;) {
          Ack ack;
          {
            std::unique_lock lock(lane.mutex);
            lane.ready.wait(lock, [&] { return next < lane.acks.size() || lane.done; });
            if (next >= lane.acks.size()) return;
            ack = lane.acks[next++];
          }
          if (!runner.wait_for(name, ack.position, std::chrono::seconds(30))) {
            throw std::runtime_error("projection " + name + " did not apply an append within 30 s");
          }
          const std::chrono::duration<double, std::milli> latency = Clock::now() - ack.at;
          lane.latencies_ms.push_back(latency.count());
        }
      } catch (...) {
        record_error();
      }
    });
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  LatencyRound round;
  for (auto& lane : lanes) {
    round.latencies_ms.insert(round.latencies_ms.end(), lane.latencies_ms.begin(),
                              lane.latencies_ms.end());
  }
  round.appends_per_second = static_cast<double>(appended.load()) / seconds;
  return round;
}

// Seconds for `runners` runners, each with stores and connections of its own (standing in for
// as many processes), to catch a new read-model projection of `partitions` partitions up to
// `target`: from the first start() until every partition's stored checkpoint has passed it.
// With 1 partition the projection is unpartitioned (one runner).
double time_partitioned_catch_up(const std::string& conninfo, int partitions,
                                 const std::string& name, const std::string& table, Position target,
                                 std::size_t batch_size) {
  struct Member {
    std::unique_ptr<EventStore> events;
    std::unique_ptr<projections::ProjectionStore> store;
    std::unique_ptr<ProjectionRunner> runner;
  };
  std::vector<Member> members;
  for (int k = 0; k < partitions; ++k) {
    Member m;
    m.events = open_store(conninfo, 2, true);
    m.store = projections::make_postgres_projection_store(
        {.connection_string = conninfo, .pool_size = static_cast<std::size_t>(partitions) + 2});
    m.runner = std::make_unique<ProjectionRunner>(
        *m.events, *m.store,
        projections::RunnerOptions{.owner = fmt::format("{}-runner-{}", name, k),
                                   .acquire_interval = std::chrono::milliseconds(10),
                                   .poll_interval = std::chrono::milliseconds(100)});
    m.runner->add(std::make_shared<CountingReadModel>(name, table),
                  {.batch_size = batch_size, .partitions = partitions});  // prepares: not timed
    members.push_back(std::move(m));
  }
  std::vector<std::string> rows;
  for (int k = 0; k < partitions; ++k) {
    rows.push_back(partitions == 1 ? name : projections::partition_name(name, k, partitions));
  }
  // A store of its own for watching the checkpoints.
  const auto watcher =
      projections::make_postgres_projection_store({.connection_string = conninfo, .pool_size = 1});
  auto& store = *watcher;
  const auto start = Clock::now();
  for (auto& m : members) m.runner->start();
  const auto deadline = start + std::chrono::minutes(10);
  const auto all_reached = [&] {
    return std::all_of(rows.begin(), rows.end(),
                       [&](const std::string& row) { return store.checkpoint(row) >= target; });
  };
  while (!all_reached()) {
    if (Clock::now() > deadline)
      throw std::runtime_error("projection " + name + " did not catch up");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polling the stored checkpoints
  }
  const std::chrono::duration<double> elapsed = Clock::now() - start;
  for (auto& m : members) m.runner->stop();
  return elapsed.count();
}

// projection_catchup_p1/p2/p4 (see projections_bench.hpp), appended to `figures` when wanted.
void partitioned_figures(const std::string& conninfo, PgConnection& control,
                         const ProjectionBenchOptions& options, int rounds, const std::string& tag,
                         const std::function<bool(const std::string&)>& wanted,
                         std::vector<Figure>& figures) {
  const std::vector<int> counts = {1, 2, 4};
  if (std::any_of(counts.begin(), counts.end(),
                  [&](int p) { return wanted(fmt::format("projection_catchup_p{}", p)); })) {
    const Position target = nth_position(control, options.events);
    const auto events = static_cast<double>(options.events);
    std::vector<Figure> parts;
    parts.reserve(counts.size());
    for (const int p : counts) {
      parts.push_back(Figure{
          fmt::format("projection_catchup_p{}", p),
          "events/s",
          {},
          p == 1 ? "" : "projection_catchup_p1",
          {},
          0.0,
          false,
          fmt::format(
              "a new read-model projection (one ReadModel::increment per event) as {} "
              "partition(s) run by {} runner(s) with their own stores and connections in one "
              "process (standing in for processes), applying the log's first {} events in "
              "batches of {}; every partition reads the whole log and drops other partitions' "
              "events; timed from the first start() until every partition's checkpoint passed "
              "the target (rebalancing at the start included); baseline: 1 partition",
              p, p, options.events, options.batch_size)});
    }
    for (int r = 0; r < rounds; ++r) {
      // Alternate the order between rounds so that no count always runs on a warmer cache.
      for (std::size_t i = 0; i < counts.size(); ++i) {
        const std::size_t at = r % 2 == 0 ? i : counts.size() - 1 - i;
        const int p = counts[at];
        const std::string name = fmt::format("bench-part{}-{}-r{}", p, tag, r);
        parts[at].samples.push_back(
            events / time_partitioned_catch_up(conninfo, p, name,
                                               fmt::format("bench_pcounts_{}_p{}_r{}", tag, p, r),
                                               target, options.batch_size));
        report_progress("projections: {} round {}: {:.0f} events/s", parts[at].name, r + 1,
                        parts[at].samples.back());
      }
    }
    for (std::size_t i = 0; i < counts.size(); ++i) {
      if (i > 0) parts[i].baseline_samples = parts[0].samples;
      if (wanted(parts[i].name)) figures.push_back(parts[i]);
    }
  }
}

}  // namespace

const std::vector<std::string>& projection_figure_names() {
  static const std::vector<std::string> kNames = {
      "projection_catchup_noop", "projection_catchup_read_model", "projection_catchup_p1",
      "projection_catchup_p2",   "projection_catchup_p4",         "projection_latency_p50",
      "projection_latency_p99"};
  return kNames;
}

nlohmann::json run_projection_benchmarks(const std::string& conninfo,
                                         const ProjectionBenchOptions& options) {
  const std::set<std::string> only = split_names(options.only);
  const auto wanted = [&](const std::string& name) { return only.empty() || only.count(name); };
  const int rounds = std::max(1, options.rounds);
  const std::string tag = random_tag(8);
  const Payload payload = make_payload();
  std::vector<Figure> figures;

  auto store = open_store(conninfo, 4, true);
  auto projection_store =
      projections::make_postgres_projection_store({.connection_string = conninfo});
  PgConnection control(conninfo);

  // --- Catch-up ------------------------------------------------------------------------------
  const bool noop = wanted("projection_catchup_noop");
  const bool read_model = wanted("projection_catchup_read_model");
  if (noop || read_model) {
    const Position target = nth_position(control, options.events);
    const auto events = static_cast<double>(options.events);
    const std::string base_note = fmt::format(
        "a new projection applying the log's first {} events, batches of {}, checkpoints in "
        "the PostgreSQL projection store; baseline: read_all of the same events in pages of {}",
        options.events, options.batch_size, options.batch_size);
    Figure noop_figure{"projection_catchup_noop",
                       "events/s",
                       {},
                       "read_all",
                       {},
                       0.0,
                       false,
                       "no-op in-process projection; " + base_note};
    Figure model_figure{"projection_catchup_read_model",
                        "events/s",
                        {},
                        "read_all",
                        {},
                        20'000.0,
                        false,
                        "read-model projection, one ReadModel::increment per event; " + base_note};
    for (int r = 0; r < rounds; ++r) {
      const auto read = [&](Figure& figure) {
        figure.baseline_samples.push_back(
            events / time_read_all(*store, options.events, options.batch_size));
      };
      const auto project = [&](Figure& figure, bool model) {
        const std::string name = fmt::format("bench-{}-{}-r{}", model ? "model" : "noop", tag, r);
        std::shared_ptr<projections::Projection> projection;
        if (model) {
          projection =
              std::make_shared<CountingReadModel>(name, fmt::format("bench_counts_{}_r{}", tag, r));
        } else {
          projection = std::make_shared<NoopProjection>(name);
        }
        figure.samples.push_back(events / time_catch_up(*store, *projection_store, projection,
                                                        target, options.batch_size));
      };
      for (const bool model : {false, true}) {
        if (model ? !read_model : !noop) continue;
        Figure& figure = model ? model_figure : noop_figure;
        if (r % 2 == 0) {
          read(figure);
          project(figure, model);
        } else {
          project(figure, model);
          read(figure);
        }
        report_progress("projections: {} round {}: {:.0f} events/s, read_all {:.0f} events/s",
                        figure.name, r + 1, figure.samples.back(), figure.baseline_samples.back());
      }
    }
    if (noop) figures.push_back(noop_figure);
    if (read_model) figures.push_back(model_figure);
  }

  // --- Partitioned catch-up: 1, 2 and 4 partitions, one runner each -------------------------
  partitioned_figures(conninfo, control, options, rounds, tag, wanted, figures);

  // --- Append-to-visible latency ---------------------------------------------------------------
  if (wanted("projection_latency_p50") || wanted("projection_latency_p99")) {
    std::vector<double> all;
    std::vector<double> p50s;
    std::vector<double> p99s;
    std::vector<double> rates;
    for (int r = 0; r < rounds; ++r) {
      const std::string category = fmt::format("benchlat{}r{}", tag, r);
      const std::string name = "bench-latency-" + category;
      ProjectionRunner runner(*store, *projection_store,
                              {.poll_interval = std::chrono::milliseconds(1000)});
      runner.add(std::make_shared<CountingReadModel>(name, "bench_latency_" + category,
                                                     EventFilter{.category = category}),
                 {.batch_size = options.batch_size});
      runner.start();
      // Live first: the new projection scans the log for its category.
      if (!runner.wait_for(name, store->head_position(), std::chrono::minutes(5))) {
        throw std::runtime_error("projection " + name + " did not become live");
      }
      auto round = measure_latency(*store, runner, name, category, payload, options.writers,
                                   options.rate, options.latency_seconds);
      runner.stop();
      std::sort(round.latencies_ms.begin(), round.latencies_ms.end());
      p50s.push_back(quantile(round.latencies_ms, 0.50));
      p99s.push_back(quantile(round.latencies_ms, 0.99));
      rates.push_back(round.appends_per_second);
      all.insert(all.end(), round.latencies_ms.begin(), round.latencies_ms.end());
      report_progress(
          "projections: latency round {}: {:.0f} appends/s, p50 {:.1f} ms, p99 {:.1f} ms, max "
          "{:.1f} ms ({} appends)",
          r + 1, round.appends_per_second, p50s.back(), p99s.back(),
          round.latencies_ms.empty() ? 0.0 : round.latencies_ms.back(), round.latencies_ms.size());
    }
    std::sort(all.begin(), all.end());
    const std::string note = fmt::format(
        "append acknowledged -> read-model projection committed (ProjectionRunner::wait_for), "
        "{} writers at {:.0f} appends/s in all for {:.0f} s per round; achieved {:.0f} "
        "appends/s (median of rounds); value over every append of every round; samples: per "
        "round",
        options.writers, options.rate, options.latency_seconds, median(rates));
    if (wanted("projection_latency_p50")) {
      figures.push_back(
          Figure{"projection_latency_p50", "ms", {quantile(all, 0.50)}, "", {}, 0.0, true, note});
      figures.back().note += fmt::format(" {}", nlohmann::json(p50s).dump());
    }
    if (wanted("projection_latency_p99")) {
      figures.push_back(
          Figure{"projection_latency_p99", "ms", {quantile(all, 0.99)}, "", {}, 50.0, true, note});
      figures.back().note += fmt::format(" {}", nlohmann::json(p99s).dump());
    }
  }

  nlohmann::json result{{"figures", nlohmann::json::array()}};
  for (const auto& f : figures) result["figures"].push_back(to_json(f));
  return result;
}

std::string format_projection_figures(const nlohmann::json& result) {
  std::string out = fmt::format("{:<30} {:>12} {:<9} {:>12} {:>7} {:>12}\n", "figure", "value",
                                "unit", "read_all", "ratio", "target");
  for (const auto& f : result.at("figures")) {
    const auto number = [](const nlohmann::json& v, const char* format) {
      return v.is_null() ? std::string("-") : fmt::format(fmt::runtime(format), v.get<double>());
    };
    std::string target = "-";
    if (!f.at("target").is_null()) {
      const bool lower = f.at("unit").get<std::string>() == "ms";
      target = fmt::format("{} {:.0f} {}", lower ? "<=" : ">=", f.at("target").get<double>(),
                           f.at("pass").get<bool>() ? "pass" : "FAIL");
    }
    out += fmt::format("{:<30} {:>12} {:<9} {:>12} {:>7} {:>12}\n", f.at("name").get<std::string>(),
                       number(f.at("value"), "{:.1f}"), f.at("unit").get<std::string>(),
                       number(f.at("baseline_value"), "{:.0f}"), number(f.at("ratio"), "{:.3f}"),
                       target);
  }
  return out;
}

}  // namespace annals::bench
