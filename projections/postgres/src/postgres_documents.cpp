// The DocumentWork of the PostgreSQL projection store's units of work: a DocumentProjection's
// collections are jsonb tables ("doc_<name>", sql.hpp) created and migrated by setup, through
// the projection's migration records (annals.projection_migrations: "documents.<c>.create" and
// one "documents.<c>.index.<kind>.<field>" per declared index), and written in the batch's
// transaction, so the documents and the checkpoint commit together (exactly once).
//
// Writes are executions of statements prepared once per connection, queued in a pipelined batch
// exactly like ReadModel::upsert (read_model.cpp): they cost no round trip of their own and go
// to the server with the checkpoint write. Documents travel as bound jsonb parameters.
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "document_sql.hpp"
#include "postgres_batch.hpp"
#include "sql.hpp"

namespace annals::projections::detail {
namespace {

std::string create_migration(const std::string& collection) {
  return "documents." + collection + ".create";
}

std::string index_migration(const std::string& collection, const DocumentIndex& index) {
  return "documents." + collection + ".index." +
         (index.kind == DocumentIndex::Kind::kOrdered ? "ordered." : "contains.") + index.field;
}

class PostgresDocuments final : public Documents {
 public:
  explicit PostgresDocuments(PostgresContext& context) : context_(context) {}

  void allow(const std::vector<CollectionSpec>& collections) {
    if (allowed_.size() == collections.size()) return;
    for (const auto& spec : collections) allowed_.insert(spec.name);
  }

  void upsert_json(std::string_view collection, std::string_view id,
                   const nlohmann::json& document) override {
    check(collection, id, document, "the body");
    write('u', collection, id, document, sql::kDocumentUpsertHead, sql::kDocumentUpsertTail);
  }

  void patch_json(std::string_view collection, std::string_view id,
                  const nlohmann::json& changes) override {
    check(collection, id, changes, "a patch");
    write('p', collection, id, changes, sql::kDocumentPatchHead, sql::kDocumentPatchTail);
  }

  void increment(std::string_view collection, std::string_view id, std::string_view field,
                 std::int64_t by) override {
    check(collection, id, nlohmann::json::object(), "");
    const auto path = path_literal(field);
    const std::string tail = sql::kDocumentIncrementSet + path + sql::kDocumentIncrementFrom +
                             path + sql::kDocumentIncrementBy;
    write('i', collection, id, by, sql::kDocumentPatchHead, tail.c_str(), field);
  }

  void add_to(std::string_view collection, std::string_view id,
              const nlohmann::json& amounts) override {
    check(collection, id, nlohmann::json::object(), "");
    validate_amounts(collection, id, amounts);
    write('a', collection, id, amounts, sql::kDocumentUpsertHead, sql::kDocumentAddTail);
  }

  void remove(std::string_view collection, std::string_view id) override {
    check(collection, id, nlohmann::json::object(), "");
    write('d', collection, id, nullptr, sql::kDocumentRemoveHead, sql::kDocumentById);
  }

 private:
  void check(std::string_view collection, std::string_view id, const nlohmann::json& body,
             const char* what) const {
    validate_collection_name(collection);
    if (!allowed_.contains(collection)) {
      throw InvalidArgumentError("projection '" + context_.projection_name() +
                                 "' writes collection \"" + std::string(collection) +
                                 "\", which its collections() lacks");
    }
    validate_document_id(id);
    if (!body.is_object()) {
      throw InvalidArgumentError(std::string(what) + " of document \"" + std::string(id) +
                                 "\" in collection \"" + std::string(collection) +
                                 "\" must be a JSON object, got " + body.dump().substr(0, 200));
    }
  }

  // '{a,b}' for the path "a.b" (validated segments of [A-Za-z0-9_] only).
  static std::string path_literal(std::string_view field) {
    std::string out = "'{";
    bool first = true;
    for (const auto& segment : field_segments(field)) {
      if (!first) out += ',';
      first = false;
      out += segment;
    }
    return out + "}'";
  }

