// The PostgreSQL DocumentReader. Each query is one prepared statement, assembled from validated
// names (document_sql.hpp) and cached per connection by its text, with every value a bound
// parameter; the filter's values travel as jsonb and compare with jsonb's operators, on the
// same (data #> '{path}') expression the collection's indexes are built on, so the planner can
// use them. A page asks for one row more than its limit to know whether there is a next page.
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "annals/projections/detail/document_query.hpp"
#include "annals/projections/postgres/postgres_document_reader.hpp"
#include "connection_string.hpp"
#include "document_sql.hpp"
#include "pooled_call.hpp"
#include "postgres_batch.hpp"
#include "sql.hpp"
#include "sql_parameters.hpp"

namespace annals::projections {
namespace detail {

/// A connection of the reader with the statements prepared on it so far, by SQL text.
struct ReaderSession {
  explicit ReaderSession(const std::string& connection_string) : connection(connection_string) {}

  /// The name of the statement `sql`, prepared on first use.
  const std::string& statement(const std::string& sql) {
    const auto found = statements.find(sql);
    if (found != statements.end()) return found->second;
    std::string name = "annals_doc_" + std::to_string(statements.size());
    connection.prepare(name, sql);
    return statements.emplace(sql, std::move(name)).first->second;
  }

  pqxx::connection connection;
  std::unordered_map<std::string, std::string> statements;
};

inline int socket_of(ReaderSession& session) noexcept { return session.connection.sock(); }

}  // namespace detail

namespace {

using detail::Param;
using detail::ReaderSession;

const char* operator_of(FieldCondition::Op op) {
  switch (op) {
    case FieldCondition::Op::kEq:
      return " = $";
    case FieldCondition::Op::kLt:
      return " < $";
    case FieldCondition::Op::kLe:
      return " <= $";
    case FieldCondition::Op::kGt:
      return " > $";
    case FieldCondition::Op::kGe:
      return " >= $";
    case FieldCondition::Op::kContains:
      return sql::kDocumentContains;
  }
  return " = $";
}

// A raw() parameter: null → NULL, strings as they are, the rest as JSON text.
Param raw_param(const nlohmann::json& value, std::size_t n) {
  if (value.is_null()) return Param{{}, true};
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text.find('\0') != std::string::npos) {
      throw InvalidArgumentError("raw query parameter $" + std::to_string(n) +
                                 " contains a NUL character");
    }
    return Param{text, false};
  }
  return Param{value.dump(), false};
}

nlohmann::json parse_document(const pqxx::field& field, std::string_view collection) {
  const std::string_view text(field.c_str(), field.size());
  try {
    check_json_text_depth(text, "the document");
  } catch (const InvalidArgumentError& e) {
    throw CorruptionError("collection \"" + std::string(collection) + "\": " + e.what());
  }
  auto parsed = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (parsed.is_discarded()) {
    throw CorruptionError("collection \"" + std::string(collection) +
                          "\": a stored document is not JSON");
  }
  return parsed;
}

// "WHERE a AND b" of `clauses`, or nothing.
void append_where(std::string& sql, const std::vector<std::string>& clauses) {
  for (std::size_t i = 0; i < clauses.size(); ++i) {
    sql += i == 0 ? " WHERE " : " AND ";
    sql += clauses[i];
  }
}

// The filter's conditions as clauses, their values appended to `params`.
void add_conditions(const DocumentFilter& filter, std::vector<std::string>& clauses,
                    std::vector<Param>& params) {
  for (const auto& condition : filter.conditions()) {
    params.push_back(Param{condition.value.dump(), false});
    clauses.push_back(detail::field_expression(condition.field) + operator_of(condition.op) +
                      std::to_string(params.size()) + sql::kDocumentJsonbParam);
  }
}

class PostgresDocumentReader final : public DocumentReader {
 public:
  PostgresDocumentReader(PostgresDocumentReaderOptions options, ProjectionStore& store)
      : options_(std::move(options)),
        store_(store),
        watchdog_(options_.call_timeout),
        pool_(postgres::detail::with_timeouts(options_.connection_string,
                                              options_.connection_timeouts),
              options_.pool_size, nullptr, options_.acquire_timeout) {}

