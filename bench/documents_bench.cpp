// annals-bench, document figures (see documents_bench.hpp and docs/read-side.md).
#include "documents_bench.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "annals/projections/document_reader.hpp"
#include "annals/projections/documents.hpp"
#include "annals/projections/postgres/postgres_document_reader.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "harness.hpp"
#include "pg.hpp"

namespace annals::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kDocuments = 10'000;
constexpr std::size_t kPage = 20;
constexpr const char* kCollection = "bench_accounts";

// The document both sides decode into.
struct Account {
  std::string owner;
  std::int64_t balance = 0;
  std::vector<std::string> tags;
};
// NOLINTNEXTLINE(readability-identifier-naming): nlohmann looks these names up.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Account, owner, balance, tags)

class BenchAccounts final : public projections::DocumentProjection {
 public:
  std::string name() const override { return "bench_documents"; }
  std::vector<projections::CollectionSpec> collections() const override {
    return {{kCollection, {projections::DocumentIndex::ordered("balance")}}};
  }
  void handle(const RecordedEvent& e, projections::Documents& docs) override {
    docs.collection(kCollection).upsert(e.stream_id.value(), e.data.get<Account>());
  }
};

std::string id_of(int n) { return "account-" + std::to_string(n); }

// Writes the documents through the projection's own batches (1,000 per batch).
void populate(projections::ProjectionStore& store, BenchAccounts& projection) {
  store.prepare(projection);
  const auto lease = store.try_acquire(projection.name(), "annals-bench", std::chrono::minutes(5));
  if (!lease) throw std::runtime_error("documents: could not lease the bench projection");
  auto checkpoint = store.checkpoint(projection.name());
  for (int first = 0; first < kDocuments; first += 1000) {
    auto batch = store.begin(*lease, checkpoint);
    batch->set_pipelined(true);
    for (int n = first; n < first + 1000; ++n) {
      const Account account{"owner-" + std::to_string(n % 97), (n * 7919) % 100'000, {"t"}};
      projection.apply(RecordedEvent{.stream_id = StreamId(id_of(n)),
                                     .version = 0,
                                     .position = Position(1, n + 1),
                                     .id = EventId::generate(),
                                     .type = "Upserted",
                                     .schema_version = 1,
                                     .data = nlohmann::json(account),
                                     .metadata = nlohmann::json::object(),
                                     .recorded_at = {}},
                       *batch);
    }
    checkpoint = Position(1, first + 1000);
    batch->commit(checkpoint);
  }
  store.release(*lease);
}

// Operations per second of `step` for `seconds`.
template <typename Step>
double rate(double seconds, Step&& step) {
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  std::uint64_t done = 0;
  const auto start = Clock::now();
  while (Clock::now() < end) {
    step();
    ++done;
  }
  const std::chrono::duration<double> elapsed = Clock::now() - start;
  return static_cast<double>(done) / elapsed.count();
}

nlohmann::json figure(const std::string& name, const std::string& baseline,
                      const std::vector<double>& store, const std::vector<double>& ceiling,
                      double target, const std::string& note) {
  const double value = median(store);
  const double base = median(ceiling);
  const double ratio = base > 0.0 ? value / base : 0.0;
  return {{"name", name},
          {"unit", "ops/s"},
          {"value", value},
          {"samples", store},
          {"baseline", baseline},
          {"baseline_value", base},
          {"baseline_samples", ceiling},
          {"ratio", ratio},
          {"target_ratio", target},
          {"pass", ratio >= target},
          {"note", note}};
}

}  // namespace

const std::vector<std::string>& document_figure_names() {
  static const std::vector<std::string> kNames = {"documents_get", "documents_find_page"};
  return kNames;
}

