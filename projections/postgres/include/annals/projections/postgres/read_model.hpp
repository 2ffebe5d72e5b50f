// Read-model projections into PostgreSQL tables, with exactly-once effect: the projection's
// writes and its checkpoint commit in one transaction (ARCHITECTURE decision 7).
//
// A projection owns its tables: it lists their migrations (applied once, in order, recorded
// per projection) and the tables a rebuild empties. Writes go through ReadModel, whose
// helpers cover the usual cases with parameterized SQL (identifiers are validated and quoted,
// values are always parameters):
//
//   void handle(const annals::RecordedEvent& e, ReadModel& db) override {
//     db.upsert("balances", {{"account_id", e.stream_id.value()}}, {{"balance", 0}});
//     db.increment("balances", {{"account_id", e.stream_id.value()}}, "balance",
//                  e.data.at("amount").get<std::int64_t>());
//   }
//
// Typed: give the base the EventRegistry and declare a handler per event type; each gets the
// upcast, decoded event, its EventContext and the ReadModel writer, and the filter is derived
// from the handlers (old names of renamed types included):
//
//   explicit Balances(const annals::EventRegistry& registry) : ReadModelProjection(registry) {
//     on<MoneyDeposited>([](const MoneyDeposited& e, const annals::EventContext& c,
//                           ReadModel& db) {
//       db.increment("balances", {{"account_id", c.stream_id().value()}}, "balance", e.amount);
//     });
//   }
//
// Run it with a ProjectionRunner over a PostgresProjectionStore on the same database.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/projections/projection.hpp"

namespace annals::projections {

/// Column names to values, as a JSON object: {"account_id": "a1", "balance": 0}. Values map
/// to SQL parameters: null → NULL, booleans, numbers and strings by their text, objects and
/// arrays as JSON text (for json/jsonb columns).
using Columns = nlohmann::json;

/// Parameters of a statement, $1 first. Same mapping as Columns' values.
using Params = std::vector<nlohmann::json>;

/// The write side of a read model inside one batch's transaction.
///
/// Table and column names must be plain or schema-qualified SQL identifiers
/// ([A-Za-z_][A-Za-z0-9_]*, optionally "schema.table"); anything else throws
/// InvalidArgumentError before any SQL is sent.
///
/// Pipelined batches (Batch::set_pipelined, which the ProjectionRunner uses) queue upsert() and
/// increment() and send them in one round trip: at the next remove() or exec() (which see
/// every write queued before them) or with the checkpoint at Batch::commit(). A queued write's
/// failure then surfaces there, as a DeferredWriteError, and rolls the batch back; the runner
/// finds the event it belongs to (docs/read-models.md). In other batches every call is sent
/// at once and fails by itself.
///
/// Thread safety: one thread (the runner's) only. Valid only inside handle()/setup()/reset().
class ReadModel {
 public:
  ReadModel(const ReadModel&) = delete;
  ReadModel& operator=(const ReadModel&) = delete;
  virtual ~ReadModel() = default;

  /// Sets the `values` columns of the row with `key`, or inserts key + values when there is
  /// no such row. Only the named columns are written, so updating some columns of a table
  /// with other NOT NULL columns works. `key`'s columns should carry a primary key or unique
  /// constraint. Empty (or null) `values`: insert the key when missing, else change nothing.
  /// Null key values throw InvalidArgumentError. Cost: one statement (prepared once), queued
  /// in a pipelined batch.
  virtual void upsert(std::string_view table, const Columns& key, const Columns& values) = 0;
  /// Adds `by` to `column` of the row with `key` (a NULL counts as 0); inserts the row with
  /// column = by when it does not exist. Cost: one statement, queued in a pipelined batch.
  virtual void increment(std::string_view table, const Columns& key, std::string_view column,
                         std::int64_t by) = 0;
  /// Deletes the rows matching `key`. Returns how many were deleted. Cost: one statement sent
  /// at once (after the queued ones, in a pipelined batch).
  virtual std::int64_t remove(std::string_view table, const Columns& key) = 0;
  /// Runs one parameterized statement ($1, $2, ...) and returns its rows as JSON objects
  /// (column name to value; numbers, booleans, json and jsonb decoded, the rest as text).
  /// Throws: CorruptionError naming the column when a json or jsonb value nests deeper than
  /// annals::kMaxJsonDepth (json_limits.hpp; checked before parsing, so a value 100,000 levels
  /// deep is refused without touching the stack); the driver's errors translated as for the
  /// other helpers. Cost: one statement (prepared once per distinct text) sent at once, after the
  /// queued ones in a pipelined batch.
  virtual std::vector<nlohmann::json> exec(std::string_view sql, const Params& params = {}) = 0;

 protected:
  ReadModel() = default;
};

/// A migration of a projection's own tables: a stable name (applied once per projection,
/// in the order listed) and its SQL.
struct ReadModelMigration {
  std::string name;
  std::string sql;
};

/// Base of projections that write PostgreSQL tables. See the header comment.
///
/// Typed (constructed with an EventRegistry, handlers declared with on<E>()): events whose
/// stored type cannot reach a declared type are skipped, the checkpoint moving past them in
/// the same transaction; a decode failure fails the event like a throwing handler (its writes
/// rolled back; retry, then stop or dead letter) with the registry's typed error.
class ReadModelProjection : public Projection {
 public:
  /// A projection that overrides handle().
  ReadModelProjection() = default;
  /// A typed projection whose handlers (on<E>()) are dispatched through `registry`, which must
  /// outlive it and be complete (every type and upcaster) before on() is called.
  explicit ReadModelProjection(const EventRegistry& registry) : handlers_(registry) {}

  /// The projection's table migrations, in order. Default: none.
  [[nodiscard]] virtual std::vector<ReadModelMigration> migrations() const { return {}; }
  /// The tables a rebuild empties (TRUNCATE, in one statement). Default: none.
  [[nodiscard]] virtual std::vector<std::string> tables() const { return {}; }
  /// Applies one event through `db`. Throwing fails the event; its writes are rolled back.
  /// Default: dispatches it to the typed handlers; throws InvalidArgumentError when none is
  /// declared.
  virtual void handle(const RecordedEvent& event, ReadModel& db);

  /// With typed handlers: the stored type names that reach them (old names of renamed and
  /// split types included). Otherwise every event.
  [[nodiscard]] EventFilter filter() const override;

  /// Applies pending migrations(). Throws InvalidArgumentError when run on a store that is
  /// not PostgreSQL.
  void setup(UnitOfWork& work) final;
  void apply(const RecordedEvent& event, UnitOfWork& work) final;
  /// Truncates tables().
  void reset(UnitOfWork& work) final;

 protected:
  /// Declares the handler of E: `(const E&, const EventContext&, ReadModel&)` or
  /// `(const E&, ReadModel&)`. Throws: InvalidArgumentError (no registry given to the
  /// constructor, E not registered, declared twice).
  template <EventType E, typename F>
  void on(F handler) {
    handlers_.on<E>(std::move(handler));
  }
  /// The typed handlers declared so far.
  [[nodiscard]] const EventHandlers<ReadModel&>& typed_handlers() const noexcept {
    return handlers_;
  }

 private:
  EventHandlers<ReadModel&> handlers_;
};

}  // namespace annals::projections
