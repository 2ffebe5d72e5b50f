// annals-bench --long-haul (see long_haul.hpp and docs/performance.md, "Long haul").
#include "long_haul.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "annals/eventstore/event_store.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/verify.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "harness.hpp"
#include "peak_rss.hpp"
#include "pg.hpp"
#include "projection_kit.hpp"
#include "store_builder.hpp"
#include "workloads.hpp"

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kEventsPerStream = 100;
constexpr std::size_t kReadPage = 1000;
constexpr auto kCatchUpTimeout = std::chrono::hours(2);
// Targets on large / small (see long_haul.hpp).
constexpr double kLatencyTarget = 1.25;
constexpr double kThroughputTarget = 0.8;
constexpr double kRssTarget = 1.10;

enum class Better { kLower, kHigher };

// One figure of the comparison: its key in a store's "figures", unit, which way is better and
// the target on large / small.
struct FigureSpec {
  const char* name;
  const char* unit;
  Better better;
  double target;
  const char* note;
};

const std::vector<FigureSpec>& figure_specs() {
  static const std::vector<FigureSpec> kSpecs = {
      {"append_p50", "ms", Better::kLower, kLatencyTarget,
       "single-event append to a random stream, one writer"},
      {"append_p99", "ms", Better::kLower, kLatencyTarget, ""},
      {"read_stream_p50", "ms", Better::kLower, kLatencyTarget,
       "read_stream of a whole random stream (100 events)"},
      {"read_stream_p99", "ms", Better::kLower, kLatencyTarget, ""},
      {"read_all", "events/s", Better::kHigher, kThroughputTarget,
       "pages of 1,000 from the start of the log over the window"},
      {"catchup_read_model", "events/s", Better::kHigher, kThroughputTarget,
       "new read-model projection over the window"},
      {"verify", "events/s", Better::kHigher, kThroughputTarget, "the whole store"},
      {"replay", "events/s", Better::kHigher, kThroughputTarget,
       "no-op projection from the start of the log (the whole store unless --long-haul-replay)"},
      {"replay_peak_rss", "MiB", Better::kLower, kRssTarget,
       "peak RSS of this process during the replay"},
  };
  return kSpecs;
}

std::vector<double> load_now() {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) return {};
  return {load[0], load[1], load[2]};
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

template <typename... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
  report_progress("annals-bench: long haul: {}", fmt::format(format, std::forward<Args>(args)...));
}

// p50, p99 and max of latencies in ms.
nlohmann::json summary(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  return {{"p50", quantile(ms, 0.50)},
          {"p99", quantile(ms, 0.99)},
          {"max", ms.empty() ? 0.0 : ms.back()},
          {"samples", ms.size()}};
}

// What the server did for the single-event appends, read from its statistics: WAL records,
// full-page images and bytes (pg_stat_wal, cluster-wide: nothing else runs meanwhile) and
// blocks read from outside shared_buffers (pg_stat_database, this database). A full-page image
// is written for the first change of a page after a checkpoint, so appends spread over more
// pages write more of them; that is the suspected cause of a higher append p99 in a larger
// store (docs/performance.md, "Long haul").
struct ServerCounters {
  double wal_records = 0;
  double wal_fpi = 0;
  double wal_bytes = 0;
  double blocks_read = 0;
};

// Read after the appending store is closed: a backend publishes all its statistics when it
// exits, but while it lives only when idle and at most once a second (PostgreSQL 15's
// pgstat_report_stat), so a live connection's last appends could be missing.
ServerCounters server_counters(PgConnection& connection) {
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the backends' exit
  const auto row = connection.query(
      "SELECT w.wal_records, w.wal_fpi, w.wal_bytes, d.blks_read FROM pg_stat_wal w, "
      "pg_stat_database d WHERE d.datname = current_database()");
  return {.wal_records = std::stod(row.text(0, 0)),
          .wal_fpi = std::stod(row.text(0, 1)),
          .wal_bytes = std::stod(row.text(0, 2)),
          .blocks_read = std::stod(row.text(0, 3))};
}

