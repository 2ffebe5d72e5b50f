// Blue/green rebuilds (blue_green.hpp, sql/0016).
//
// The new generation is an ordinary projection under its own name, whose row records its own
// schema before it is prepared: its setup() then creates its tables there (ReadModelProjection
// enters the read schema first), and its batches write them. A runner of this call catches it
// up; then the switch, one transaction:
//   1. the projection's inline lock, exclusively (inline appends wait; none is half-way);
//   2. per table: DROP the live relation readers reach under its name (the table of generation
//      0, or the view of the previous generation) and CREATE a view of that name on the new
//      generation's table. DROP waits for the readers and writers of the old table; readers
//      that arrive meanwhile wait for the commit and then read the view;
//   3. the projection's row takes the generation's checkpoint and schema (inline list emptied,
//      fencing token raised), its migrations record and dead letters; the generation's row goes;
//   4. DROP SCHEMA of the previous generation (not generation 0's tables: step 2 dropped them).
// The projection's owner needs no signal: step 3 also raises its fencing token, so its next
// checkpoint write fails (OwnershipLostError; it takes its lease back and continues from the
// stored checkpoint and inline list), and every batch enters the read schema stored at its
// start. A batch that wrote through the old names before the switch committed first (step 2
// waited for it); one that began before the switch and writes after it reaches the new tables
// through the views, but is rolled back by the token, even when both checkpoints are equal: it
// may skip events that inline appends applied only to the old tables (its inline list was read
// before the switch emptied it).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/projections/partitions.hpp"
#include "annals/projections/postgres/blue_green.hpp"
#include "annals/projections/runner.hpp"
#include "connection_string.hpp"
#include "error_translation.hpp"
#include "parse_int.hpp"
#include "postgres_batch.hpp"
#include "sql.hpp"

namespace annals::projections {
namespace {

using detail::logger;

// Longest projection name that still takes a generation suffix (".g" and up to 6 digits) within
// the 100 characters a name may have.
constexpr std::size_t kMaxBaseName = 92;

std::string describe(const std::string& projection) { return "projection \"" + projection + "\""; }

// The new version of a projection, run under the generation's name.
class Generation final : public ReadModelProjection {
 public:
  Generation(std::shared_ptr<ReadModelProjection> base, std::string name)
      : base_(std::move(base)), name_(std::move(name)) {}

  std::string name() const override { return name_; }
  EventFilter filter() const override { return base_->filter(); }
  std::vector<ReadModelMigration> migrations() const override { return base_->migrations(); }
  std::vector<std::string> tables() const override { return base_->tables(); }
  void handle(const RecordedEvent& event, ReadModel& db) override { base_->handle(event, db); }

 private:
  std::shared_ptr<ReadModelProjection> base_;
  std::string name_;
};

bool is_plain_identifier(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63) return false;
  const auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  if (!letter(name[0]) && name[0] != '_') return false;
  for (const char c : name) {
    if (!letter(c) && !(c >= '0' && c <= '9') && c != '_') return false;
  }
  return true;
}

// FNV-1a, 32 bits: a stable short tag of a projection name for its schemas.
std::uint32_t fnv1a(std::string_view text) noexcept {
  std::uint32_t hash = 2166136261U;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619U;
  }
  return hash;
}

// "rm_<name, [A-Za-z0-9_] only, at most 40>_<8 hex of its hash>_g<n>": at most 63 bytes.
std::string schema_for(const std::string& name, int generation) {
  std::string out = "rm_";
  for (const char c : name.substr(0, 40)) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    out.push_back(keep ? static_cast<char>(c | 0x20) : '_');  // lower case: no quoting surprises
  }
  static constexpr char kHex[] = "0123456789abcdef";
  const auto hash = fnv1a(name);
  out.push_back('_');
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kHex[(hash >> shift) & 0xfU]);
  return out + "_g" + std::to_string(generation);
}

// The generation number of a read schema made by schema_for; 0 for none.
int generation_of(const std::optional<std::string>& schema) {
  if (!schema) return 0;
  const auto at = schema->rfind("_g");
  if (at == std::string::npos) return 0;
  try {
    return std::stoi(schema->substr(at + 2));
  } catch (const std::exception&) {
    return 0;
  }
}

