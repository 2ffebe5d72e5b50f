// metrics-bench: what instrumentation costs an append (docs/performance.md, "Metrics").
//
//   metrics-bench [appends]      (default 200,000; the PostgreSQL part: appends / 50)
//
// For each sink (none; a sink whose methods do nothing, i.e. the library's own work; the
// Prometheus adapter, when built) it appends single events to the in-memory store and reports
// the best of 5 runs in ns per append; then the sink calls an append makes (two counter
// adds and one histogram observation), alone. With ANNALS_DATABASE_URL set (a server to
// use), it also appends to the PostgreSQL store without and with the Prometheus sink,
// alternating, and reports the median µs per append: the sink's cost against a round trip. It
// drops and recreates the database annals_metrics_bench on that server for this (as
// annals-bench does with annals_bench); nothing else is touched.
// Not run by scripts/bench; build it in release mode (cmake --preset release).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <pqxx/pqxx>
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/metrics.hpp"

#include "annals/postgres/postgres_event_store.hpp"
#ifdef ANNALS_BENCH_PROMETHEUS
#include <prometheus/registry.h>

#include "annals/prometheus/prometheus_sink.hpp"
#endif

namespace {

using Clock = std::chrono::steady_clock;

class NothingSink final : public annals::MetricsSink {
 public:
  void add(annals::CounterId, const annals::MetricLabels&, std::uint64_t) override {}
  void set(annals::GaugeId, const annals::MetricLabels&, double) override {}
  void observe(annals::HistogramId, const annals::MetricLabels&, double,
               std::string_view) override {}
};

struct Candidate {
  std::string name;
  std::function<std::shared_ptr<annals::MetricsSink>()> make;
};

std::vector<Candidate> candidates() {
  std::vector<Candidate> out{
      {"no sink", [] { return std::shared_ptr<annals::MetricsSink>(); }},
      {"no-op sink", [] { return std::make_shared<NothingSink>(); }},
  };
#ifdef ANNALS_BENCH_PROMETHEUS
  out.push_back({"prometheus sink", [] {
                   return annals::prometheus::make_prometheus_sink(
                       std::make_shared<prometheus::Registry>());
                 }});
#endif
  return out;
}

double ns_per(Clock::duration elapsed, long count) {
  return static_cast<double>(
             std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()) /
         static_cast<double>(count);
}

double in_memory_append(const std::shared_ptr<annals::MetricsSink>& sink, long appends) {
  auto store = annals::make_in_memory_event_store({.metrics = sink});
  const std::vector<annals::StreamId> streams{
      annals::StreamId("bench-1"), annals::StreamId("bench-2"), annals::StreamId("bench-3")};
  const auto started = Clock::now();
  for (long i = 0; i < appends; ++i) {
    store->append(streams[static_cast<std::size_t>(i % 3)], annals::ExpectedVersion::any(),
                  {annals::NewEvent{.type = "Benched", .data = {{"n", i}}}});
  }
  return ns_per(Clock::now() - started, appends);
}

double sink_calls(const std::shared_ptr<annals::MetricsSink>& sink, long appends) {
  if (!sink) return 0;
  const annals::MetricLabels store{.store = "memory"};
  const annals::MetricLabels ok{.store = "memory", .outcome = "ok"};
  const auto started = Clock::now();
  for (long i = 0; i < appends; ++i) {
    sink->add(annals::CounterId::kAppends, ok, 1);
    sink->add(annals::CounterId::kAppendedEvents, store, 1);
    sink->observe(annals::HistogramId::kAppendDuration, store, 0.0001, {});
  }
  return ns_per(Clock::now() - started, appends);
}

double best_of(int runs, const std::function<double()>& run) {
  double best = 1e300;
  for (int i = 0; i < runs; ++i) best = std::min(best, run());
  return best;
}

// A fresh, migrated database annals_metrics_bench on the server of `url` (a postgresql:// URL
// ending in /<database>); returns its URL.
std::string scratch_database(const std::string& url) {
  {
    pqxx::connection admin(url);
    pqxx::nontransaction tx(admin);
    tx.exec0("DROP DATABASE IF EXISTS annals_metrics_bench");
    tx.exec0("CREATE DATABASE annals_metrics_bench");
  }
  const std::string scratch = url.substr(0, url.rfind('/') + 1) + "annals_metrics_bench";
  annals::postgres::migrate(scratch);
  return scratch;
}

void postgres_part(const std::string& server_url, long appends) {
  const std::string url = scratch_database(server_url);
  std::printf(
      "\nPostgreSQL store (%s), %ld single-event appends per run, median of 5 runs "
      "per sink, alternating:\n",
      url.c_str(), appends);
  const auto all = candidates();
  std::vector<std::vector<double>> micros(all.size());
  for (int round = 0; round < 5; ++round) {
    for (std::size_t c = 0; c < all.size(); ++c) {
      auto store = annals::postgres::make_postgres_event_store(
          {.connection_string = url, .metrics = all[c].make()});
      const annals::StreamId stream("metrics-bench-" + std::to_string(std::rand()));
      const auto started = Clock::now();
      for (long i = 0; i < appends; ++i) {
        store->append(stream, annals::ExpectedVersion::any(),
                      {annals::NewEvent{.type = "Benched", .data = {{"n", i}}}});
      }
      micros[c].push_back(ns_per(Clock::now() - started, appends) / 1000.0);
    }
  }
  for (std::size_t c = 0; c < all.size(); ++c) {
    auto& v = micros[c];
    std::sort(v.begin(), v.end());
    std::printf("  %-16s %8.1f us/append (runs: %.1f .. %.1f)\n", all[c].name.c_str(), v[2],
                v.front(), v.back());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long appends = argc > 1 ? std::atol(argv[1]) : 200'000;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("in-memory store, %ld single-event appends, best of 5 runs:\n", appends);
  for (const auto& candidate : candidates()) {
    const double append = best_of(5, [&] { return in_memory_append(candidate.make(), appends); });
    const auto sink = candidate.make();
    const double calls = best_of(5, [&] { return sink_calls(sink, appends); });
    std::printf("  %-16s %8.1f ns/append   sink calls alone: %6.1f ns/append\n",
                candidate.name.c_str(), append, calls);
  }
  if (const char* url = std::getenv("ANNALS_DATABASE_URL"); url != nullptr && *url != '\0') {
    postgres_part(url, std::max(1L, appends / 50));
  }
  return 0;
}
