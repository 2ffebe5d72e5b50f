// annals-bench: the store's append and read throughput beside plain PostgreSQL's, measured in
// the same run, interleaved, on the same server (docs/performance.md).
//
//   annals-bench [--db URL] [--json] [--seconds N] [--rounds N] [--only NAME[,NAME]]
//                [--notify on|off] [--warmup S] [--read-events N]
//   annals-bench --long-haul [--long-haul-events N] [--long-haul-small N] [--long-haul-window N]
//                [--long-haul-samples N] [--long-haul-replay N] [--long-haul-writers N]
//                [--long-haul-reuse] [--long-haul-no-verify] [--long-haul-prewarm]
//                [--long-haul-partitioned N]
//                [--long-haul-build-only] [--projection-batch N] [--json]
//
// It drops and creates the database `annals_bench` on the server of URL (connecting to URL's
// own database to do so), migrates it, creates the ceiling table, then measures every figure
// `rounds` times, store and ceiling back to back, alternating which goes first, each slice
// after a CHECKPOINT so that neither side pays for the other's dirty pages. A figure is the
// median over rounds; its ratio is median(store) / median(ceiling) for throughputs and
// median(ceiling) / median(store) for the latency figure read_stream_1000, so that below 1
// always means the store is slower. Where plain PostgreSQL can be asked for the same rows in
// more than one way (text or binary results), every way is measured in every round and the
// best median is the ceiling.
//
// --long-haul runs only the long haul (long_haul.hpp): the same figures on a small and a large
// store built in the same run.
//
// stdout carries only the result (a table, or with --json one JSON object); progress and the
// library's log go to stderr.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/timestamp.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/inline_projections.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/runner.hpp"
#include "documents_bench.hpp"
#include "framework_bench.hpp"
#include "harness.hpp"
#include "long_haul.hpp"
#include "pg.hpp"
#include "projection_kit.hpp"
#include "projections_bench.hpp"
#include "workloads.hpp"