  // Runs one query on a pooled connection (retried on a new one when the connection broke).
  template <typename F>
  auto run(const std::string& what, F&& f) {
    postgres::detail::RetryPolicy policy{
        .max_broken_retries = 2,
        .max_transient_retries = 2,
        .one_count = true,
        .component = "document reader",
    };
    policy.call_timeout = options_.call_timeout;
    policy.watchdog = &watchdog_;
    return postgres::detail::run_pooled(pool_, what, nullptr, policy, std::forward<F>(f));
  }

  std::optional<nlohmann::json> get(std::string_view collection, std::string_view id,
                                    const std::optional<ReadAfter>& after) override {
    auto table = detail::document_table(collection);
    prepare_read(collection, after);
    const std::string sql = sql::kDocumentGetHead + table + sql::kDocumentById;
    return run("get a document", [&](ReaderSession& session) -> std::optional<nlohmann::json> {
      pqxx::nontransaction tx(session.connection);
      const auto rows = tx.exec_prepared(session.statement(sql), std::string(id));
      if (rows.empty()) return std::nullopt;
      return parse_document(rows[0][0], collection);
    });
  }

  DocumentPage find(std::string_view collection, const DocumentQuery& query,
                    const std::optional<ReadAfter>& after) override {
    detail::validate_query(collection, query);
    std::vector<std::string> clauses;
    std::vector<Param> params;
    add_conditions(query.filter, clauses, params);
    const std::string compare = query.descending ? " < " : " > ";
    std::string order;
    if (query.order_by) {
      const auto field = detail::field_expression(*query.order_by);
      clauses.push_back(field + sql::kDocumentIsNotNull);
      if (query.after) {
        const auto cursor = detail::decode_cursor(*query.after, query);
        params.push_back(Param{cursor.value.value_or(nlohmann::json()).dump(), false});
        params.push_back(Param{cursor.id, false});
        clauses.push_back("(" + field + ", id)" + compare + "($" +
                          std::to_string(params.size() - 1) + sql::kDocumentJsonbParam + ", $" +
                          std::to_string(params.size()) + ")");
      }
      order = field + (query.descending ? sql::kDocumentDesc : "") + ", ";
    } else if (query.after) {
      params.push_back(Param{detail::decode_cursor(*query.after, query).id, false});
      clauses.push_back(std::string(sql::kDocumentIdColumn) + compare + "$" +
                        std::to_string(params.size()));
    }
    order += sql::kDocumentIdColumn;
    if (query.descending) order += sql::kDocumentDesc;
    params.push_back(Param{std::to_string(query.limit + 1), false});
    std::string sql = sql::kDocumentSelectHead + detail::document_table(collection);
    append_where(sql, clauses);
    sql += sql::kDocumentOrderBy + order + sql::kDocumentLimit + std::to_string(params.size());
    prepare_read(collection, after);
    auto page = run("find documents", [&](ReaderSession& session) {
      pqxx::nontransaction tx(session.connection);
      const auto rows =
          tx.exec_prepared(session.statement(sql), pqxx::prepare::make_dynamic_params(params));
      DocumentPage out;
      out.documents.reserve(rows.size());
      for (const auto& row : rows) {
        out.documents.push_back(
            Document{row[0].as<std::string>(), parse_document(row[1], collection)});
      }
      return out;
    });
    if (page.documents.size() > query.limit) {
      page.documents.pop_back();
      page.next = detail::encode_cursor(page.documents.back(), query);
    }
    return page;
  }

  std::int64_t count(std::string_view collection, const DocumentFilter& filter,
                     const std::optional<ReadAfter>& after) override {
    detail::validate_filter(collection, filter);
    std::vector<std::string> clauses;
    std::vector<Param> params;
    add_conditions(filter, clauses, params);
    std::string sql = sql::kDocumentCountHead + detail::document_table(collection);
    append_where(sql, clauses);
    prepare_read(collection, after);
    return run("count documents", [&](ReaderSession& session) {
      pqxx::nontransaction tx(session.connection);
      const auto rows =
          tx.exec_prepared(session.statement(sql), pqxx::prepare::make_dynamic_params(params));
      return rows[0][0].as<std::int64_t>();
    });
  }