void prepare_statements(pqxx::connection& connection) {
  connection.prepare(sql::kReadSchemaName, sql::kReadSchema);
  connection.prepare(sql::kRegisterGenerationName, sql::kRegisterGeneration);
  connection.prepare(sql::kLiveRelationName, sql::kLiveRelation);
  connection.prepare(sql::kCurrentSchemaName, sql::kCurrentSchema);
  connection.prepare(sql::kHandOverName, sql::kHandOver);
  connection.prepare(sql::kDropMigrationsName, sql::kDropMigrations);
  connection.prepare(sql::kMoveMigrationsName, sql::kMoveMigrations);
  connection.prepare(sql::kDropDeadLettersName, sql::kDropDeadLetters);
  connection.prepare(sql::kMoveDeadLettersName, sql::kMoveDeadLetters);
  connection.prepare(sql::kDropGenerationName, sql::kDropGeneration);
  connection.prepare(sql::kInlineLockName, sql::kInlineLock);
}

// Runs `f` (a database step of the rebuild), translating driver failures once.
template <typename F>
auto step(const std::string& what, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const annals::Error&) {
    throw;
  } catch (const std::exception& e) {
    postgres::detail::rethrow_translated(e, what, false, postgres::detail::Origin::kReadModel);
  }
}

// Catches `generation` up with the log and with the live projection, then stops its runner.
void catch_up(EventStore& events, ProjectionStore& store,
              const std::shared_ptr<Generation>& generation, const std::string& live,
              const BlueGreenOptions& options) {
  const auto name = generation->name();
  ProjectionRunner runner(events, store, {.owner = name + "-builder"});
  runner.add(generation, {.batch_size = options.batch_size});
  runner.start();
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  // Up to the head, then up to wherever the live projection got meanwhile (at most a few
  // rounds: the switch accepts a generation slightly behind, see rebuild_blue_green).
  Position target = events.head_position();
  for (int round = 0; round < 3; ++round) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !runner.wait_for(name, target, left)) {
      const auto status = runner.status(name);
      runner.stop();
      throw UnavailableError(describe(name) + " did not catch up within " +
                             std::to_string(options.timeout.count()) + " ms (state " +
                             to_string(status.state) + ", at " + status.position.to_string() +
                             (status.last_error ? ", last error: " + *status.last_error : "") +
                             "); run the rebuild again to resume it");
    }
    const auto live_at = store.checkpoint(live);
    if (live_at <= target) break;
    target = live_at;
  }
  runner.stop();
}

// Checks what rebuild_blue_green is given; returns the projection's tables.
std::vector<std::string> validated_tables(const ReadModelProjection& projection,
                                          const std::string& name,
                                          const BlueGreenOptions& options) {
  if (options.connection_string.empty()) {
    throw InvalidArgumentError("BlueGreenOptions::connection_string is empty");
  }
  if (options.timeout.count() <= 0) {
    throw InvalidArgumentError("BlueGreenOptions::timeout must be positive");
  }
  if (options.batch_size == 0) {
    throw InvalidArgumentError("BlueGreenOptions::batch_size must be at least 1");
  }
  validate_projection_name(name);
  if (name.size() > kMaxBaseName) {
    throw InvalidArgumentError(describe(name) + ": a blue/green rebuild needs a name of at most " +
                               std::to_string(kMaxBaseName) + " characters");
  }
  auto tables = projection.tables();
  if (tables.empty()) {
    throw InvalidArgumentError(describe(name) + " lists no tables() for readers to switch");
  }
  for (const auto& table : tables) {
    if (!is_plain_identifier(table)) {
      throw InvalidArgumentError(describe(name) + ": table \"" + table.substr(0, 80) +
                                 "\" is not a plain name ([A-Za-z_][A-Za-z0-9_]*, no schema): a "
                                 "blue/green rebuild puts each generation in a schema of its own");
    }
  }
  return tables;
}

// What a switch changes: the projection, its new generation and the previous one.
struct Switch {
  std::string projection;
  std::string generation;
  std::string schema;
  std::optional<std::string> previous;
};