namespace annals::bench {
namespace {

constexpr const char* kDatabase = "annals_bench";

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Kind {
  kAppend,         // store append vs plain INSERT
  kPgNotify,       // plain INSERT + pg_notify vs plain INSERT (what NOTIFY costs PostgreSQL)
  kReadAll,        // store read_all, decoded, vs keyset pages through raw libpq (and COPY)
  kReadKeysetRaw,  // the store's keyset query through raw libpq, undecoded, vs COPY
  kVerify,         // annals::postgres::verify of the whole store vs COPY of the same rows
  kReadStream,     // latency: store read_stream of a 1,000-event stream, decoded, vs a
                   // primary-key range SELECT through raw libpq
};

// The events of read_stream_1000's stream.
constexpr std::uint64_t kStreamEvents = 1000;
// read_stream_1000's stream, appended once per run (the database is new each run).
constexpr const char* kReadStreamId = "benchread-1000";

// A figure reported as a latency (ms per read; lower is better) rather than a rate.
bool is_latency(Kind kind) { return kind == Kind::kReadStream; }

// One way of measuring plain PostgreSQL.
enum class Ceiling {
  kInsert,        // prepared INSERT in autocommit (ceiling_insert)
  kCopy,          // COPY of the first read_events events in log order
  kVerifyCopy,    // COPY of what verify reads
  kKeysetText,    // read_all's keyset pages, every field read, text results
  kKeysetBinary,  // the same, binary results
  kStreamText,    // read_stream_1000's primary-key range, every field read, text results
  kStreamBinary,  // the same, binary results
  kKeysetNative,  // read_all's keyset pages, the columns in their stored types, binary results
  kStreamNative,  // read_stream_1000's range, the columns in their stored types, binary results
};

// The result format of a read ceiling.
ResultFormat format(Ceiling ceiling) {
  switch (ceiling) {
    case Ceiling::kKeysetBinary:
    case Ceiling::kStreamBinary:
      return ResultFormat::kBinary;
    case Ceiling::kKeysetNative:
    case Ceiling::kStreamNative:
      return ResultFormat::kNative;
    default:
      return ResultFormat::kText;
  }
}

const char* ceiling_name(Ceiling ceiling) {
  switch (ceiling) {
    case Ceiling::kInsert:
      return "insert";
    case Ceiling::kCopy:
    case Ceiling::kVerifyCopy:
      return "copy";
    case Ceiling::kKeysetText:
    case Ceiling::kStreamText:
      return "text";
    case Ceiling::kKeysetBinary:
    case Ceiling::kStreamBinary:
      return "binary";
    case Ceiling::kKeysetNative:
    case Ceiling::kStreamNative:
      return "native";
  }
  return "?";
}

// What a figure measures of plain PostgreSQL: the candidates, the best of which is the
// ceiling, and a second reference reported beside it (read_all: COPY).
struct CeilingPlan {
  std::vector<Ceiling> candidates;
  std::optional<Ceiling> reference;
};

CeilingPlan ceiling_plan(Kind kind) {
  switch (kind) {
    case Kind::kAppend:
    case Kind::kPgNotify:
      return {{Ceiling::kInsert}, std::nullopt};
    case Kind::kReadAll:
      return {{Ceiling::kKeysetText, Ceiling::kKeysetBinary, Ceiling::kKeysetNative},
              Ceiling::kCopy};
    case Kind::kReadKeysetRaw:
      return {{Ceiling::kCopy}, std::nullopt};
    case Kind::kVerify:
      return {{Ceiling::kVerifyCopy}, std::nullopt};
    case Kind::kReadStream:
      return {{Ceiling::kStreamText, Ceiling::kStreamBinary, Ceiling::kStreamNative}, std::nullopt};
  }
  throw std::logic_error("unknown figure kind");
}

struct Figure {
  std::string name;
  Kind kind;
  int writers = 1;
  int batch = 1;
  /// Empty: follow --notify. Set: this figure's store always uses it.
  std::optional<bool> notify;
  /// The target for the ratio (0 = none): issue 14's, for the figures it names.
  double target = 0.0;
  /// The store's group commit of single-event appends (off: one transaction per append).
  bool group_commit = true;
  /// Append figures: how the store side is given each event's data and metadata.
  AppendInput input = AppendInput::kJsonText;
  /// Append figures: append through make_inline_projections_store with one inline read-model
  /// projection (a counter per stream), a runner following it as the docs prescribe.
  bool inline_projection = false;
};

const std::vector<Figure>& all_figures() {
  static const std::vector<Figure> kFigures = {
      {"append_w1", Kind::kAppend, 1, 1, std::nullopt, 0.9},
      {"append_w4", Kind::kAppend, 4, 1, std::nullopt, 0.9},
      {"append_w16", Kind::kAppend, 16, 1, std::nullopt, 0.9},
      {"append_batch10_w4", Kind::kAppend, 4, 10, std::nullopt, 0.85},
      {"append_batch100_w4", Kind::kAppend, 4, 100, std::nullopt, 0.85},
      // The same appends from nlohmann::json trees, so that building them stays visible.
      {"append_w1_json", Kind::kAppend, 1, 1, std::nullopt, 0.0, true, AppendInput::kTree},
      {"append_batch10_w4_json", Kind::kAppend, 4, 10, std::nullopt, 0.0, true, AppendInput::kTree},
      {"append_batch100_w4_json", Kind::kAppend, 4, 100, std::nullopt, 0.0, true,
       AppendInput::kTree},
      // One inline read-model projection (issue 15): its cost over the same ceiling.
      {"append_inline_w1", Kind::kAppend, 1, 1, std::nullopt, 0.0, true, AppendInput::kJsonText,
       true},
      {"append_inline_w4", Kind::kAppend, 4, 1, std::nullopt, 0.0, true, AppendInput::kJsonText,
       true},
      {"append_w16_notify_off", Kind::kAppend, 16, 1, false, 0.0},
      {"append_w16_group_commit_off", Kind::kAppend, 16, 1, std::nullopt, 0.0, false},
      {"pg_insert_notify_w16", Kind::kPgNotify, 16, 1, std::nullopt, 0.0},
      {"read_all", Kind::kReadAll, 1, 1, std::nullopt, 0.8},
      {"read_all_keyset_raw", Kind::kReadKeysetRaw, 1, 1, std::nullopt, 0.0},
      {"verify", Kind::kVerify, 1, 1, std::nullopt, 0.0},
      {"read_stream_1000", Kind::kReadStream, 1, 1, std::nullopt, 0.8},
  };
  return kFigures;
}

struct Options {
  std::string url;
  bool json = false;
  double seconds = 3.0;
  int rounds = 3;
  double warmup = 0.5;
  bool notify = true;
  std::uint64_t read_events = 100'000;
  bool framework = false;
  /// Framework figures named in --only (empty: all of them, when --framework).
  std::string framework_only;
  bool projections = false;
  std::size_t projection_batch = 500;
  /// Projection figures named in --only (empty: all of them, when --projections).
  std::string projections_only;
  bool documents = false;
  /// Document figures named in --only (empty: all of them, when --documents).
  std::string documents_only;
  std::vector<Figure> figures;
  /// --long-haul: only the long haul, with these options (batch_size from --projection-batch).
  bool long_haul = false;
  LongHaulOptions long_haul_options;
};

constexpr const char* kDescription =
    "Measures the annals PostgreSQL store against plain PostgreSQL on the same server, in the\n"
    "same run. Drops and recreates the database 'annals_bench' on the server of --db.\n"
    "--long-haul runs only the long haul, with the --long-haul-* flags, --projection-batch and\n"
    "--json.";

constexpr const char* kFigureNames =
    "figures: append_w1 append_w4 append_w16 append_batch10_w4 append_batch100_w4\n"
    "         append_w1_json append_batch10_w4_json append_batch100_w4_json\n"
    "         append_inline_w1 append_inline_w4\n"
    "         append_w16_notify_off append_w16_group_commit_off pg_insert_notify_w16\n"
    "         read_all read_all_keyset_raw verify read_stream_1000\n"
    "framework figures: rehydrate_1k_replay rehydrate_1k_snapshot rehydrate_10k_replay\n"
    "         rehydrate_10k_snapshot bus_distinct_w1 bus_distinct_w16 bus_shared_w16\n"
    "         bus_distinct_w1_nocache bus_distinct_w16_nocache bus_cpu_null_store\n"
    "document figures: documents_get documents_find_page (also with --documents)\n"
    "projection figures: projection_catchup_noop projection_catchup_read_model\n"
    "         projection_catchup_p1 projection_catchup_p2 projection_catchup_p4\n"
    "         projection_latency_p50 projection_latency_p99";

// A number as the bench has always read its numeric flags: any decimal text std::stod takes
// (1e6 included), at least `min`. Empty when it is not one.
std::optional<double> number_at_least(const std::string& text, double min) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used != text.size() || !(value >= min)) return std::nullopt;
  return value;
}