nlohmann::json run_document_benchmarks(const std::string& conninfo,
                                       const DocumentBenchOptions& options) {
  const auto wanted = split_names(options.only);
  const auto runs = [&](const std::string& name) { return wanted.empty() || wanted.count(name); };
  auto store =
      projections::make_postgres_projection_store({.connection_string = conninfo, .pool_size = 2});
  BenchAccounts projection;
  report_progress("documents: writing {} documents", kDocuments);
  populate(*store, projection);
  auto reader = projections::make_postgres_document_reader(
      {.connection_string = conninfo, .pool_size = 1}, *store);
  const auto accounts = reader->collection<Account>(kCollection);

  // The ceiling: the same statements prepared on a raw libpq connection (pg.hpp), rows read
  // straight from the PGresult and decoded with the same from_json.
  PgConnection ceiling(conninfo);
  const std::string table = std::string("doc_") + kCollection;
  ceiling.prepare("bench_get", "SELECT data FROM " + table + " WHERE id = $1", {kTextOid});
  ceiling.prepare("bench_page",
                  "SELECT id, data FROM " + table +
                      " WHERE (data #> '{balance}') >= $1::jsonb AND (data #> '{balance}') IS NOT"
                      " NULL ORDER BY (data #> '{balance}'), id LIMIT $2",
                  {kJsonbOid, kInt8Oid});

  std::mt19937 random(42);
  std::uniform_int_distribution<int> any_document(0, kDocuments - 1);
  std::uniform_int_distribution<int> any_balance(0, 99'000);
  std::uint64_t sink = 0;  // keeps the decoded values alive

  const auto store_get = [&] {
    sink += static_cast<std::uint64_t>(accounts.get(id_of(any_document(random)))->balance);
  };
  const auto ceiling_get = [&] {
    const std::string id = id_of(any_document(random));
    const char* values[] = {id.c_str()};
    const auto rows =
        ceiling.exec_prepared("bench_get", 1, values, nullptr, nullptr, PGRES_TUPLES_OK);
    const char* text = PQgetvalue(rows.get(), 0, 0);
    const char* end = text + PQgetlength(rows.get(), 0, 0);
    sink += static_cast<std::uint64_t>(nlohmann::json::parse(text, end).get<Account>().balance);
  };
  const auto store_page = [&] {
    const auto page =
        accounts.find({.filter = projections::DocumentFilter().ge("balance", any_balance(random)),
                       .order_by = "balance",
                       .limit = kPage});
    sink += page.items.size();
  };
  const auto ceiling_page = [&] {
    const std::string balance = std::to_string(any_balance(random));
    const std::string limit = std::to_string(kPage + 1);
    const char* values[] = {balance.c_str(), limit.c_str()};
    const auto rows =
        ceiling.exec_prepared("bench_page", 2, values, nullptr, nullptr, PGRES_TUPLES_OK);
    std::vector<Account> items;
    std::vector<std::string> ids;
    for (int row = 0; row < rows.rows(); ++row) {
      ids.emplace_back(PQgetvalue(rows.get(), row, 0),
                       static_cast<std::size_t>(PQgetlength(rows.get(), row, 0)));
      const char* text = PQgetvalue(rows.get(), row, 1);
      items.push_back(
          nlohmann::json::parse(text, text + PQgetlength(rows.get(), row, 1)).get<Account>());
    }
    if (items.size() > kPage) items.pop_back();
    sink += items.size();
  };

  nlohmann::json figures = nlohmann::json::array();
  const auto measure = [&](const std::string& name, const std::string& baseline, auto&& mine,
                           auto&& theirs, double target, const std::string& note) {
    if (!runs(name)) return;
    std::vector<double> store_rates;
    std::vector<double> ceiling_rates;
    for (int round = 0; round < options.rounds; ++round) {
      if (round % 2 == 0) {
        store_rates.push_back(rate(options.seconds, mine));
        ceiling_rates.push_back(rate(options.seconds, theirs));
      } else {
        ceiling_rates.push_back(rate(options.seconds, theirs));
        store_rates.push_back(rate(options.seconds, mine));
      }
    }
    figures.push_back(figure(name, baseline, store_rates, ceiling_rates, target, note));
    report_progress("{}: annals {:.0f}/s, hand-written {:.0f}/s, ratio {:.2f}", name,
                    median(store_rates), median(ceiling_rates),
                    figures.back()["ratio"].get<double>());
  };
  measure("documents_get", "prepared primary-key SELECT, decoded", store_get, ceiling_get, 0.8,
          "TypedCollection::get vs SELECT data WHERE id = $1 + from_json");
  measure("documents_find_page", "prepared keyset query, decoded", store_page, ceiling_page, 0.7,
          "find(ge balance, order_by balance, limit 20) vs the same SQL by hand + from_json");
  return {{"figures", figures}, {"documents", kDocuments}, {"checksum", sink}};
}

std::string format_document_figures(const nlohmann::json& result) {
  std::string out = fmt::format("{:<22} {:>10} {:<6} {:>12} {:>7} {:>12}\n", "figure", "annals",
                                "unit", "hand-written", "ratio", "target");
  for (const auto& f : result.at("figures")) {
    out += fmt::format("{:<22} {:>10.0f} {:<6} {:>12.0f} {:>7.3f} {:>7} {}\n",
                       f.at("name").get<std::string>(), f.at("value").get<double>(),
                       f.at("unit").get<std::string>(), f.at("baseline_value").get<double>(),
                       f.at("ratio").get<double>(),
                       fmt::format(">= {:.1f}", f.at("target_ratio").get<double>()),
                       f.at("pass").get<bool>() ? "pass" : "FAIL");
  }
  return out;
}

}  // namespace annals::bench
