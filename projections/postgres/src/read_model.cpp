// ReadModel on the transaction of a PostgreSQL unit of work, and ReadModelProjection's setup,
// apply and reset.
//
// Speed: catching up a read model runs a handler per event, so a helper call must cost no
// round trip of its own. In a pipelined batch (Batch::set_pipelined, which the runner uses),
// upsert() and increment() queue an execution of their prepared statement, with its values as
// bound parameters, on the unit of work (PostgresContext::defer, a WritePipeline); the queue is
// sent in one round trip, in libpq's pipeline mode, by the next exec() or remove() (which
// return what the server answers), or with the checkpoint write at Batch::commit(). A failure
// then surfaces as a DeferredWriteError, and the runner finds the event it belongs to by
// applying again unpipelined, where every helper call is one statement sent at once.
// Each statement is prepared once per connection: the helpers look their statement up by its
// shape (helper, table, column names), which is cheaper than assembling and hashing SQL text,
// and only a new shape is validated, assembled and prepared (at once, so a missing table fails
// the call that used it). Identifiers are validated before any SQL is built and always
// double-quoted; values are always bound parameters, never part of the SQL text.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/projections/postgres/read_model.hpp"
#include "postgres_batch.hpp"
#include "sql.hpp"
#include "sql_parameters.hpp"

namespace annals::projections {
namespace {

using detail::count_parameters;
using detail::exec_statement;
using detail::Param;
using detail::PostgresContext;
using detail::Session;

// PostgreSQL truncates longer identifiers silently; refusing them is clearer.
constexpr std::size_t kMaxIdentifierBytes = 63;

// Type OIDs (pg_type.h) that exec() decodes into JSON values other than strings.
constexpr pqxx::oid kBoolOid = 16;
constexpr pqxx::oid kInt8Oid = 20;
constexpr pqxx::oid kInt2Oid = 21;
constexpr pqxx::oid kInt4Oid = 23;
constexpr pqxx::oid kOidOid = 26;
constexpr pqxx::oid kJsonOid = 114;
constexpr pqxx::oid kFloat4Oid = 700;
constexpr pqxx::oid kFloat8Oid = 701;
constexpr pqxx::oid kNumericOid = 1700;
constexpr pqxx::oid kJsonbOid = 3802;

std::string describe(const std::string& projection) { return "projection \"" + projection + "\""; }

const Columns kNoColumns = Columns::object();

bool is_plain_identifier(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxIdentifierBytes) return false;
  const auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!letter(name[0]) && name[0] != '_') return false;
  for (const char c : name) {
    if (!letter(c) && !digit(c) && c != '_') return false;
  }
  return true;
}

// Shows a rejected name safely in a message (it may hold anything).
std::string shown(std::string_view name) {
  std::string out;
  for (const char c : name.substr(0, 80)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += "0123456789abcdef"[u >> 4];
      out += "0123456789abcdef"[u & 0xf];
    } else {
      out.push_back(c);
    }
  }
  return name.size() > 80 ? out + "..." : out;
}

void append_quoted(std::string& sql, std::string_view identifier) {
  sql.push_back('"');
  sql.append(identifier);
  sql.push_back('"');
}

// "table" or "schema.table", each part a plain identifier; appends it quoted.
void append_table(std::string& sql, std::string_view table, const std::string& projection) {
  const auto dot = table.find('.');
  const auto schema = dot == std::string_view::npos ? std::string_view() : table.substr(0, dot);
  const auto name = dot == std::string_view::npos ? table : table.substr(dot + 1);
  if ((dot != std::string_view::npos && !is_plain_identifier(schema)) ||
      !is_plain_identifier(name)) {
    throw InvalidArgumentError(describe(projection) + ": invalid table name \"" + shown(table) +
                               "\": use [A-Za-z_][A-Za-z0-9_]* (at most 63 bytes), optionally "
                               "qualified as schema.table");
  }
  if (!schema.empty()) {
    append_quoted(sql, schema);
    sql.push_back('.');
  }
  append_quoted(sql, name);
}

void check_column(std::string_view column, const std::string& projection) {
  if (!is_plain_identifier(column)) {
    throw InvalidArgumentError(describe(projection) + ": invalid column name \"" + shown(column) +
                               "\": use [A-Za-z_][A-Za-z0-9_]* (at most 63 bytes)");
  }
}