// A numeric flag: checked by number_at_least, then converted to the field's type (so
// `--rounds 2.5` means 2 rounds, as before the flags were declared with CLI11).
template <typename T>
void add_number(CLI::App& app, const std::string& name, T& target, double min,
                const std::string& help) {
  const CLI::Validator at_least(
      [min](std::string& text) -> std::string {
        if (number_at_least(text, min)) return {};
        return "expected a number >= " + fmt::format("{}", min) + ", got '" + text + "'";
      },
      "");
  app.add_option_function<std::string>(
         name, [&target](const std::string& text) { target = static_cast<T>(std::stod(text)); },
         help + " [>= " + fmt::format("{}", min) + "]")
      ->type_name("N")
      ->check(at_least);
}

// The command line: every flag writes into `options`; --only into `only`, resolved afterwards
// by select_figures().
void declare_options(CLI::App& app, Options& options, std::optional<std::string>& only) {
  app.description(kDescription);
  app.footer(kFigureNames);
  // A flag given twice counts once, with the last value (as the hand-written parser did).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--db", options.url, "server to use (default: $ANNALS_DATABASE_URL)")
      ->type_name("URL");
  app.add_flag("--json", options.json, "print one JSON object on stdout instead of the table");
  add_number(app, "--seconds", options.seconds, 0.1,
             "length of each measurement slice (default 3)");
  add_number(app, "--rounds", options.rounds, 1,
             "slices per side and figure; the median is reported (default 3)");
  app.add_option_function<std::string>(
         "--only", [&only](const std::string& names) { only = names; },
         "run only these figures (naming a framework or projection figure runs only the "
         "framework or projection figures named)")
      ->type_name("A,B");
  app.add_option_function<std::string>(
         "--notify", [&options](const std::string& v) { options.notify = v == "on"; },
         "the store's notify_on_append for the append figures (default on)")
      ->type_name("on|off")
      ->check(CLI::IsMember({"on", "off"}));
  app.add_flag("--framework", options.framework,
               "also run the framework figures (rehydration, command bus)");
  app.add_flag("--documents", options.documents,
               "also run the document figures (typed get and paged find vs hand-written SQL)");
  app.add_flag("--projections", options.projections,
               "also run the projection figures (catch-up, partitioned catch-up, "
               "append-to-visible latency)");
  add_number(app, "--projection-batch", options.projection_batch, 1,
             "the runner's batch size in the projection figures (default 500)");
  add_number(app, "--warmup", options.warmup, 0,
             "untimed warm-up before each write slice, in seconds (default 0.5)");
  add_number(app, "--read-events", options.read_events, 1000,
             "events per read pass, from the start of the log (default 100000)");

  auto& haul = options.long_haul_options;
  app.add_flag("--long-haul", options.long_haul,
               "only the long haul: build a small store, measure it, grow it to the large "
               "size, measure again; report both and large/small");
  add_number(app, "--long-haul-events", haul.large_events, 1000,
             "events of the large store (default 10000000)");
  add_number(app, "--long-haul-small", haul.small_events, 1000,
             "events of the small store (default 100000)");
  add_number(app, "--long-haul-window", haul.window, 1000,
             "events read by read_all and the read-model catch-up (default 1000000, or the "
             "whole store when smaller)");
  add_number(app, "--long-haul-samples", haul.samples, 10,
             "timed operations per latency figure (default 2000)");
  add_number(app, "--long-haul-replay", haul.replay, 0,
             "events of the no-op replay whose peak RSS is measured (default 0: the whole "
             "store)");
  add_number(app, "--long-haul-writers", haul.writers, 1,
             "writer threads building the store (default 4)");
  app.add_flag("--long-haul-reuse", haul.reuse,
               "keep the stores' databases after the run, and measure a store that an earlier "
               "run completed with the same size instead of building it");
  app.add_flag("--long-haul-build-only", haul.build_only,
               "build (or, with --long-haul-reuse, find) both stores; no figures");
  app.add_flag("--long-haul-no-verify", haul.skip_verify, "skip the verify figure");
  add_number(app, "--long-haul-partitioned", haul.partition_size, 1,
             "partition each store's log by ranges of N positions, in databases of their own "
             "(default: not partitioned)");
  app.add_flag("--long-haul-prewarm", haul.prewarm,
               "read each store's tables and indexes into the OS page cache before measuring "
               "it (pg_prewarm), so neither is measured from disk");
}

