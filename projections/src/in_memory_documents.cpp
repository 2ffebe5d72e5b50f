// The documents of the in-memory projection store and their reader (in_memory_documents.hpp).
// The reader evaluates filters with the comparison and containment rules of PostgreSQL's jsonb
// (detail/document_query.hpp), so that read APIs unit-tested in memory behave as in production.
#include "in_memory_documents.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <utility>

#include "annals/eventstore/error.hpp"
#include "annals/projections/detail/document_query.hpp"

namespace annals::projections::detail {
namespace {

void require_object(const nlohmann::json& value, std::string_view collection, std::string_view id,
                    const char* what) {
  if (!value.is_object()) {
    throw InvalidArgumentError(std::string(what) + " of document \"" + std::string(id) +
                               "\" in collection \"" + std::string(collection) +
                               "\" must be a JSON object, got " + value.dump().substr(0, 200));
  }
}

// `value + by` for a field that holds an integer or nothing (null or missing counts as 0), as
// PostgreSQL computes it. Throws InvalidArgumentError, with the message the PostgreSQL store's
// add_to gives, for another value or a sum beyond 64 bits.
std::int64_t sum_of(const nlohmann::json& value, std::int64_t by, std::string_view id,
                    std::string_view field) {
  if (value.is_null()) return by;
  std::int64_t sum = 0;
  if (!is_int64(value) || __builtin_add_overflow(value.get<std::int64_t>(), by, &sum)) {
    throw InvalidArgumentError("cannot add " + std::to_string(by) + " to field \"" +
                               std::string(field) + "\" of document \"" + std::string(id) +
                               "\" holding " + value.dump().substr(0, 100) +
                               ": the sum is not a 64-bit integer");
  }
  return sum;
}

struct Condition {
  std::vector<std::string> path;
  FieldCondition::Op op;
  const nlohmann::json* value;
};

bool holds(const nlohmann::json& document, const Condition& condition) {
  const auto* field = find_field(document, condition.path);
  if (field == nullptr) return false;
  if (condition.op == FieldCondition::Op::kContains) {
    return jsonb_contains(*field, *condition.value);
  }
  const int c = compare_jsonb(*field, *condition.value);
  switch (condition.op) {
    case FieldCondition::Op::kEq:
      return c == 0;
    case FieldCondition::Op::kLt:
      return c < 0;
    case FieldCondition::Op::kLe:
      return c <= 0;
    case FieldCondition::Op::kGt:
      return c > 0;
    case FieldCondition::Op::kGe:
      return c >= 0;
    case FieldCondition::Op::kContains:
      break;
  }
  return false;
}

std::vector<Condition> conditions_of(const DocumentFilter& filter) {
  std::vector<Condition> out;
  for (const auto& condition : filter.conditions()) {
    out.push_back(Condition{field_segments(condition.field), condition.op, &condition.value});
  }
  return out;
}

class TablesReader final : public DocumentReader {
 public:
  TablesReader(std::shared_ptr<DocumentTables> tables, ProjectionStore& store)
      : tables_(std::move(tables)), store_(store) {}

  std::optional<nlohmann::json> get(std::string_view collection, std::string_view id,
                                    const std::optional<ReadAfter>& after) override {
    validate_collection_name(collection);
    wait(collection, after);
    std::lock_guard lock(tables_->mutex);
    const auto& documents = documents_locked(collection);
    const auto found = documents.find(id);
    if (found == documents.end()) return std::nullopt;
    return found->second;
  }

