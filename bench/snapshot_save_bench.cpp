// snapshot-save-bench: what binding snapshots to the event chain (migration 0006)
// costs a snapshot save. Times the store's save statement (event-hash probe + server-side
// digest) against the statement it replaced (a plain upsert), interleaved in the same run on
// one connection, for a small and a 16 KB state. docs/performance.md records a run.
//
//   snapshot-save-bench --db URL [--saves N] [--rounds N] [--async-commit on|off]
//
// With --async-commit on the session sets synchronous_commit = off, so that the WAL flush of
// each autocommitted save (which dominates on a busy disk) does not hide the statement's own
// cost.
//
// Migrates the database of --db (annals::postgres::migrate), then writes only snapshot rows
// of fresh "benchsnap-*" streams (plus one event each).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "annals/postgres/postgres_event_store.hpp"
#include "snapshot_sql.hpp"

namespace {

// The save statement before migration 0006 (no event hash, no digest): the baseline.
constexpr const char* kUnboundSave =
    "INSERT INTO annals.snapshots AS s (stream_id, stream_version, schema_version, state)"
    " VALUES ($1, $2, $3, $4::jsonb)"
    " ON CONFLICT (stream_id) DO UPDATE"
    " SET stream_version = EXCLUDED.stream_version, schema_version = EXCLUDED.schema_version,"
    "     state = EXCLUDED.state, taken_at = now()"
    " WHERE s.schema_version <> EXCLUDED.schema_version"
    "    OR s.stream_version <= EXCLUDED.stream_version";

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Microseconds per save of `saves` saves of `state` to `stream` at version 1.
double time_saves(pqxx::connection& c, const char* statement, const std::string& stream,
                  const std::string& state, int saves) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < saves; ++i) {
    pqxx::nontransaction tx(c);
    tx.exec_prepared0(statement, stream, std::int64_t{1}, 1, state);
  }
  const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
  return took.count() / saves;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url =
      std::getenv("ANNALS_DATABASE_URL") != nullptr ? std::getenv("ANNALS_DATABASE_URL") : "";
  int saves = 3000;
  int rounds = 5;
  bool async_commit = false;
  CLI::App app(
      "The cost of binding snapshots to the event chain: the store's snapshot save\n"
      "against a plain upsert, interleaved (docs/performance.md).",
      "snapshot-save-bench");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--db", url, "server and database to use (default: $ANNALS_DATABASE_URL)")
      ->type_name("URL");
  app.add_option("--saves", saves, "saves per timed slice")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--rounds", rounds, "slices per statement; the median is reported")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option_function<std::string>(
         "--async-commit", [&async_commit](const std::string& v) { async_commit = v == "on"; },
         "synchronous_commit = off for the session, so the WAL flush does not hide the "
         "statement's cost (default off)")
      ->type_name("on|off")
      ->check(CLI::IsMember({"on", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints --help, or the error
    return code == 0 ? 0 : 2;
  }
  if (url.empty()) {
    std::cerr << "snapshot-save-bench: no database: pass --db URL or set ANNALS_DATABASE_URL\n";
    return 2;
  }
  const std::string tag = std::to_string(std::random_device{}());
  (void)annals::postgres::migrate(url);
  auto store = annals::postgres::make_postgres_event_store({.connection_string = url});
  pqxx::connection c(url);
  if (async_commit) pqxx::nontransaction(c).exec0("SET synchronous_commit = off");
  c.prepare("bound", annals::postgres::snapshot_sql::kSave);
  c.prepare("unbound", kUnboundSave);

  nlohmann::json small = {{"status", "open"}, {"owner", "Ada Lovelace"}, {"balance", 123456}};
  nlohmann::json large = {{"owner", "Ada"}, {"history", nlohmann::json::array()}};
  while (large.dump().size() < 16 * 1024) large["history"].push_back({{"amount", 1234567}});

  std::cout << fmt::format("{:<10} {:>12} {:>12} {:>7}\n", "state", "unbound us", "bound us",
                           "ratio");
  for (const auto& [name, state] : {std::pair{"small", small}, std::pair{"16KB", large}}) {
    const std::string text = state.dump();
    const annals::StreamId bound_stream("benchsnap-b" + tag + name);
    (void)store->append(bound_stream, annals::ExpectedVersion::no_stream(), {{.type = "e"}});
    const std::string unbound_stream = "benchsnap-u" + tag + name;
    std::vector<double> unbound, bound;
    (void)time_saves(c, "bound", bound_stream.value(), text, saves / 10);  // warm-up
    (void)time_saves(c, "unbound", unbound_stream, text, saves / 10);
    for (int r = 0; r < rounds; ++r) {  // alternating which goes first
      if (r % 2 == 1) bound.push_back(time_saves(c, "bound", bound_stream.value(), text, saves));
      unbound.push_back(time_saves(c, "unbound", unbound_stream, text, saves));
      if (r % 2 == 0) bound.push_back(time_saves(c, "bound", bound_stream.value(), text, saves));
    }
    std::cout << fmt::format("{:<10} {:>12.1f} {:>12.1f} {:>7.3f}\n", name, median(unbound),
                             median(bound), median(bound) / median(unbound));
  }
  return 0;
}