void require_object(const Columns& columns, const char* role, bool non_empty,
                    const std::string& projection, std::string_view table) {
  if (!columns.is_object() || (non_empty && columns.empty())) {
    throw InvalidArgumentError(describe(projection) + ": the " + role + " columns for table \"" +
                               shown(table) + "\" must be a " + (non_empty ? "non-empty " : "") +
                               "JSON object, got " + columns.dump());
  }
}

// A statement's cache key: the helper and every name, length-prefixed so that two different
// shapes never share a key (a hit therefore implies names that were validated on the miss).
void add_part(std::string& key, std::string_view part) {
  key += std::to_string(part.size());
  key.push_back(':');
  key.append(part);
}

std::string shape_key(char helper, std::string_view table, const Columns& a, const Columns* b,
                      std::string_view extra) {
  std::string key(1, helper);
  add_part(key, table);
  for (const auto& item : a.items()) add_part(key, item.key());
  key.push_back('|');
  if (b != nullptr) {
    for (const auto& item : b->items()) add_part(key, item.key());
  }
  key.push_back('|');
  add_part(key, extra);
  return key;
}

// One JSON value as a parameter: null → NULL, booleans and numbers by their text, strings as
// they are, objects and arrays as JSON text (for json/jsonb columns).
Param to_param(const nlohmann::json& value, std::string_view column,
               const std::string& projection) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return Param{{}, true};
    case nlohmann::json::value_t::boolean:
      return Param{value.get<bool>() ? "true" : "false", false};
    case nlohmann::json::value_t::number_integer:
      return Param{std::to_string(value.get<std::int64_t>()), false};
    case nlohmann::json::value_t::number_unsigned:
      return Param{std::to_string(value.get<std::uint64_t>()), false};
    case nlohmann::json::value_t::number_float:
      return Param{value.dump(), false};
    case nlohmann::json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      // libpq sends text parameters NUL-terminated: a NUL would silently cut the value.
      if (text.find('\0') != std::string::npos) {
        throw InvalidArgumentError(describe(projection) + ": the value for \"" + shown(column) +
                                   "\" contains a NUL character, which PostgreSQL text cannot "
                                   "store");
      }
      return Param{text, false};
    }
    case nlohmann::json::value_t::object:
    case nlohmann::json::value_t::array:
      return Param{value.dump(), false};
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded:
      break;
  }
  throw InvalidArgumentError(describe(projection) + ": the value for \"" + shown(column) +
                             "\" is not a JSON value a column can hold");
}

void add_key_params(std::vector<Param>& params, const Columns& key, const std::string& projection,
                    std::string_view table) {
  for (const auto& item : key.items()) {
    if (item.value().is_null()) {
      throw InvalidArgumentError(describe(projection) + ": key column \"" + shown(item.key()) +
                                 "\" of table \"" + shown(table) +
                                 "\" is null; a key must identify one row");
    }
    params.push_back(to_param(item.value(), item.key(), projection));
  }
}

// Refuses a json or jsonb value nested deeper than kMaxJsonDepth before it is parsed: the
// value would be handed to the projection's handler, and copying, comparing or dumping it
// recurses once per level (json_limits.hpp). PostgreSQL accepts such values from the table's
// owner (a json column keeps the text as written), so they are stored data, not input.
void check_column_depth(std::string_view text, const pqxx::field& field,
                        const std::string& projection) {
  try {
    check_json_text_depth(text, "the value");
  } catch (const InvalidArgumentError& e) {
    throw CorruptionError(describe(projection) + ": column \"" + shown(field.name()) +
                          "\" of a row read by exec() is refused: " + e.what());
  }
}

nlohmann::json decode_field(const pqxx::field& field, pqxx::oid type,
                            const std::string& projection) {
  if (field.is_null()) return nullptr;
  const std::string_view text(field.c_str(), field.size());
  switch (type) {
    case kBoolOid:
      return text == "t";
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
      return field.as<std::int64_t>();
    case kOidOid:
      return field.as<std::uint64_t>();
    case kFloat4Oid:
    case kFloat8Oid:
      return field.as<double>();
    case kJsonOid:
    case kJsonbOid:
      check_column_depth(text, field, projection);
      [[fallthrough]];
    case kNumericOid: {
      // numeric: exact integers stay integers; NaN and Infinity are not JSON and stay text.
      auto parsed = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
      if (!parsed.is_discarded()) return parsed;
      return std::string(text);
    }
    default:
      return std::string(text);
  }
}

class PostgresReadModel final : public ReadModel {
 public:
  explicit PostgresReadModel(PostgresContext& context) : context_(context) {}