// What the flags mean together: the database, --long-haul alone, and the figures of --only
// (store, framework and projection figures may be named together; naming a framework or
// projection figure implies --framework or --projections and runs only those named).
// Throws: UsageError.
void select_figures(Options& options, const std::optional<std::string>& only) {
  if (options.url.empty())
    throw UsageError("no database: pass --db URL or set ANNALS_DATABASE_URL");
  if (options.long_haul) {
    if (only || options.framework || options.projections) {
      throw UsageError("--long-haul runs alone: no --only, --framework or --projections");
    }
    if (options.long_haul_options.large_events <= options.long_haul_options.small_events) {
      throw UsageError("--long-haul-events must be larger than --long-haul-small");
    }
    options.long_haul_options.batch_size = options.projection_batch;
    return;
  }
  if (!only) {
    options.figures = all_figures();
    return;
  }
  std::set<std::string> wanted;
  std::string framework_only;
  std::string projections_only;
  std::stringstream names(*only);
  for (std::string name; std::getline(names, name, ',');) {
    if (name.empty()) continue;
    const bool store_figure = std::any_of(all_figures().begin(), all_figures().end(),
                                          [&](const Figure& f) { return f.name == name; });
    const auto& fw = framework_figure_names();
    const bool framework_figure = std::find(fw.begin(), fw.end(), name) != fw.end();
    const auto& pr = projection_figure_names();
    const bool projection_figure = std::find(pr.begin(), pr.end(), name) != pr.end();
    const auto& docs = document_figure_names();
    const bool document_figure = std::find(docs.begin(), docs.end(), name) != docs.end();
    if (document_figure) {
      options.documents = true;
      options.documents_only += (options.documents_only.empty() ? "" : ",") + name;
      continue;
    }
    if (!store_figure && !framework_figure && !projection_figure) {
      throw UsageError("--only: unknown figure '" + name + "'");
    }
    if (framework_figure) {
      framework_only += (framework_only.empty() ? "" : ",") + name;
    } else if (projection_figure) {
      projections_only += (projections_only.empty() ? "" : ",") + name;
    } else {
      wanted.insert(name);
    }
  }
  if (!projections_only.empty()) {
    options.projections = true;
    options.projections_only = projections_only;
  }
  for (const auto& figure : all_figures()) {
    if (wanted.count(figure.name) != 0) options.figures.push_back(figure);
  }
  if (!framework_only.empty()) {
    options.framework = true;
    options.framework_only = framework_only;
  } else {
    options.framework_only.clear();  // --framework: all of them
  }
  if (options.figures.empty() && !options.framework && !options.projections && !options.documents) {
    throw UsageError("--only: no figure named");
  }
}

template <typename... Args>
void progress(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(stderr, "annals-bench: ");
  fmt::print(stderr, format, std::forward<Args>(args)...);
  fmt::print(stderr, "\n");
  std::fflush(stderr);
}

std::vector<double> load_average() {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) != 3) return {};
  return {load[0], load[1], load[2]};
}

std::string thousands(double value) {
  auto digits = fmt::format("{:.0f}", value);
  std::string out;
  const auto n = digits.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0 && digits[i - 1] != '-') out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// --- the run ------------------------------------------------------------------------------

// One side of a figure (the store, or one way of measuring plain PostgreSQL) over the rounds.
struct Series {
  std::vector<double> values;  // per round: events/s, or ms per read for a latency figure
  std::vector<double> cpu;     // per round: client CPU µs per event
  [[nodiscard]] double value() const { return median(values); }
  [[nodiscard]] double cpu_value() const { return median(cpu); }
};

struct Result {
  Figure figure;
  Series store;
  std::vector<std::pair<Ceiling, Series>> candidates;  // in ceiling_plan order
  std::optional<Series> reference;                     // read_all: COPY
  [[nodiscard]] bool latency() const { return is_latency(figure.kind); }
  // The candidate with the best median: the highest rate, or the lowest latency.
  [[nodiscard]] const std::pair<Ceiling, Series>& best() const {
    const auto better = [&](const auto& a, const auto& b) {
      return latency() ? a.second.value() < b.second.value() : a.second.value() > b.second.value();
    };
    return *std::min_element(candidates.begin(), candidates.end(), better);
  }
  [[nodiscard]] double value() const { return store.value(); }
  [[nodiscard]] double ceiling_value() const { return best().second.value(); }
  // The store against plain PostgreSQL's `reference` figure; above 1, the store is faster.
  [[nodiscard]] double ratio_to(double reference_value) const {
    if (latency()) return value() > 0 ? reference_value / value() : 0.0;
    return reference_value > 0 ? value() / reference_value : 0.0;
  }
  [[nodiscard]] double ratio() const { return ratio_to(ceiling_value()); }
  // The store's client CPU per event over the ceiling's: the "within 1.2x".
  [[nodiscard]] double cpu_ratio() const {
    const double ceiling_cpu = best().second.cpu_value();
    return ceiling_cpu > 0 ? store.cpu_value() / ceiling_cpu : 0.0;
  }
  [[nodiscard]] bool passes() const { return figure.target <= 0 || ratio() >= figure.target; }
};

// "1.234 ms" or "123,456 events/s".
std::string with_unit(double value, bool latency) {
  return latency ? fmt::format("{:.3f} ms", value) : thousands(value) + " events/s";
}

class Bench {
 public:
  explicit Bench(Options options) : options_(std::move(options)), payload_(make_payload()) {}

