// Given/when/then for a ReadModelProjection on PostgreSQL: the given events are appended to
// the real PostgreSQL event store, the projection is run by a real ProjectionRunner over the
// PostgreSQL projection store (its writes and checkpoint in one transaction, as in
// production), and the test queries the read model's tables.
//
//   annals::testkit::ReadModelSpec spec(registry, url);   // a migrated database
//   Balances balances(registry);
//   spec.given("account-1", MoneyDeposited{.amount = 10})
//       .given("account-1", annals::NewEvent{.type = "Deposited", .schema_version = 1,
//                                            .data = {{"cents", 500}}})
//       .when(balances)
//       .then_rows("SELECT account_id, balance FROM balances ORDER BY account_id",
//                  {{{"account_id", "account-1"}, {"balance", 15}}});
//
// Isolation, so that specs share one database (and run in parallel processes):
//  - the read model's tables are created in a scratch schema of their own (annals_spec_<hex>):
//    the spec's connections put it first on the search_path, so unqualified table names in
//    the projection's migrations and statements, and in query(), land there; it is dropped
//    when the spec is destroyed;
//  - the projection runs under a name of its own (<name>_spec_<hex>: its own checkpoint and
//    migration records), and is given only the events this spec appended (other events of the
//    shared log move its checkpoint and nothing else). Stream versions continue where earlier
//    appends to the same stream left them: use stream names unique to the spec when the
//    projection stores versions.
//
// `connection_string` must not set `options` (the spec sets the search_path there).
// Target annals::testkit_read_models (links annals::projections_postgres and annals::postgres;
// its headers include no libpqxx).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <source_location>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/postgres/postgres_event_store.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "annals/testkit/projection_spec.hpp"

namespace annals::testkit {
namespace projection_spec_detail {

inline std::string random_hex(std::size_t count) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(kDigits[rng() % 16]);
  return out;
}

/// `url` with `search_path` set to `schema` then public, in URL or key=value form.
inline std::string with_search_path(const std::string& url, const std::string& schema) {
  if (url.find("options=") != std::string::npos) {
    throw InvalidArgumentError(
        "ReadModelSpec: the connection string sets `options`; the spec needs them for its "
        "search_path");
  }
  const bool is_url = url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
  if (is_url) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" +
           schema + "%2Cpublic";
  }
  return url + " options='-csearch_path=" + schema + ",public'";
}

/// Runs the user's projection under a name of its own, on the spec's events only.
class IsolatedProjection final : public projections::Projection {
 public:
  IsolatedProjection(projections::Projection& inner, std::string name,
                     const std::set<std::string, std::less<>>& ids)
      : inner_(inner), name_(std::move(name)), ids_(ids) {}
  std::string name() const override { return name_; }
  EventFilter filter() const override { return inner_.filter(); }
  void setup(projections::UnitOfWork& work) override { inner_.setup(work); }
  void apply(const RecordedEvent& event, projections::UnitOfWork& work) override {
    if (ids_.contains(event.id.to_string())) inner_.apply(event, work);
  }
  void reset(projections::UnitOfWork& work) override { inner_.reset(work); }

 private:
  projections::Projection& inner_;
  std::string name_;
  const std::set<std::string, std::less<>>& ids_;
};

/// Runs SQL in the scratch schema through the projection store (its own ReadModel), in a
/// batch of its own that commits or rolls back.
class Probe final : public projections::ReadModelProjection {
 public:
  Probe(std::string name, std::string schema)
      : name_(std::move(name)), schema_(std::move(schema)) {}
  std::string name() const override { return name_; }
  std::vector<projections::ReadModelMigration> migrations() const override {
    return {{"create_scratch_schema", "CREATE SCHEMA " + schema_}};
  }
  void handle(const RecordedEvent&, projections::ReadModel& db) override {
    rows = db.exec(sql, params);
  }

  std::string sql;
  projections::Params params;
  std::vector<nlohmann::json> rows;

 private:
  std::string name_;
  std::string schema_;
};

}  // namespace projection_spec_detail

/// Given/when/then for a ReadModelProjection on PostgreSQL (see the header comment).
class ReadModelSpec {
 public:
  /// Opens the PostgreSQL event and projection stores on `connection_string` (a migrated
  /// database) and creates the scratch schema. `registry` must outlive the spec.
  /// Throws: what make_postgres_event_store / make_postgres_projection_store throw,
  /// InvalidArgumentError (the connection string sets `options`).
  ReadModelSpec(const EventRegistry& registry, const std::string& connection_string,
                ProjectionSpecOptions options = {})
      : core_(registry),
        options_(options),
        suffix_(projection_spec_detail::random_hex(12)),
        schema_("annals_spec_" + suffix_),
        events_(postgres::make_postgres_event_store(
            {.connection_string = connection_string, .pool_size = 2})),
        store_(projections::make_postgres_projection_store(
            {.connection_string =
                 projection_spec_detail::with_search_path(connection_string, schema_),
             .pool_size = 4})),
        probe_("annals_spec_probe_" + suffix_, schema_) {
    store_->prepare(probe_);  // creates the scratch schema
  }
  ReadModelSpec(const ReadModelSpec&) = delete;
  ReadModelSpec& operator=(const ReadModelSpec&) = delete;
  /// Drops the scratch schema (and the read model's tables in it).
  ~ReadModelSpec() {
    try {
      run_sql("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE", {}, true);
    } catch (...) {  // NOLINT(bugprone-empty-catch): a leftover schema is harmless
    }
  }