  void upsert(std::string_view table, const Columns& key, const Columns& values) override {
    const auto& projection = context_.projection_name();
    require_object(key, "key", true, projection, table);
    // `{}` converts to JSON null in C++: no value columns.
    const auto& value_columns = values.is_null() ? kNoColumns : values;
    require_object(value_columns, "value", false, projection, table);
    const auto cache_key = shape_key('u', table, key, &value_columns, {});
    const auto* statement = context_.session().find(cache_key);
    if (statement == nullptr) {
      std::string quoted_table;
      append_table(quoted_table, table, projection);
      std::set<std::string_view> seen;
      for (const auto* columns : {&key, &value_columns}) {
        for (const auto& item : columns->items()) {
          check_column(item.key(), projection);
          if (!seen.insert(item.key()).second) {
            throw InvalidArgumentError(describe(projection) + ": column \"" + item.key() +
                                       "\" is both a key and a value column of table \"" +
                                       std::string(table) + "\"");
          }
        }
      }
      std::string sql;
      if (value_columns.empty()) {
        sql = sql::kWithSelect + quoted_table;
      } else {
        sql = sql::kWithUpdate + quoted_table + sql::kSet;
        std::size_t n = key.size();
        for (const auto& item : value_columns.items()) {
          if (n > key.size()) sql += ", ";
          append_quoted(sql, item.key());
          sql += sql::kEqualsParam;
          sql += std::to_string(++n);
        }
      }
      append_key_condition(sql, key);
      if (!value_columns.empty()) sql += sql::kReturningOne;
      append_insert(sql, quoted_table, key, value_columns.items(), seen.size(), nullptr);
      statement = &prepare_deferred(cache_key, sql, seen.size(), "upsert into", table);
    }
    std::vector<Param> params;
    params.reserve(statement->parameters);
    add_key_params(params, key, projection, table);
    for (const auto& item : value_columns.items()) {
      params.push_back(to_param(item.value(), item.key(), projection));
    }
    write(*statement, params, "upsert into", table);
  }

  void increment(std::string_view table, const Columns& key, std::string_view column,
                 std::int64_t by) override {
    const auto& projection = context_.projection_name();
    require_object(key, "key", true, projection, table);
    const auto cache_key = shape_key('i', table, key, nullptr, column);
    const auto* statement = context_.session().find(cache_key);
    if (statement == nullptr) {
      check_column(column, projection);
      std::string quoted_table;
      append_table(quoted_table, table, projection);
      for (const auto& item : key.items()) {
        check_column(item.key(), projection);
        if (item.key() == column) {
          throw InvalidArgumentError(describe(projection) + ": cannot increment key column \"" +
                                     item.key() + "\" of table \"" + std::string(table) + "\"");
        }
      }
      const auto by_param = std::to_string(key.size() + 1);
      std::string sql = sql::kWithUpdate + quoted_table + sql::kSet;
      append_quoted(sql, column);
      sql += sql::kIncrementFrom;
      append_quoted(sql, column);
      sql += sql::kIncrementBy + by_param + sql::kBigintCast;
      append_key_condition(sql, key);
      sql += sql::kReturningOne;
      const nlohmann::json counter = {{std::string(column), nullptr}};
      append_insert(sql, quoted_table, key, counter.items(), key.size() + 1, sql::kBigintCast);
      statement = &prepare_deferred(cache_key, sql, key.size() + 1, "increment", table);
    }
    std::vector<Param> params;
    params.reserve(statement->parameters);
    add_key_params(params, key, projection, table);
    params.push_back(Param{std::to_string(by), false});
    write(*statement, params, "increment", table);
  }

  std::int64_t remove(std::string_view table, const Columns& key) override {
    const auto& projection = context_.projection_name();
    require_object(key, "key", true, projection, table);
    const auto cache_key = shape_key('d', table, key, nullptr, {});
    const auto* statement = context_.session().find(cache_key);
    if (statement == nullptr) {
      std::string sql = sql::kDeleteFrom;
      append_table(sql, table, projection);
      for (const auto& item : key.items()) check_column(item.key(), projection);
      append_key_condition(sql, key);
      statement = &context_.session().add(cache_key, sql, key.size());
    }
    std::vector<Param> params;
    params.reserve(statement->parameters);
    add_key_params(params, key, projection, table);
    context_.flush_writes();  // returns a count: sent at once, after what was queued
    return static_cast<std::int64_t>(run(*statement, params, "delete from", table).affected_rows());
  }