  nlohmann::json run() {
    meta_["load_before"] = load_average();
    if (options_.long_haul) {
      read_settings();
      auto long_haul = run_long_haul(options_.url, options_.long_haul_options);
      meta_["load_after"] = load_average();
      auto report = to_json();
      // The store figures' settings do not apply to the long haul (its own are in long_haul).
      for (const char* key :
           {"rounds", "seconds", "warmup_seconds", "notify_on_append", "read_events",
            "read_page_size", "checkpoint_before_slice", "database"}) {
        report["meta"].erase(key);
      }
      report["long_haul"] = std::move(long_haul);
      return report;
    }
    prepare_database();
    for (const auto& figure : options_.figures) {
      results_.push_back(measure(figure));
      const auto& r = results_.back();
      progress("{}: annals {}, ceiling {} ({}), ratio {:.2f}; client CPU {:.2f} / {:.2f} us/event",
               figure.name, with_unit(r.value(), r.latency()),
               with_unit(r.ceiling_value(), r.latency()), ceiling_name(r.best().first), r.ratio(),
               r.store.cpu_value(), r.best().second.cpu_value());
    }
    meta_["load_after"] = load_average();
    auto report = to_json();
    if (options_.framework) {
      report["framework"] = run_framework_benchmarks(conninfo_, {.seconds = options_.seconds,
                                                                 .rounds = options_.rounds,
                                                                 .warmup_seconds = options_.warmup,
                                                                 .only = options_.framework_only});
    }
    if (options_.projections) {
      prepare_reads();  // at least read_events events in the log
      report["projections"] =
          run_projection_benchmarks(conninfo_, {.rounds = options_.rounds,
                                                .events = options_.read_events,
                                                .latency_seconds = std::max(5.0, options_.seconds),
                                                .batch_size = options_.projection_batch,
                                                .only = options_.projections_only});
    }
    if (options_.documents) {
      report["documents"] = run_document_benchmarks(conninfo_, {.rounds = options_.rounds,
                                                                .seconds = options_.seconds,
                                                                .only = options_.documents_only});
    }
    return report;
  }

 private:
  void read_settings() {
    PgConnection admin(options_.url);
    for (const char* name :
         {"server_version", "synchronous_commit", "fsync", "shared_buffers", "wal_sync_method",
          "full_page_writes", "max_wal_size", "checkpoint_timeout", "max_connections"}) {
      meta_["settings"][name] = admin.scalar(std::string("SELECT current_setting('") + name + "')");
    }
  }

  void prepare_database() {
    read_settings();
    {
      PgConnection admin(options_.url);
      progress("dropping and creating database {}", kDatabase);
      admin.exec(std::string("DROP DATABASE IF EXISTS ") + kDatabase + " WITH (FORCE)");
      admin.exec(std::string("CREATE DATABASE ") + kDatabase);
    }
    conninfo_ = with_database(options_.url, kDatabase);
    const auto applied = postgres::migrate(conninfo_);
    progress("migrated {} ({} migrations); creating bench_ceiling.events", kDatabase,
             applied.size());
    control_ = std::make_unique<PgConnection>(conninfo_);
    create_ceiling_table(*control_);
    try {
      control_->exec("CHECKPOINT");
      checkpoints_ = true;
    } catch (const std::exception& e) {
      progress("CHECKPOINT not permitted ({}); slices start without one", e.what());
    }
  }

  void checkpoint() {
    if (checkpoints_) control_->exec("CHECKPOINT");
  }

  bool store_notify(const Figure& figure) const { return figure.notify.value_or(options_.notify); }

  Result measure(const Figure& figure) {
    if (figure.kind == Kind::kReadAll || figure.kind == Kind::kReadKeysetRaw ||
        figure.kind == Kind::kVerify) {
      prepare_reads();
    }
    if (figure.kind == Kind::kReadStream) prepare_stream();
    const auto plan = ceiling_plan(figure.kind);
    Result result{figure, {}, {}, std::nullopt};
    for (const auto candidate : plan.candidates)
      result.candidates.emplace_back(candidate, Series{});
    if (plan.reference) result.reference = Series{};
    // A round's slices: every plain PostgreSQL side (the candidates, then the reference) and
    // the store; on every other round in the mirrored order, so that the store goes first.
    std::vector<std::optional<Ceiling>> order(plan.candidates.begin(), plan.candidates.end());
    if (plan.reference) order.emplace_back(plan.reference);
    order.emplace_back(std::nullopt);  // the store
    const bool latency = is_latency(figure.kind);
    for (int round = 0; round < options_.rounds; ++round) {
      auto sides = order;
      if (round % 2 == 1) std::reverse(sides.begin(), sides.end());
      for (const auto& side : sides) {
        checkpoint();
        const Slice slice = side ? run_ceiling(figure, round, *side) : run_store(figure, round);
        Series& series = side ? series_of(result, *side) : result.store;
        series.values.push_back(latency ? slice.ms_per_step() : slice.rate());
        series.cpu.push_back(slice.client_cpu_us_per_event());
        const std::string label = side_label(side, plan);
        if (latency) {
          progress(
              "{} round {}/{}: {} {:.3f} ms/read ({} reads in {:.2f} s, client CPU {:.2f} "
              "us/event)",
              figure.name, round + 1, options_.rounds, label, slice.ms_per_step(), slice.steps,
              slice.seconds, slice.client_cpu_us_per_event());
        } else {
          progress(
              "{} round {}/{}: {} {} events/s ({} events in {:.2f} s, client CPU {:.1f} "
              "us/event)",
              figure.name, round + 1, options_.rounds, label, thousands(slice.rate()), slice.events,
              slice.seconds, slice.client_cpu_us_per_event());
        }
      }
    }
    return result;
  }