  DocumentPage find(std::string_view collection, const DocumentQuery& query,
                    const std::optional<ReadAfter>& after) override {
    validate_query(collection, query);
    const auto conditions = conditions_of(query.filter);
    std::optional<std::vector<std::string>> order;
    if (query.order_by) order = field_segments(*query.order_by);
    std::optional<Cursor> cursor;
    if (query.after) cursor = decode_cursor(*query.after, query);
    wait(collection, after);

    std::vector<Document> matches;
    {
      std::lock_guard lock(tables_->mutex);
      for (const auto& entry : documents_locked(collection)) {
        const auto& data = entry.second;  // clang cannot capture a structured binding
        if (order && find_field(data, *order) == nullptr) continue;
        if (!std::all_of(conditions.begin(), conditions.end(),
                         [&](const Condition& c) { return holds(data, c); })) {
          continue;
        }
        matches.push_back(Document{entry.first, data});
      }
    }
    // (value, id) ascending, or both descending: the order of the PostgreSQL query.
    const auto compare = [&](const nlohmann::json& data_a, const std::string& id_a,
                             const nlohmann::json& value_b, const std::string& id_b) {
      int c = 0;
      if (order) c = compare_jsonb(*find_field(data_a, *order), value_b);
      if (c == 0) c = id_a.compare(id_b) < 0 ? -1 : (id_a == id_b ? 0 : 1);
      return query.descending ? -c : c;
    };
    std::sort(matches.begin(), matches.end(), [&](const Document& a, const Document& b) {
      const nlohmann::json& value_b = order ? *find_field(b.data, *order) : b.data;
      return compare(a.data, a.id, value_b, b.id) < 0;
    });
    auto first = matches.begin();
    if (cursor) {
      const nlohmann::json value = cursor->value.value_or(nlohmann::json());
      first = std::find_if(matches.begin(), matches.end(), [&](const Document& d) {
        return compare(d.data, d.id, value, cursor->id) > 0;
      });
    }
    DocumentPage page;
    const auto available = static_cast<std::size_t>(std::distance(first, matches.end()));
    const auto taken = std::min(available, query.limit);
    page.documents.assign(std::make_move_iterator(first),
                          std::make_move_iterator(first + static_cast<std::ptrdiff_t>(taken)));
    if (available > taken) page.next = encode_cursor(page.documents.back(), query);
    return page;
  }

  std::int64_t count(std::string_view collection, const DocumentFilter& filter,
                     const std::optional<ReadAfter>& after) override {
    validate_filter(collection, filter);
    const auto conditions = conditions_of(filter);
    wait(collection, after);
    std::lock_guard lock(tables_->mutex);
    std::int64_t n = 0;
    for (const auto& entry : documents_locked(collection)) {
      const auto& data = entry.second;
      if (std::all_of(conditions.begin(), conditions.end(),
                      [&](const Condition& c) { return holds(data, c); })) {
        ++n;
      }
    }
    return n;
  }

  std::vector<Document> raw(std::string_view collection, std::string_view,
                            const std::vector<nlohmann::json>&,
                            const std::optional<ReadAfter>&) override {
    validate_collection_name(collection);
    throw InvalidArgumentError("raw SQL on collection \"" + std::string(collection) +
                               "\": the in-memory document reader has no SQL; use find()");
  }

  std::string projection_of(std::string_view collection) override {
    validate_collection_name(collection);
    std::lock_guard lock(tables_->mutex);
    const auto found = tables_->owners.find(collection);
    if (found == tables_->owners.end()) throw not_declared(collection);
    return found->second;
  }

 private:
  static NotFoundError not_declared(std::string_view collection) {
    return NotFoundError("collection \"" + std::string(collection) +
                         "\" is not declared by any DocumentProjection (prepared so far)");
  }

  const std::map<std::string, nlohmann::json, std::less<>>& documents_locked(
      std::string_view collection) const {
    if (!tables_->owners.contains(collection)) throw not_declared(collection);
    static const std::map<std::string, nlohmann::json, std::less<>> kEmpty;
    const auto found = tables_->data.find(collection);
    return found == tables_->data.end() ? kEmpty : found->second;
  }

  void wait(std::string_view collection, const std::optional<ReadAfter>& after) {
    if (!after) return;
    const auto projection = projection_of(collection);
    if (!wait_for_checkpoint(store_, projection, after->position, after->timeout)) {
      throw CatchUpTimeoutError("collection \"" + std::string(collection) + "\": projection '" +
                                projection + "' did not pass position " +
                                after->position.to_string() + " within " +
                                std::to_string(after->timeout.count()) + " ms");
    }
  }