  std::vector<nlohmann::json> exec(std::string_view sql, const Params& params) override {
    const auto& projection = context_.projection_name();
    std::string cache_key(1, 'x');
    cache_key.append(sql);
    const auto* statement = context_.session().find(cache_key);
    if (statement == nullptr) {
      if (sql.find('\0') != std::string_view::npos) {
        throw InvalidArgumentError(describe(projection) + ": statement contains a NUL character");
      }
      statement = &context_.session().add(cache_key, std::string(sql), count_parameters(sql));
    }
    if (params.size() != statement->parameters) {
      throw InvalidArgumentError(
          describe(projection) + ": statement takes " + std::to_string(statement->parameters) +
          " parameters ($1..$" + std::to_string(statement->parameters) + "), got " +
          std::to_string(params.size()) + ": " + std::string(sql.substr(0, 200)));
    }
    std::vector<Param> values;
    values.reserve(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      values.push_back(to_param(params[i], "$" + std::to_string(i + 1), projection));
    }
    context_.flush_writes();  // returns rows: sent at once, after what was queued
    const auto result = run(*statement, values, "statement", sql);
    std::vector<nlohmann::json> rows;
    rows.reserve(result.size());
    const auto columns = result.columns();
    std::vector<pqxx::oid> types(columns);
    for (pqxx::row::size_type c = 0; c < columns; ++c) types[c] = result.column_type(c);
    for (const auto& row : result) {
      auto object = nlohmann::json::object();
      for (pqxx::row::size_type c = 0; c < columns; ++c) {
        object[result.column_name(c)] = decode_field(row[c], types[c], projection);
      }
      rows.push_back(std::move(object));
    }
    return rows;
  }

 private:
  // " WHERE <k1> = $1 AND <k2> = $2 ..." (the key's parameters come first).
  static void append_key_condition(std::string& sql, const Columns& key) {
    sql += sql::kWhere;
    std::size_t n = 0;
    for (const auto& item : key.items()) {
      if (n > 0) sql += sql::kAnd;
      append_quoted(sql, item.key());
      sql += sql::kEqualsParam;
      sql += std::to_string(++n);
    }
  }

  // ") INSERT INTO <t> (<k...>, <v...>) SELECT $1, ..., $count WHERE NOT EXISTS (...)", with
  // `last_cast` after the last parameter.
  template <typename Items>
  static void append_insert(std::string& sql, const std::string& quoted_table, const Columns& key,
                            const Items& values, std::size_t count, const char* last_cast) {
    sql += sql::kInsertInto;
    sql += quoted_table;
    sql += " (";
    bool first = true;
    for (const auto& item : key.items()) {
      if (!first) sql += ", ";
      first = false;
      append_quoted(sql, item.key());
    }
    for (const auto& item : values) {
      sql += ", ";
      append_quoted(sql, item.key());
    }
    sql += sql::kSelectParams;
    for (std::size_t i = 1; i <= count; ++i) {
      if (i > 1) sql += ", ";
      sql.push_back('$');
      sql += std::to_string(i);
    }
    if (last_cast != nullptr) sql += last_cast;
    sql += sql::kUnlessUpdated;
  }

  // Prepares a helper's statement of a new shape on the server at once, so that a missing
  // table or column fails the call that used it, and its executions can be queued.
  const Session::Statement& prepare_deferred(const std::string& cache_key, const std::string& sql,
                                             std::size_t parameters, const char* verb,
                                             std::string_view object) {
    context_.flush_writes();  // a failing PREPARE must not hide a queued write's error
    try {
      const PostgresContext::StatementDeadline deadline(context_);
      return context_.session().add_deferred(cache_key, sql, parameters);
    } catch (const std::exception& e) {
      context_.fail(e, describe(context_.projection_name()) + ": " + verb + " \"" +
                           std::string(object.substr(0, 200)) + "\"");
    }
  }

  // Queues the write in a pipelined batch; otherwise sends it now.
  void write(const Session::Statement& statement, const std::vector<Param>& params,
             const char* verb, std::string_view object) {
    if (context_.pipelined()) {
      context_.defer(statement, params);
    } else {
      static_cast<void>(run(statement, params, verb, object));
    }
  }