nlohmann::json counters_per_append(const ServerCounters& before, const ServerCounters& after,
                                   double appends) {
  const auto per = [&](double a, double b) { return appends > 0 ? (b - a) / appends : 0.0; };
  return {{"wal_records", per(before.wal_records, after.wal_records)},
          {"wal_fpi", per(before.wal_fpi, after.wal_fpi)},
          {"wal_bytes", per(before.wal_bytes, after.wal_bytes)},
          {"blocks_read", per(before.blocks_read, after.blocks_read)}};
}

// Marks a completed build in the store's database (outside schema annals), for reuse.
constexpr const char* kMarkerTable = "public.long_haul_store";

class LongHaul {
 public:
  LongHaul(std::string server_url, LongHaulOptions options)
      : server_url_(std::move(server_url)),
        options_(std::move(options)),
        payload_(make_payload()),
        tag_(random_tag(6)) {
    build_options_.writers = options_.writers;
    build_options_.events_per_stream = kEventsPerStream;
  }

  nlohmann::json run() {
    const auto small_streams = streams_for(options_.small_events);
    const auto large_streams = streams_for(options_.large_events);
    if (large_streams <= small_streams) {
      throw std::runtime_error("the large store must hold more events than the small one");
    }
    nlohmann::json stores = nlohmann::json::array();
    const std::string suffix = options_.partition_size > 0 ? "_part" : "";
    for (const auto& [database, streams] :
         {std::pair{"annals_bench_lh_small" + suffix, small_streams},
          std::pair{"annals_bench_lh_large" + suffix, large_streams}}) {
      stores.push_back(prepare_store(database, streams));
    }
    for (auto& store : stores) {
      if (options_.build_only) break;
      conninfo_ = with_database(server_url_, store["database"].get<std::string>());
      store["load_before_figures"] = load_now();
      store["figures"] = measure(store["streams"].get<std::uint64_t>());
      store["load_after_figures"] = load_now();
    }
    if (!options_.reuse) drop_databases(stores);
    nlohmann::json result{{"stores", stores}, {"options", options_json()}};
    if (!options_.build_only) {
      result["figures"] = compare(stores[0]["figures"], stores[1]["figures"]);
    }
    return result;
  }

 private:
  static std::uint64_t streams_for(std::uint64_t events) {
    return (events + kEventsPerStream - 1) / kEventsPerStream;
  }

  nlohmann::json options_json() const {
    return {{"small_events", options_.small_events},
            {"large_events", options_.large_events},
            {"window", options_.window},
            {"samples", options_.samples},
            {"writers", options_.writers},
            {"batch_size", options_.batch_size},
            {"events_per_stream", kEventsPerStream},
            {"streams_per_append", build_options_.streams_per_append},
            {"read_page", kReadPage},
            {"replay", options_.replay},
            {"reuse", options_.reuse},
            {"skip_verify", options_.skip_verify},
            {"prewarm", options_.prewarm},
            {"partition_size", options_.partition_size},
            {"build_only", options_.build_only}};
  }

  // --- building ----------------------------------------------------------------------------