  // A slice's name in the progress lines.
  static std::string side_label(const std::optional<Ceiling>& side, const CeilingPlan& plan) {
    if (!side) return "annals ";
    if (side == plan.reference) return "ceiling COPY";
    if (plan.candidates.size() > 1) return fmt::format("ceiling {}", ceiling_name(*side));
    return "ceiling";
  }

  static Series& series_of(Result& result, Ceiling side) {
    for (auto& [ceiling, series] : result.candidates) {
      if (ceiling == side) return series;
    }
    if (result.reference) return *result.reference;
    throw std::logic_error("a slice of no series");
  }

  std::string prefix(const Figure& figure, int round, const char* side) const {
    return "bench-" + figure.name + "-r" + std::to_string(round) + "-" + side;
  }

  Slice run_store(const Figure& figure, int round) {
    switch (figure.kind) {
      case Kind::kAppend: {
        auto store = open_store(conninfo_, static_cast<std::size_t>(figure.writers),
                                store_notify(figure), figure.group_commit);
        if (figure.inline_projection) return run_inline_store(figure, round, *store);
        return run_writers(
            figure.writers, options_.seconds, options_.warmup,
            store_append(*store, payload_, figure.batch, prefix(figure, round, "s"), figure.input));
      }
      case Kind::kPgNotify:
        return run_writers(
            figure.writers, options_.seconds, options_.warmup,
            ceiling_insert(conninfo_, payload_, figure.batch, prefix(figure, round, "n"), true));
      case Kind::kReadAll: {
        auto store = open_store(conninfo_, 1, options_.notify);
        return run_reads(options_.seconds, store_reader(*store, options_.read_events));
      }
      case Kind::kReadKeysetRaw: {
        PgConnection connection(conninfo_);
        return run_reads(options_.seconds, raw_keyset_reader(connection, options_.read_events));
      }
      case Kind::kVerify:
        return run_reads(options_.seconds, [&] { return verify_pass(conninfo_); });
      case Kind::kReadStream: {
        auto store = open_store(conninfo_, 1, options_.notify);
        return run_reads(options_.seconds,
                         store_stream_reader(*store, StreamId(kReadStreamId), kStreamEvents));
      }
    }
    throw std::logic_error("unknown figure kind");
  }

  // Appends through an inline-projections store over `store`, with one CountingReadModel
  // (one increment per event) applied inline and a runner following it, which moves its
  // checkpoint past what was applied inline (docs/read-models.md, "Inline projections").
  // The slice's streams form a category of their own, the projection's filter, so that its
  // runner skips the events of earlier figures instead of catching up on them during the slice.
  Slice run_inline_store(const Figure& figure, int round, EventStore& store) {
    const auto name = "inline_" + figure.name + "_r" + std::to_string(round);
    auto projection_store = projections::make_postgres_projection_store(
        {.connection_string = conninfo_, .pool_size = 2});
    auto counter = std::make_shared<CountingReadModel>(
        name, name + "_counts", EventFilter{.category = name, .event_types = {}});
    auto inline_store = projections::make_inline_projections_store(
        store, *projection_store, {counter},
        {.connection_string = conninfo_,
         .pool_size = static_cast<std::size_t>(figure.writers),
         .notify_on_append = store_notify(figure)});
    projections::ProjectionRunner runner(store, *projection_store, {.owner = "bench"});
    runner.add(counter);
    runner.start();
    auto slice =
        run_writers(figure.writers, options_.seconds, options_.warmup,
                    store_append(*inline_store, payload_, figure.batch, name, figure.input));
    runner.stop();
    return slice;
  }

  Slice run_ceiling(const Figure& figure, int round, Ceiling ceiling) {
    switch (ceiling) {
      case Ceiling::kInsert:
        return run_writers(
            figure.writers, options_.seconds, options_.warmup,
            ceiling_insert(conninfo_, payload_, figure.batch, prefix(figure, round, "c"), false));
      case Ceiling::kCopy: {
        PgConnection connection(conninfo_);
        return run_reads(options_.seconds, [&] {
          return checked_pass(ceiling_copy_pass(connection, options_.read_events));
        });
      }
      case Ceiling::kVerifyCopy: {
        PgConnection connection(conninfo_);
        return run_reads(options_.seconds, [&] { return verify_copy_pass(connection); });
      }
      case Ceiling::kKeysetText:
      case Ceiling::kKeysetBinary:
      case Ceiling::kKeysetNative: {
        PgConnection connection(conninfo_);
        return run_reads(options_.seconds,
                         ceiling_keyset_reader(connection, options_.read_events, format(ceiling)));
      }
      case Ceiling::kStreamText:
      case Ceiling::kStreamBinary:
      case Ceiling::kStreamNative: {
        PgConnection connection(conninfo_);
        return run_reads(options_.seconds, ceiling_stream_reader(connection, kReadStreamId,
                                                                 kStreamEvents, format(ceiling)));
      }
    }
    throw std::logic_error("unknown ceiling");
  }

  std::uint64_t checked_pass(std::uint64_t events) const {
    if (events != options_.read_events) {
      throw std::runtime_error("a read pass returned " + std::to_string(events) +
                               " events instead of " + std::to_string(options_.read_events));
    }
    return events;
  }