  /// A typed event, encoded at its current schema version with the registry.
  template <EventType E>
  ReadModelSpec& given(std::string_view stream, const E& event,
                       nlohmann::json metadata = nlohmann::json::object()) {
    core_.given(stream, event, std::move(metadata));
    return *this;
  }
  /// A raw event, stored as given (e.g. an old schema version or a name before a rename).
  ReadModelSpec& given(std::string_view stream, NewEvent event) {
    core_.given(stream, std::move(event));
    return *this;
  }

  /// Appends the given events and runs `projection` (which must outlive the spec) over them
  /// with a real runner on the PostgreSQL stores.
  ReadModelSpec& when(projections::Projection& projection) {
    const Position until = core_.append(*events_);
    std::string name = projection.name().substr(0, 80) + "_spec_" + suffix_;
    isolated_ =
        std::make_shared<projection_spec_detail::IsolatedProjection>(projection, name, core_.ids());
    outcome_ = projection_spec_detail::SpecCore::run(*events_, *store_, isolated_, until, options_);
    return *this;
  }

  /// Runs one parameterized statement in the scratch schema and returns its rows as JSON
  /// objects (as ReadModel::exec). Throws: what ReadModel::exec throws.
  std::vector<nlohmann::json> query(const std::string& sql,
                                    const projections::Params& params = {}) {
    return run_sql(sql, params, false);
  }

  /// Checks that the projection processed every given event, then that `sql` returns exactly
  /// `expected` (rows as JSON objects, in order).
  ReadModelSpec& then_rows(const std::string& sql, const std::vector<nlohmann::json>& expected,
                           std::source_location where = std::source_location::current()) {
    if (!projection_spec_detail::processed_all(outcome_, where)) return *this;
    const auto rows = query(sql);
    if (rows != expected) {
      projection_spec_detail::report(where,
                                     "the read model is not the expected state (" + sql +
                                         "):\n  expected: " + nlohmann::json(expected).dump() +
                                         "\n  actual:   " + nlohmann::json(rows).dump());
    }
    return *this;
  }
  /// Checks that the projection processed every given event, then runs `check` (assertions,
  /// usually on query()).
  ReadModelSpec& then(const std::function<void()>& check,
                      std::source_location where = std::source_location::current()) {
    if (projection_spec_detail::processed_all(outcome_, where)) check();
    return *this;
  }
  /// Checks that the projection failed with an error that contains `text`.
  ReadModelSpec& then_fails(std::string_view text = {},
                            std::source_location where = std::source_location::current()) {
    projection_spec_detail::check_failed(outcome_, text, where);
    return *this;
  }

  [[nodiscard]] const std::optional<ProjectionOutcome>& outcome() const noexcept {
    return outcome_;
  }
  /// The scratch schema's name.
  [[nodiscard]] const std::string& schema() const noexcept { return schema_; }
  [[nodiscard]] EventStore& events() noexcept { return *events_; }
  [[nodiscard]] projections::ProjectionStore& projection_store() noexcept { return *store_; }

 private:
  std::vector<nlohmann::json> run_sql(const std::string& sql, const projections::Params& params,
                                      bool commit) {
    const auto lease = store_->try_acquire(probe_.name(), "annals-spec-" + suffix_,
                                           std::chrono::milliseconds(10'000));
    if (!lease) throw UnavailableError("ReadModelSpec: could not take the probe's lease");
    std::vector<nlohmann::json> rows;
    try {
      const Position checkpoint = store_->checkpoint(probe_.name());
      auto batch = store_->begin(*lease, checkpoint);
      probe_.sql = sql;
      probe_.params = params;
      probe_.apply(RecordedEvent{.stream_id = StreamId("annals-spec-probe")}, *batch);
      rows = std::move(probe_.rows);
      if (commit) batch->commit(checkpoint);
    } catch (...) {
      store_->release(*lease);
      throw;
    }
    store_->release(*lease);
    return rows;
  }

  projection_spec_detail::SpecCore core_;
  ProjectionSpecOptions options_;
  std::string suffix_;
  std::string schema_;
  std::unique_ptr<EventStore> events_;
  std::unique_ptr<projections::ProjectionStore> store_;
  projection_spec_detail::Probe probe_;
  std::shared_ptr<projection_spec_detail::IsolatedProjection> isolated_;
  std::optional<ProjectionOutcome> outcome_;
};

}  // namespace annals::testkit