// The switch, in `tx` (see the file comment): replaces each of `tables` that readers reach with a
// view on the new generation's table, hands the generation over and drops the previous one.
// Returns the projection's new checkpoint.
Position switch_readers(pqxx::work& tx, const Switch& change,
                        const std::vector<std::string>& tables) {
  tx.exec_prepared(sql::kInlineLockName, change.projection);
  const auto fallback_schema = std::string(tx.exec_prepared(sql::kCurrentSchemaName)[0][0].c_str());
  for (const auto& table : tables) {
    const auto live = tx.exec_prepared(sql::kLiveRelationName, table);
    std::string view_schema = fallback_schema;
    if (!live.empty()) {
      view_schema = live[0][0].c_str();
      const std::string kind = live[0][1].c_str();
      if (kind != "r" && kind != "v") {
        throw InvalidArgumentError(describe(change.projection) + ": \"" + table +
                                   "\" is neither a table nor a view; not switched");
      }
      tx.exec(std::string(kind == "r" ? "DROP TABLE " : "DROP VIEW ") + tx.quote_name(view_schema) +
              "." + tx.quote_name(table));
    }
    tx.exec("CREATE VIEW " + tx.quote_name(view_schema) + "." + tx.quote_name(table) +
            " AS SELECT * FROM " + tx.quote_name(change.schema) + "." + tx.quote_name(table));
  }
  const auto handed =
      tx.exec_prepared(sql::kHandOverName, change.projection, change.generation, change.schema);
  if (handed.empty()) {
    throw NotFoundError(describe(change.projection) + " is not registered any more");
  }
  tx.exec_prepared(sql::kDropMigrationsName, change.projection);
  tx.exec_prepared(sql::kMoveMigrationsName, change.projection, change.generation);
  tx.exec_prepared(sql::kDropDeadLettersName, change.projection, change.generation);
  tx.exec_prepared(sql::kMoveDeadLettersName, change.projection, change.generation);
  tx.exec_prepared(sql::kDropGenerationName, change.generation);
  if (change.previous) {
    tx.exec("DROP SCHEMA IF EXISTS " + tx.quote_name(*change.previous) + " CASCADE");
  }
  return Position(postgres::detail::parse_int<std::uint64_t>(handed[0][0], "checkpoint"),
                  handed[0][1].as<std::int64_t>());
}

}  // namespace

BlueGreenResult rebuild_blue_green(EventStore& events, ProjectionStore& store,
                                   std::shared_ptr<ReadModelProjection> projection,
                                   BlueGreenOptions options) {
  if (!projection) throw InvalidArgumentError("rebuild_blue_green: null projection");
  const auto name = projection->name();
  const auto tables = validated_tables(*projection, name, options);
  static_cast<void>(store.checkpoint(name));  // NotFoundError when not registered
  // The switch hands one checkpoint to the projection's own row; a partitioned projection's
  // progress is in its partitions (docs/scaling.md, "Partitioned projections").
  if (stored_partition_count(store, name) > 1) {
    throw InvalidArgumentError(describe(name) +
                               " is partitioned: blue/green rebuilds work on unpartitioned "
                               "projections; use rebuild_partitions()");
  }

  auto connection = step("connect for a blue/green rebuild of " + describe(name), [&] {
    auto c = std::make_unique<pqxx::connection>(
        postgres::detail::with_timeouts(options.connection_string, postgres::ConnectionTimeouts{}));
    prepare_statements(*c);
    return c;
  });

  // The new generation: its schema and its own row, then its migrations and catch-up.
  Switch change{.projection = name, .generation = {}, .schema = {}, .previous = {}};
  change.previous = step("read the read schema of " + describe(name), [&] {
    pqxx::nontransaction tx(*connection);
    const auto rows = tx.exec_prepared(sql::kReadSchemaName, name);
    if (rows.empty()) throw NotFoundError(describe(name) + " is not registered");
    return rows[0][0].is_null() ? std::optional<std::string>()
                                : std::optional<std::string>(rows[0][0].c_str());
  });
  const int number = generation_of(change.previous) + 1;
  change.schema = schema_for(name, number);
  change.generation = name + ".g" + std::to_string(number);
  step("create schema " + change.schema + " for " + describe(change.generation), [&] {
    pqxx::work tx(*connection);
    tx.exec("CREATE SCHEMA IF NOT EXISTS " + tx.quote_name(change.schema));
    tx.exec_prepared(sql::kRegisterGenerationName, change.generation, change.schema);
    tx.commit();
  });
  logger()->info("annals: {}: blue/green rebuild: building generation {} in schema {}",
                 describe(name), number, change.schema);
  catch_up(events, store, std::make_shared<Generation>(projection, change.generation), name,
           options);

  const auto checkpoint = step("switch readers of " + describe(name) + " to " + change.schema, [&] {
    pqxx::work tx(*connection);
    const auto at = switch_readers(tx, change, tables);
    tx.commit();
    return at;
  });
  logger()->info("annals: {}: blue/green rebuild: readers switched to {} at {}", describe(name),
                 change.schema, checkpoint.to_string());
  return BlueGreenResult{.schema = change.schema, .checkpoint = checkpoint};
}

}  // namespace annals::projections