  pqxx::result run(const Session::Statement& statement, const std::vector<Param>& params,
                   const char* verb, std::string_view object) {
    try {
      const PostgresContext::StatementDeadline deadline(context_);
      return exec_statement(context_.transaction(), statement.name,
                            pqxx::prepare::make_dynamic_params(params));
    } catch (const std::exception& e) {
      // The message is built only on failure: the success path stays allocation-light.
      context_.fail(e, describe(context_.projection_name()) + ": " + verb + " \"" +
                           std::string(object.substr(0, 200)) + "\"");
    }
  }

  PostgresContext& context_;
};

PostgresContext& context_of(UnitOfWork& work, const Projection& projection) {
  auto* context = dynamic_cast<PostgresContext*>(&work);
  if (context == nullptr) {
    throw InvalidArgumentError(
        describe(projection.name()) +
        " is a ReadModelProjection: it writes PostgreSQL tables and needs a unit of work of "
        "make_postgres_projection_store(), not " +
        typeid(work).name());
  }
  return *context;
}

}  // namespace

void ReadModelProjection::setup(UnitOfWork& work) {
  auto& context = context_of(work, *this);
  const auto& projection = context.projection_name();
  const auto pending = migrations();
  std::set<std::string> names;
  for (const auto& migration : pending) {
    if (migration.name.empty() || migration.sql.empty()) {
      throw InvalidArgumentError(describe(projection) +
                                 ": a read-model migration needs a name and SQL");
    }
    if (!names.insert(migration.name).second) {
      throw InvalidArgumentError(describe(projection) + ": read-model migration \"" +
                                 migration.name + "\" is listed twice");
    }
  }
  if (pending.empty()) return;
  context.enter_read_schema();  // a blue/green generation's migrations create its tables there
  auto& tx = context.transaction();
  std::set<std::string> applied;
  try {
    // Serializes concurrent preparers of this projection until commit; each then sees the
    // migrations the other recorded (read committed: a new snapshot per statement).
    exec_statement(tx, sql::kMigrationLockName, projection);
    for (const auto& row : exec_statement(tx, sql::kMigrationsAppliedName, projection)) {
      applied.insert(row[0].c_str());
    }
  } catch (const std::exception& e) {
    context.fail(e, describe(projection) + ": read the applied read-model migrations", false);
  }
  for (const auto& migration : pending) {
    if (applied.contains(migration.name)) continue;
    try {
      // The projection's own DDL, as written by its author (no values, no parameters).
      tx.exec(migration.sql);
      exec_statement(tx, sql::kMigrationRecordName, projection, migration.name);
    } catch (const std::exception& e) {
      context.fail(e, describe(projection) + ": read-model migration \"" + migration.name +
                          "\" failed and was rolled back");
    }
    detail::logger()->info("annals: {}: applied read-model migration {}", describe(projection),
                           migration.name);
  }
}

void ReadModelProjection::handle(const RecordedEvent& event, ReadModel& db) {
  if (handlers_.empty()) {
    throw InvalidArgumentError(
        "projection '" + name() +
        "' neither overrides handle() nor declares typed handlers (on<E>())");
  }
  static_cast<void>(handlers_.dispatch(event, db));
}

EventFilter ReadModelProjection::filter() const {
  if (handlers_.empty()) return {};
  return handlers_.filter();
}

void ReadModelProjection::apply(const RecordedEvent& event, UnitOfWork& work) {
  auto& context = context_of(work, *this);
  // Applied by an inline append already (inline_projections.cpp): once is enough.
  if (context.applied_inline(event.position)) return;
  PostgresReadModel db(context);
  handle(event, db);
}

void ReadModelProjection::reset(UnitOfWork& work) {
  auto& context = context_of(work, *this);
  const auto& projection = context.projection_name();
  // Waits for the inline appends under way (they hold the lock shared) and keeps new ones out
  // until this reset commits; the replay then applies every event again, the ones applied
  // inline before included (sql/0016).
  try {
    exec_statement(context.transaction(), sql::kInlineLockName, projection);
    exec_statement(context.transaction(), sql::kInlineForgetName, projection);
  } catch (const std::exception& e) {
    context.fail(e, describe(projection) + ": reset: forget the inline-applied transactions",
                 false);
  }
  const auto targets = tables();
  if (targets.empty()) return;
  context.enter_read_schema();
  std::string sql = sql::kTruncate;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (i > 0) sql += ", ";
    append_table(sql, targets[i], projection);
  }
  sql += sql::kRestartIdentity;
  try {
    context.transaction().exec(sql);
  } catch (const std::exception& e) {
    context.fail(e, describe(projection) + ": reset (" + sql + ")");
  }
}

}  // namespace annals::projections