  // The store of `streams` streams in `database`: found complete (reuse) or built afresh.
  nlohmann::json prepare_store(const std::string& database, std::uint64_t streams) {
    nlohmann::json store{{"database", database},
                         {"events", streams * kEventsPerStream},
                         {"streams", streams},
                         {"reused", false},
                         {"build", nullptr}};
    conninfo_ = with_database(server_url_, database);
    if (options_.reuse && completed_store(streams)) {
      say("{}: reusing the {} events built by an earlier run", database,
          streams * kEventsPerStream);
      store["reused"] = true;
      return store;
    }
    {
      PgConnection admin(server_url_);
      say("dropping and creating database {}", database);
      admin.exec("DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
      admin.exec("CREATE DATABASE " + database);
    }
    if (options_.partition_size > 0) {
      const auto size = static_cast<std::int64_t>(options_.partition_size);
      (void)postgres::migrate(conninfo_, {.partitioned_log = size});
      // Every range the build reaches, created before it (a deployment runs `annals
      // partitions --ensure` from a scheduler instead).
      const auto ranges = streams * kEventsPerStream / options_.partition_size + 2;
      (void)postgres::ensure_log_partitions(
          conninfo_, static_cast<int>(std::min<std::uint64_t>(ranges, 1'000'000)));
      store["partitions"] = postgres::list_log_partitions(conninfo_).size();
    } else {
      (void)postgres::migrate(conninfo_);
    }
    store["build"] = build(streams);
    PgConnection(conninfo_).exec(std::string("CREATE TABLE ") + kMarkerTable +
                                 " (streams bigint NOT NULL, events_per_stream int NOT NULL); "
                                 "INSERT INTO " +
                                 kMarkerTable + " VALUES (" + std::to_string(streams) + ", " +
                                 std::to_string(kEventsPerStream) + ")");
    return store;
  }

  // True when the database of conninfo_ holds a store completed with `streams` streams.
  bool completed_store(std::uint64_t streams) const {
    try {
      PgConnection connection(conninfo_);
      const auto marker =
          connection.query(std::string("SELECT streams, events_per_stream FROM ") + kMarkerTable);
      return marker.rows() == 1 && std::stoull(marker.text(0, 0)) == streams &&
             std::stoi(marker.text(0, 1)) == kEventsPerStream;
    } catch (const std::runtime_error&) {
      return false;  // no such database, or no marker: an unfinished or foreign store
    }
  }

  nlohmann::json build(std::uint64_t streams) {
    nlohmann::json out;
    out["load_before"] = load_now();
    say("building {} streams ({} events)", streams, streams * kEventsPerStream);
    const auto built = build_streams(conninfo_, payload_, 0, streams, build_options_);
    out["events"] = built.events;
    out["appends"] = built.appends;
    out["seconds"] = built.seconds;
    out["events_per_second"] = built.rate();
    out["writers"] = build_options_.writers;
    out["load_after"] = load_now();
    say("built {} events in {:.1f} s ({:.0f} events/s); VACUUM (ANALYZE) and CHECKPOINT",
        built.events, built.seconds, built.rate());
    PgConnection control(conninfo_);
    const auto start = Clock::now();
    control.exec("VACUUM (ANALYZE) annals.events");
    control.exec("CHECKPOINT");
    out["maintenance_seconds"] = seconds_since(start);
    out["database_bytes"] =
        std::stoull(control.scalar("SELECT pg_database_size(current_database())"));
    return out;
  }

  void drop_databases(const nlohmann::json& stores) const {
    PgConnection admin(server_url_);
    for (const auto& store : stores) {
      admin.exec("DROP DATABASE IF EXISTS " + store["database"].get<std::string>() +
                 " WITH (FORCE)");
    }
  }

  // --- measuring ---------------------------------------------------------------------------

  // Reads every table and index of schema annals once, into the OS page cache; seconds taken.
  double prewarm(const std::string& label) const {
    say("{} events: prewarming the store's tables and indexes (pg_prewarm 'read')", label);
    const auto start = Clock::now();
    PgConnection connection(conninfo_);
    // In schema public: the store's schema holds only what it ships, which verify checks.
    connection.exec("CREATE EXTENSION IF NOT EXISTS pg_prewarm SCHEMA public");
    const auto blocks = connection.scalar(
        "SELECT sum(pg_prewarm(c.oid, 'read')) FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE n.nspname = 'annals' AND c.relkind IN ('r', 'i')");
    const auto seconds = seconds_since(start);
    say("{} events: prewarmed {} blocks in {:.1f} s", label, blocks, seconds);
    return seconds;
  }

  nlohmann::json measure(std::uint64_t streams) {
    streams_ = streams;
    const auto events = streams * kEventsPerStream;
    const auto label = std::to_string(events);
    auto store = open_store(conninfo_, 1, true);
    auto projection_store =
        projections::make_postgres_projection_store({.connection_string = conninfo_});
    std::mt19937_64 rng(events);  // the same picks for a store of the same size
    nlohmann::json out;
    if (options_.prewarm) out["prewarm_seconds"] = prewarm(label);

    say("{} events: single-event appends", label);
    PgConnection counters(conninfo_);
    // Every store's appends start right after a checkpoint, as after its build: the first change
    // of each page after a checkpoint writes a full-page image to the WAL, so without one a
    // store measured again soon after an earlier run (same picks) would skip them.
    try {
      counters.exec("CHECKPOINT");
    } catch (const std::runtime_error& e) {
      say("{} events: CHECKPOINT not permitted ({}); appends start without one", label, e.what());
    }
    const auto before = server_counters(counters);
    auto append = summary(append_latencies(*open_store(conninfo_, 1, true), streams, rng));
    // The timed appends and the untimed ones before them (latencies()'s warm-up).
    const auto appends = static_cast<double>(options_.samples + std::max(1, options_.samples / 10));
    append["server_per_append"] = counters_per_append(before, server_counters(counters), appends);
    const auto& server = append["server_per_append"];
    say("{} events: per append {:.2f} WAL records, {:.3f} full-page images, {:.0f} WAL bytes, "
        "{:.3f} blocks read",
        label, server["wal_records"].get<double>(), server["wal_fpi"].get<double>(),
        server["wal_bytes"].get<double>(), server["blocks_read"].get<double>());
    out["append_p50"] = append["p50"];
    out["append_p99"] = append["p99"];
    out["append"] = append;
    say("{} events: append p50 {:.2f} ms, p99 {:.2f} ms", label, append["p50"].get<double>(),
        append["p99"].get<double>());

    say("{} events: one-stream reads", label);
    const auto read = summary(read_stream_latencies(*store, streams, rng));
    out["read_stream_p50"] = read["p50"];
    out["read_stream_p99"] = read["p99"];
    out["read_stream"] = read;
    say("{} events: read_stream p50 {:.2f} ms, p99 {:.2f} ms", label, read["p50"].get<double>(),
        read["p99"].get<double>());

    const auto window = std::min(options_.window, events);
    say("{} events: read_all over {} events", label, window);
    const auto [read_seconds, window_end] = read_all_window(*store, window);
    out["read_all"] = static_cast<double>(window) / read_seconds;
    out["window"] = window;

    say("{} events: read-model catch-up over {} events", label, window);
    const auto model = std::make_shared<CountingReadModel>(
        fmt::format("lh-model-{}-{}", tag_, label), fmt::format("lh_counts_{}_{}", tag_, label));
    out["catchup_read_model"] =
        static_cast<double>(window) / time_catch_up(*store, *projection_store, model, window_end,
                                                    options_.batch_size, kCatchUpTimeout);

    say("{} events: read_all {:.0f} events/s, read-model catch-up {:.0f} events/s", label,
        out["read_all"].get<double>(), out["catchup_read_model"].get<double>());

    std::uint64_t log_events = 0;
    if (options_.skip_verify) {
      out["verify"] = nullptr;
    } else {
      say("{} events: verify", label);
      const auto [verified, verify_per_second] = measure_verify();
      out["verify"] = verify_per_second;
      log_events = verified;
      say("{} events: verify {:.0f} events/s", label, verify_per_second);
    }

    PgConnection control(conninfo_);
    if (log_events == 0) {
      log_events = std::stoull(control.scalar("SELECT count(*) FROM annals.events"));
    }
    out["log_events"] = log_events;
    const auto replayed = options_.replay == 0 ? log_events : std::min(options_.replay, log_events);
    say("{} events: no-op replay of {} events, measuring RSS", label, replayed);
    const auto target =
        replayed < log_events ? nth_position(control, replayed) : store->head_position();
    const auto replay = measure_replay(*store, *projection_store, label, target);
    out["replay"] = static_cast<double>(replayed) / replay.seconds;
    out["replay_events"] = replayed;
    out["replay_peak_rss"] = static_cast<double>(replay.rss.peak_kib()) / 1024.0;
    out["replay_rss"] = {
        {"start_mib", static_cast<double>(replay.rss.start_kib) / 1024.0},
        {"sampled_peak_mib", static_cast<double>(replay.rss.sampled_peak_kib) / 1024.0},
        {"hwm_mib", static_cast<double>(replay.rss.hwm_kib) / 1024.0},
        {"hwm_reset", replay.rss.hwm_reset}};
    say("{} events: replay {:.0f} events/s, peak RSS {:.1f} MiB (from {:.1f})", label,
        out["replay"].get<double>(), out["replay_peak_rss"].get<double>(),
        out["replay_rss"]["start_mib"].get<double>());
    return out;
  }

  // Calls `operation` samples / 10 times untimed, then `samples` times timed; returns ms each.
  template <typename Operation>
  std::vector<double> latencies(Operation&& operation) const {
    for (int i = 0; i < std::max(1, options_.samples / 10); ++i) operation();
    std::vector<double> ms;
    ms.reserve(static_cast<std::size_t>(options_.samples));
    for (int i = 0; i < options_.samples; ++i) {
      const auto start = Clock::now();
      operation();
      ms.push_back(seconds_since(start) * 1000.0);
    }
    return ms;
  }

  std::vector<double> append_latencies(EventStore& store, std::uint64_t streams,
                                       std::mt19937_64& rng) {
    std::uniform_int_distribution<std::uint64_t> pick(0, streams - 1);
    return latencies([&] {
      NewEvent event;
      event.type = payload_.event_type;
      event.data = payload_.data;
      event.data["n"] = ++appended_;
      event.metadata = payload_.metadata;
      (void)store.append(StreamId(built_stream_id(build_options_, pick(rng))),
                         ExpectedVersion::any(), {std::move(event)});
    });
  }

  std::vector<double> read_stream_latencies(EventStore& store, std::uint64_t streams,
                                            std::mt19937_64& rng) const {
    std::uniform_int_distribution<std::uint64_t> pick(0, streams - 1);
    return latencies([&] {
      const StreamId stream(built_stream_id(build_options_, pick(rng)));
      if (store.read_stream(stream).size() < static_cast<std::size_t>(kEventsPerStream)) {
        throw std::runtime_error("stream " + stream.value() + " is shorter than it was built");
      }
    });
  }

  // Seconds to read the log's first `window` events, and the position of the last of them.
  static std::pair<double, Position> read_all_window(EventStore& store, std::uint64_t window) {
    const auto start = Clock::now();
    Position after = Position::start();
    std::uint64_t read = 0;
    while (read < window) {
      const auto page = store.read_all({.after = after,
                                        .max_count = static_cast<std::size_t>(
                                            std::min<std::uint64_t>(kReadPage, window - read))});
      if (page.empty()) throw std::runtime_error("read_all: the log ended early");
      read += page.size();
      after = page.back().position;
    }
    return {seconds_since(start), after};
  }

  // Events in the log and verify's events/s: passes until verify_seconds have passed (the
  // first pass warms up and is not counted when the store is within the window).
  std::pair<std::uint64_t, double> measure_verify() const {
    const auto pass = [&] { return verify_pass(conninfo_); };
    auto events = pass_events_if_small(pass);  // warm-up
    std::uint64_t verified = 0;
    const auto start = Clock::now();
    do {
      events = pass();
      verified += events;
    } while (seconds_since(start) < options_.verify_seconds);
    return {events, static_cast<double>(verified) / seconds_since(start)};
  }

  // A warm-up pass for a store that fits in the window; a large store's first pass is its
  // measurement (one pass of it already takes long).
  template <typename Pass>
  std::uint64_t pass_events_if_small(Pass&& pass) const {
    const auto events = streams_ * kEventsPerStream;
    return events <= options_.window ? pass() : 0;
  }

  struct Replay {
    double seconds = 0;
    PeakRss rss;
  };

  // Replays the log up to `head` into a new no-op projection.
  Replay measure_replay(EventStore& store, projections::ProjectionStore& projection_store,
                        const std::string& label, Position head) {
    const auto projection =
        std::make_shared<NoopProjection>(fmt::format("lh-replay-{}-{}", tag_, label));
    PeakRssMeter meter;
    Replay replay;
    replay.seconds = time_catch_up(store, projection_store, projection, head, options_.batch_size,
                                   kCatchUpTimeout);
    replay.rss = meter.stop();
    return replay;
  }

  // --- comparing ---------------------------------------------------------------------------

  static nlohmann::json compare(const nlohmann::json& small, const nlohmann::json& large) {
    nlohmann::json figures = nlohmann::json::array();
    for (const auto& spec : figure_specs()) {
      if (small.at(spec.name).is_null() || large.at(spec.name).is_null()) {
        figures.push_back({{"name", spec.name}, {"unit", spec.unit}, {"skipped", true}});
        continue;
      }
      const double s = small.at(spec.name).get<double>();
      const double l = large.at(spec.name).get<double>();
      const double ratio = s > 0.0 ? l / s : 0.0;
      const bool pass = spec.better == Better::kLower ? ratio <= spec.target : ratio >= spec.target;
      figures.push_back(
          {{"name", spec.name},
           {"unit", spec.unit},
           {"small", s},
           {"large", l},
           {"ratio", ratio},
           {"target",
            fmt::format("{} {:.2f}", spec.better == Better::kLower ? "<=" : ">=", spec.target)},
           {"pass", pass},
           {"note", spec.note}});
    }
    return figures;
  }

  std::string server_url_;
  /// The database of the store being built or measured.
  std::string conninfo_;
  LongHaulOptions options_;
  Payload payload_;
  std::string tag_;
  StoreBuildOptions build_options_;
  /// Streams of the store being measured.
  std::uint64_t streams_ = 0;
  std::uint64_t appended_ = 0;
};

std::string with_commas(double value) {
  auto digits = fmt::format("{:.0f}", value);
  std::string out;
  const auto n = digits.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0 && digits[i - 1] != '-') out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string format_value(double value, const std::string& unit) {
  if (unit == "events/s") return with_commas(value);
  return fmt::format("{:.2f}", value);
}

std::string format_load(const nlohmann::json& load) {
  if (!load.is_array() || load.size() != 3) return "n/a";
  return fmt::format("{:.2f} {:.2f} {:.2f}", load[0].get<double>(), load[1].get<double>(),
                     load[2].get<double>());
}

}  // namespace