  std::shared_ptr<DocumentTables> tables_;
  ProjectionStore& store_;
};

}  // namespace

void DocumentTables::declare(const std::string& projection,
                             const std::vector<CollectionSpec>& collections) {
  std::lock_guard lock(mutex);
  for (const auto& spec : collections) {
    validate_collection_name(spec.name);
    const auto found = owners.find(spec.name);
    if (found != owners.end() && found->second != projection) {
      throw InvalidArgumentError("collection \"" + spec.name + "\" belongs to projection '" +
                                 found->second + "', not '" + projection + "'");
    }
  }
  for (const auto& spec : collections) owners.emplace(spec.name, projection);
}

void StagedDocuments::allow(const std::vector<CollectionSpec>& collections) {
  for (const auto& spec : collections) allowed_.insert(spec.name);
}

void StagedDocuments::clear(const std::vector<CollectionSpec>& collections) {
  for (const auto& spec : collections) {
    cleared_.insert(spec.name);
    staged_.erase(spec.name);
  }
}

void StagedDocuments::check(std::string_view collection, std::string_view id) const {
  validate_collection_name(collection);
  if (!allowed_.contains(collection)) {
    throw InvalidArgumentError("projection '" + projection_ + "' writes collection \"" +
                               std::string(collection) + "\", which its collections() lacks");
  }
  validate_document_id(id);
}

std::optional<nlohmann::json> StagedDocuments::current(const std::string& collection,
                                                       const std::string& id) {
  const auto staged = staged_.find(collection);
  if (staged != staged_.end()) {
    const auto found = staged->second.find(id);
    if (found != staged->second.end()) return found->second;
  }
  if (cleared_.contains(collection)) return std::nullopt;
  std::lock_guard lock(tables_->mutex);
  const auto table = tables_->data.find(collection);
  if (table == tables_->data.end()) return std::nullopt;
  const auto found = table->second.find(id);
  if (found == table->second.end()) return std::nullopt;
  return found->second;
}

void StagedDocuments::upsert_json(std::string_view collection, std::string_view id,
                                  const nlohmann::json& document) {
  check(collection, id);
  require_object(document, collection, id, "the body");
  staged_[std::string(collection)][std::string(id)] = document;
}

void StagedDocuments::patch_json(std::string_view collection, std::string_view id,
                                 const nlohmann::json& changes) {
  check(collection, id);
  require_object(changes, collection, id, "a patch");
  const std::string name(collection);
  const std::string key(id);
  auto document = current(name, key);
  if (!document) return;  // a missing document stays missing
  for (const auto& item : changes.items()) (*document)[item.key()] = item.value();
  staged_[name][key] = std::move(document);
}

void StagedDocuments::increment(std::string_view collection, std::string_view id,
                                std::string_view field, std::int64_t by) {
  check(collection, id);
  const auto path = field_segments(field);
  const std::string name(collection);
  const std::string key(id);
  auto document = current(name, key);
  if (!document) return;  // a missing document stays missing
  nlohmann::json* parent = &*document;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    if (!parent->is_object() || !parent->contains(path[i])) return;  // no parent: unchanged
    parent = &(*parent)[path[i]];
  }
  if (!parent->is_object()) return;
  auto& value = (*parent)[path.back()];
  value = sum_of(value, by, key, field);
  staged_[name][key] = std::move(document);
}

void StagedDocuments::add_to(std::string_view collection, std::string_view id,
                             const nlohmann::json& amounts) {
  check(collection, id);
  validate_amounts(collection, id, amounts);
  const std::string name(collection);
  const std::string key(id);
  auto document = current(name, key);
  if (!document) {
    staged_[name][key] = amounts;
    return;
  }
  for (const auto& [field, amount] : amounts.items()) {
    auto& value = (*document)[field];
    value = sum_of(value, amount.get<std::int64_t>(), key, field);
  }
  staged_[name][key] = std::move(document);
}

void StagedDocuments::remove(std::string_view collection, std::string_view id) {
  check(collection, id);
  staged_[std::string(collection)][std::string(id)] = std::nullopt;
}

void StagedDocuments::apply_locked() {
  for (const auto& name : cleared_) tables_->data.erase(name);
  for (auto& [name, writes] : staged_) {
    auto& table = tables_->data[name];
    for (auto& [id, document] : writes) {
      if (document) {
        table.insert_or_assign(id, std::move(*document));
      } else {
        table.erase(id);
      }
    }
  }
  staged_.clear();
  cleared_.clear();
}

std::unique_ptr<DocumentReader> make_tables_reader(std::shared_ptr<DocumentTables> tables,
                                                   ProjectionStore& store) {
  return std::make_unique<TablesReader>(std::move(tables), store);
}

}  // namespace annals::projections::detail