  std::vector<Document> raw(std::string_view collection, std::string_view tail,
                            const std::vector<nlohmann::json>& params,
                            const std::optional<ReadAfter>& after) override {
    const std::string sql =
        sql::kDocumentSelectHead + detail::document_table(collection) + " " + std::string(tail);
    if (sql.find('\0') != std::string::npos) {
      throw InvalidArgumentError("raw query on collection \"" + std::string(collection) +
                                 "\" contains a NUL character");
    }
    const auto expected = detail::count_parameters(sql);
    if (expected != params.size()) {
      throw InvalidArgumentError("raw query on collection \"" + std::string(collection) +
                                 "\" takes " + std::to_string(expected) + " parameters, got " +
                                 std::to_string(params.size()));
    }
    std::vector<Param> values;
    for (std::size_t i = 0; i < params.size(); ++i) values.push_back(raw_param(params[i], i + 1));
    prepare_read(collection, after);
    return run("raw document query", [&](ReaderSession& session) {
      pqxx::nontransaction tx(session.connection);
      const auto rows =
          tx.exec_prepared(session.statement(sql), pqxx::prepare::make_dynamic_params(values));
      if (rows.columns() != 2) {
        throw InvalidArgumentError("raw query on collection \"" + std::string(collection) +
                                   "\" must return the columns id and data");
      }
      std::vector<Document> out;
      for (const auto& row : rows) {
        out.push_back(Document{row[0].as<std::string>(), parse_document(row[1], collection)});
      }
      return out;
    });
  }

  std::string projection_of(std::string_view collection) override {
    validate_collection_name(collection);
    {
      std::lock_guard lock(mutex_);
      const auto found = owners_.find(collection);
      if (found != owners_.end()) return found->second;
    }
    const std::string migration = "documents." + std::string(collection) + ".create";
    auto owner = run("look up a collection", [&](ReaderSession& session) {
      pqxx::nontransaction tx(session.connection);
      const auto rows = tx.exec_prepared(session.statement(sql::kDocumentOwner), migration);
      return rows.empty() ? std::optional<std::string>() : rows[0][0].as<std::string>();
    });
    if (!owner) {
      throw NotFoundError("collection \"" + std::string(collection) +
                          "\" is not declared by any DocumentProjection (prepared so far)");
    }
    std::lock_guard lock(mutex_);
    return owners_.emplace(std::string(collection), *owner).first->second;
  }

 private:
  // The collection must be declared (NotFoundError, as in memory); with `after`, waits.
  void prepare_read(std::string_view collection, const std::optional<ReadAfter>& after) {
    const auto projection = projection_of(collection);
    if (!after) return;
    if (!wait_for_checkpoint(store_, projection, after->position, after->timeout)) {
      throw CatchUpTimeoutError("collection \"" + std::string(collection) + "\": projection '" +
                                projection + "' did not pass position " +
                                after->position.to_string() + " within " +
                                std::to_string(after->timeout.count()) + " ms");
    }
  }

  PostgresDocumentReaderOptions options_;
  ProjectionStore& store_;
  postgres::detail::Watchdog watchdog_;
  postgres::detail::ConnectionPool<ReaderSession> pool_;
  std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> owners_;
};

}  // namespace

std::unique_ptr<DocumentReader> make_postgres_document_reader(PostgresDocumentReaderOptions options,
                                                              ProjectionStore& store) {
  if (options.connection_string.empty()) {
    throw InvalidArgumentError("PostgresDocumentReaderOptions::connection_string is empty");
  }
  if (options.pool_size == 0) {
    throw InvalidArgumentError("PostgresDocumentReaderOptions::pool_size must be at least 1");
  }
  constexpr std::string_view kOwner = "PostgresDocumentReaderOptions";
  postgres::detail::validate_timeouts(options.connection_timeouts, kOwner);
  postgres::detail::validate_duration(options.acquire_timeout, kOwner, "acquire_timeout", false);
  postgres::detail::validate_duration(options.call_timeout, kOwner, "call_timeout", false);
  return std::make_unique<PostgresDocumentReader>(std::move(options), store);
}

}  // namespace annals::projections