nlohmann::json run_long_haul(const std::string& server_url, const LongHaulOptions& options) {
  return LongHaul(server_url, options).run();
}

std::string format_long_haul(const nlohmann::json& result) {
  std::string out;
  for (const auto& store : result.at("stores")) {
    const auto events = with_commas(store.at("events").get<double>());
    const auto& b = store.at("build");
    if (b.is_null()) {
      out += fmt::format("store of {} events ({}): reused, built by an earlier run\n", events,
                         store.at("database").get<std::string>());
      continue;
    }
    out += fmt::format(
        "store of {} events ({}): built in {:.1f} s ({} events/s, {} appends, {} writers), load "
        "{} -> {}; VACUUM+CHECKPOINT {:.1f} s; database {:.0f} MiB\n",
        events, store.at("database").get<std::string>(), b.at("seconds").get<double>(),
        with_commas(b.at("events_per_second").get<double>()),
        with_commas(b.at("appends").get<double>()), b.at("writers").get<int>(),
        format_load(b.at("load_before")), format_load(b.at("load_after")),
        b.at("maintenance_seconds").get<double>(),
        b.at("database_bytes").get<double>() / 1048576.0);
  }
  if (!result.contains("figures")) return out;
  const auto& stores = result.at("stores");
  out += fmt::format("load during figures: small {} -> {}, large {} -> {}\n",
                     format_load(stores[0].at("load_before_figures")),
                     format_load(stores[0].at("load_after_figures")),
                     format_load(stores[1].at("load_before_figures")),
                     format_load(stores[1].at("load_after_figures")));
  const auto small_label = with_commas(stores[0].at("events").get<double>());
  const auto large_label = with_commas(stores[1].at("events").get<double>());
  out += fmt::format("{:<19} | {:<8} | {:>11} | {:>11} | {:>5} | {}\n", "figure", "unit",
                     small_label, large_label, "ratio", "target (large/small)");
  out += fmt::format("{:-<19}-+-{:-<8}-+-{:->11}-+-{:->11}-+-{:->5}-+-{:-<20}\n", "", "", "", "",
                     "", "");
  for (const auto& f : result.at("figures")) {
    const auto unit = f.at("unit").get<std::string>();
    if (f.contains("skipped")) {
      out += fmt::format("{:<19} | {:<8} | {:>11} | {:>11} | {:>5} |\n",
                         f.at("name").get<std::string>(), unit, "skipped", "skipped", "-");
      continue;
    }
    out += fmt::format(
        "{:<19} | {:<8} | {:>11} | {:>11} | {:>5.2f} | {} {}\n", f.at("name").get<std::string>(),
        unit, format_value(f.at("small").get<double>(), unit),
        format_value(f.at("large").get<double>(), unit), f.at("ratio").get<double>(),
        f.at("target").get<std::string>(), f.at("pass").get<bool>() ? "pass" : "FAIL");
  }
  return out;
}

}  // namespace annals::bench