  // Before the first read figure: at least read_events events in the log (topped up with
  // batch appends), then VACUUM ANALYZE so both sides read a maintained table.
  void prepare_reads() {
    if (reads_prepared_) return;
    reads_prepared_ = true;
    const auto count = std::stoull(control_->scalar("SELECT count(*) FROM annals.events"));
    if (count < options_.read_events) {
      progress("filling the log: {} events present, {} needed", count, options_.read_events);
      auto store = open_store(conninfo_, 1, false);
      fill_log(*store, payload_, options_.read_events - count);
    }
    control_->exec("VACUUM (ANALYZE) annals.events");
    meta_["log_events_at_read"] =
        std::stoull(control_->scalar("SELECT count(*) FROM annals.events"));
  }

  // Before read_stream_1000: its stream of 1,000 events of the usual payload, appended once
  // (untimed) in batches of 100, then VACUUM (ANALYZE) so both sides read a maintained table.
  void prepare_stream() {
    if (stream_prepared_) return;
    stream_prepared_ = true;
    progress("appending {} events to stream {}", kStreamEvents, kReadStreamId);
    auto store = open_store(conninfo_, 1, false);
    fill_stream(*store, payload_, StreamId(kReadStreamId), kStreamEvents);
    control_->exec("VACUUM (ANALYZE) annals.events");
    meta_["read_stream_events"] = kStreamEvents;
  }

  nlohmann::json to_json() {
    nlohmann::json figures = nlohmann::json::array();
    for (const auto& r : results_) {
      const auto& [best_ceiling, best] = r.best();
      nlohmann::json f = {
          {"name", r.figure.name},
          {"value", r.value()},
          {"unit", r.latency() ? "ms" : "events/s"},
          {"ceiling", r.ceiling_value()},
          {"ratio", r.ratio()},
          {"samples", {{"annals", r.store.values}, {"ceiling", best.values}}},
          {"client_cpu_us_per_event",
           {{"annals", r.store.cpu_value()}, {"ceiling", best.cpu_value()}}},
          {"ceiling_client_cpu_us_per_event", best.cpu_value()},
          {"client_cpu_ratio", r.cpu_ratio()},
      };
      if (r.candidates.size() > 1) {
        // Which way of asking plain PostgreSQL was the ceiling, and what each one measured.
        f["ceiling_format"] = ceiling_name(best_ceiling);
        for (const auto& [ceiling, series] : r.candidates) {
          f["ceiling_candidates"][ceiling_name(ceiling)] = {
              {"value", series.value()},
              {"samples", series.values},
              {"client_cpu_us_per_event", series.cpu_value()}};
        }
      }
      if (r.reference) {
        f["ceiling_copy"] = r.reference->value();
        f["ratio_copy"] = r.ratio_to(r.reference->value());
        f["samples"]["ceiling_copy"] = r.reference->values;
        f["client_cpu_us_per_event"]["ceiling_copy"] = r.reference->cpu_value();
      }
      if (r.latency()) f["events_per_read"] = kStreamEvents;
      if (r.figure.target > 0) {
        f["target"] = r.figure.target;
        f["pass"] = r.passes();
      }
      if (r.figure.kind == Kind::kAppend) {
        f["writers"] = r.figure.writers;
        f["events_per_append"] = r.figure.batch;
        f["notify"] = store_notify(r.figure);
        f["store_input"] = append_input_name(r.figure.input);
      }
      figures.push_back(std::move(f));
    }
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    meta_["host"] = host;
    meta_["cores"] = std::thread::hardware_concurrency();
    meta_["rounds"] = options_.rounds;
    meta_["seconds"] = options_.seconds;
    meta_["warmup_seconds"] = options_.warmup;
    meta_["notify_on_append"] = options_.notify;
    meta_["read_events"] = options_.read_events;
    meta_["read_page_size"] = 1000;
    meta_["data_bytes"] = payload_.data_text(1).size();
    meta_["metadata_bytes"] = payload_.metadata_text.size();
    meta_["checkpoint_before_slice"] = checkpoints_;
    meta_["database"] = kDatabase;
    meta_["libpq_version"] = PQlibVersion();
#ifdef NDEBUG
    meta_["build"] = "release";
#else
    meta_["build"] = "debug";
#endif
    meta_["finished_at"] = annals::format_timestamp(std::chrono::system_clock::now());
    return {{"figures", std::move(figures)}, {"meta", meta_}};
  }

  Options options_;
  Payload payload_;
  std::string conninfo_;
  std::unique_ptr<PgConnection> control_;
  bool checkpoints_ = false;
  bool reads_prepared_ = false;
  bool stream_prepared_ = false;
  std::vector<Result> results_;
  nlohmann::json meta_ = nlohmann::json::object();
};

std::string load_text(const nlohmann::json& load) {
  if (!load.is_array() || load.size() != 3) return "n/a";
  return fmt::format("{:.2f} {:.2f} {:.2f}", load[0].get<double>(), load[1].get<double>(),
                     load[2].get<double>());
}