  void write(char verb, std::string_view collection, std::string_view id,
             const nlohmann::json& body, const char* head, const char* tail,
             std::string_view field = {}) {
    std::string key = "D";
    key += verb;
    key.append(collection);
    key += '|';
    key.append(field);
    const auto* statement = context_.session().find(key);
    if (statement == nullptr) {
      const std::string sql = head + document_table(collection) + tail;
      const auto parameters = body.is_null() ? std::size_t{1} : std::size_t{2};
      context_.flush_writes();  // a failing PREPARE must not hide a queued write's error
      try {
        const PostgresContext::StatementDeadline deadline(context_);
        statement = &context_.session().add_deferred(key, sql, parameters);
      } catch (const std::exception& e) {
        context_.fail(e, "projection \"" + context_.projection_name() + "\": prepare " + sql);
      }
    }
    std::vector<Param> params;
    params.push_back(Param{std::string(id), false});
    if (!body.is_null()) params.push_back(Param{body.dump(), false});
    if (context_.pipelined()) {
      context_.defer(*statement, params);
      return;
    }
    try {
      const PostgresContext::StatementDeadline deadline(context_);
      static_cast<void>(exec_statement(context_.transaction(), statement->name,
                                       pqxx::prepare::make_dynamic_params(params)));
    } catch (const std::exception& e) {
      context_.fail(e, "projection \"" + context_.projection_name() + "\": write document \"" +
                           std::string(id).substr(0, 100) + "\" of collection \"" +
                           std::string(collection) + "\"");
    }
  }

  PostgresContext& context_;
  std::set<std::string, std::less<>> allowed_;
};

}  // namespace

PostgresContext::~PostgresContext() = default;

void PostgresContext::set_up_collections(const std::vector<CollectionSpec>& collections) {
  const auto& projection = projection_name();
  enter_read_schema();
  auto& tx = transaction();
  std::set<std::string> applied;
  try {
    exec_statement(tx, sql::kMigrationLockName, projection);
    for (const auto& row : exec_statement(tx, sql::kMigrationsAppliedName, projection)) {
      applied.insert(row[0].c_str());
    }
  } catch (const std::exception& e) {
    fail(e, "projection \"" + projection + "\": read the applied collection migrations", false);
  }
  const auto migrate = [&](const std::string& name, const std::string& statement) {
    if (applied.contains(name)) return;
    try {
      tx.exec(statement);
      exec_statement(tx, sql::kMigrationRecordName, projection, name);
    } catch (const std::exception& e) {
      fail(e, "projection \"" + projection + "\": collection migration \"" + name +
                  "\" failed and was rolled back");
    }
    logger()->info("annals: projection \"{}\": applied collection migration {}", projection, name);
  };
  for (const auto& spec : collections) {
    const auto table = document_table(spec.name);
    const auto create = create_migration(spec.name);
    pqxx::result owners;
    try {
      owners = exec_statement(tx, sql::kDocumentOwnerName, create);
    } catch (const std::exception& e) {
      fail(e, "projection \"" + projection + "\": look up the owner of a collection", false);
    }
    for (const auto& row : owners) {
      if (row[0].as<std::string>() != projection) {
        throw InvalidArgumentError("collection \"" + spec.name + "\" belongs to projection '" +
                                   row[0].as<std::string>() + "', not '" + projection + "'");
      }
    }
    migrate(create, sql::kDocumentCreateHead + table + sql::kDocumentCreateBody);
    for (const auto& index : spec.indexes) {
      std::string statement =
          sql::kDocumentIndexHead + index_name(spec.name, index) + sql::kDocumentIndexOn + table;
      if (index.kind == DocumentIndex::Kind::kOrdered) {
        statement += " (" + field_expression(index.field) + ", " + sql::kDocumentIdColumn + ")";
      } else {
        statement += sql::kDocumentGin + field_expression(index.field) + sql::kDocumentGinOps;
      }
      migrate(index_migration(spec.name, index), statement);
    }
  }
}

Documents& PostgresContext::documents(const std::vector<CollectionSpec>& collections) {
  if (!documents_) {
    enter_read_schema();
    documents_ = std::make_unique<PostgresDocuments>(*this);
  }
  auto& documents = static_cast<PostgresDocuments&>(*documents_);
  documents.allow(collections);
  return documents;
}

void PostgresContext::clear_collections(const std::vector<CollectionSpec>& collections) {
  if (collections.empty()) return;
  enter_read_schema();
  std::string statement = sql::kDocumentTruncate;
  for (std::size_t i = 0; i < collections.size(); ++i) {
    if (i > 0) statement += ", ";
    statement += document_table(collections[i].name);
  }
  flush_writes();
  try {
    const StatementDeadline deadline(*this);
    transaction().exec(statement);
  } catch (const std::exception& e) {
    fail(e, "projection \"" + projection_name() + "\": clear its collections");
  }
}

}  // namespace annals::projections::detail