void print_table(const nlohmann::json& report) {
  const auto& meta = report["meta"];
  const auto& s = meta["settings"];
  fmt::print(
      "annals-bench: PostgreSQL {} | synchronous_commit={} fsync={} shared_buffers={} "
      "wal_sync_method={} | {} cores | {} rounds x {} s | notify_on_append={} | "
      "load {} -> {}\n",
      s["server_version"].get<std::string>(), s["synchronous_commit"].get<std::string>(),
      s["fsync"].get<std::string>(), s["shared_buffers"].get<std::string>(),
      s["wal_sync_method"].get<std::string>(), meta["cores"].get<unsigned>(),
      meta["rounds"].get<int>(), meta["seconds"].get<double>(),
      meta["notify_on_append"].get<bool>() ? "on" : "off", load_text(meta["load_before"]),
      load_text(meta["load_after"]));
  // "cpu" columns: the client's CPU µs per event, the store's and the ceiling's, and the
  // store's over the ceiling's. "COPY": read_all's second reference and the ratio to it.
  constexpr const char* kRow =
      "{:<27} | {:>10} | {:<8} | {:>10} | {:>5} | {:>10} | {:>5} | {:>7} | {:>7} | {:>5} | {}\n";
  fmt::print(kRow, "name", "annals", "unit", "ceiling", "ratio", "COPY", "ratio", "cpu us",
             "ceil us", "cpu x", "target");
  fmt::print(
      "{:-<27}-+-{:->10}-+-{:-<8}-+-{:->10}-+-{:->5}-+-{:->10}-+-{:->5}-+-{:->7}-+-{:->7}-+-"
      "{:->5}-+-{:-<12}\n",
      "", "", "", "", "", "", "", "", "", "", "");
  std::vector<std::string> notes;
  for (const auto& f : report["figures"]) {
    const bool latency = f["unit"] == "ms";
    const auto number = [&](double value) {
      return latency ? fmt::format("{:.3f}", value) : thousands(value);
    };
    std::string target;
    if (f.contains("target")) {
      target = fmt::format(">= {:.2f} {}", f["target"].get<double>(),
                           f["pass"].get<bool>() ? "pass" : "FAIL");
    }
    const bool copy = f.contains("ceiling_copy");
    fmt::print(kRow, f["name"].get<std::string>(), number(f["value"].get<double>()),
               f["unit"].get<std::string>(), number(f["ceiling"].get<double>()),
               fmt::format("{:.2f}", f["ratio"].get<double>()),
               copy ? number(f["ceiling_copy"].get<double>()) : "",
               copy ? fmt::format("{:.2f}", f["ratio_copy"].get<double>()) : "",
               fmt::format("{:.2f}", f["client_cpu_us_per_event"]["annals"].get<double>()),
               fmt::format("{:.2f}", f["ceiling_client_cpu_us_per_event"].get<double>()),
               fmt::format("{:.2f}", f["client_cpu_ratio"].get<double>()), target);
    if (f.contains("ceiling_format")) {
      std::string measured;
      for (const auto& [name, candidate] : f["ceiling_candidates"].items()) {
        measured +=
            fmt::format("{}{} {} {}", measured.empty() ? "" : ", ", name,
                        number(candidate["value"].get<double>()), f["unit"].get<std::string>());
      }
      notes.push_back(fmt::format("{}: ceiling = {} results ({})", f["name"].get<std::string>(),
                                  f["ceiling_format"].get<std::string>(), measured));
    }
  }
  for (const auto& note : notes) fmt::print("{}\n", note);
}

void print_long_haul_header(const nlohmann::json& meta) {
  const auto& s = meta["settings"];
  fmt::print(
      "annals-bench --long-haul: PostgreSQL {} | synchronous_commit={} fsync={} "
      "shared_buffers={} | {} {} cores | {} build | finished {} | load {} -> {}\n",
      s["server_version"].get<std::string>(), s["synchronous_commit"].get<std::string>(),
      s["fsync"].get<std::string>(), s["shared_buffers"].get<std::string>(),
      meta["host"].get<std::string>(), meta["cores"].get<unsigned>(),
      meta["build"].get<std::string>(), meta["finished_at"].get<std::string>(),
      load_text(meta["load_before"]), load_text(meta["load_after"]));
}

int run(int argc, char** argv) {
  Options options;
  if (const char* url = std::getenv("ANNALS_DATABASE_URL")) options.url = url;
  std::optional<std::string> only;
  CLI::App app("", "annals-bench");
  declare_options(app, options, only);
  try {
    app.parse(argc, argv);
    select_figures(options, only);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help: the flags on stdout
    fmt::print(stderr, "annals-bench: {}\nRun annals-bench --help for the flags and figures.\n",
               e.what());
    return 2;
  } catch (const UsageError& e) {
    fmt::print(stderr, "annals-bench: {}\nRun annals-bench --help for the flags and figures.\n",
               e.what());
    return 2;
  }
  // The library logs through spdlog's "annals" logger; keep stdout for the result.
  auto logger = spdlog::stderr_color_mt("annals");
  spdlog::set_default_logger(logger);

  const bool json = options.json;
  Bench bench(std::move(options));
  const auto report = bench.run();
  if (json) {
    fmt::print("{}\n", report.dump());
  } else if (report.contains("long_haul")) {
    print_long_haul_header(report["meta"]);
    fmt::print("{}", format_long_haul(report["long_haul"]));
  } else {
    print_table(report);
    if (report.contains("framework")) {
      fmt::print("\n{}", format_framework_figures(report["framework"]));
    }
    if (report.contains("projections")) {
      fmt::print("\n{}", format_projection_figures(report["projections"]));
    }
    if (report.contains("documents")) {
      fmt::print("\n{}", format_document_figures(report["documents"]));
    }
  }
  return 0;
}

}  // namespace
}  // namespace annals::bench

int main(int argc, char** argv) {
  try {
    return annals::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "annals-bench: %s\n", e.what());
    return 1;
  }
}
