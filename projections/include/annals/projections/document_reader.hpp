// Typed queries of document collections (documents.hpp) for read APIs, with read-your-writes:
// get by id, find with field filters, ordering and keyset paging, count, and a raw-SQL escape
// hatch that still binds parameters. The same API and semantics on the in-memory and the
// PostgreSQL projection store (one contract suite runs on both; docs/read-side.md).
//
//   auto accounts = reader.collection<Account>("accounts");
//   std::optional<Account> a = accounts.after(result.position).get("account-42");
//   auto page = accounts.find(DocumentQuery{.filter = DocumentFilter().ge("balance", 100),
//                                           .order_by = "balance", .limit = 20});
//   auto next = accounts.find({.filter = ..., .order_by = "balance", .after = page.next});
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/projections/projection_store.hpp"

namespace annals::projections {

/// The collection's projection did not pass the position given to after() within the timeout.
/// Nothing was queried. Retry later (UnavailableError: code kUnavailable, retryable).
class CatchUpTimeoutError : public UnavailableError {
 public:
  explicit CatchUpTimeoutError(const std::string& message) : UnavailableError(message) {}
};

/// A stored document does not decode into the requested C++ type (from_json threw). Names the
/// collection, the id and nlohmann's message. The reader stays usable. CorruptionError: the
/// stored data and the type disagree; never retried as is.
class DocumentDecodeError : public CorruptionError {
 public:
  explicit DocumentDecodeError(const std::string& message) : CorruptionError(message) {}
};

/// One condition on a field. Field paths are validated (validate_field_path) and values are
/// bound as parameters.
struct FieldCondition {
  enum class Op { kEq, kLt, kLe, kGt, kGe, kContains };
  std::string field;
  Op op = Op::kEq;
  nlohmann::json value;
  friend bool operator==(const FieldCondition&, const FieldCondition&) = default;
};

/// Conditions that must all hold (AND). A document lacking a field fails every condition on it.
/// Values compare as PostgreSQL's jsonb does: by type first (null < string < number < boolean
/// < array < object), then numbers numerically, strings by the database's collation (bytes in
/// memory: use a "C" collation for identical string ordering), booleans false < true.
class DocumentFilter {
 public:
  DocumentFilter& eq(std::string field, nlohmann::json value) {
    return add(std::move(field), FieldCondition::Op::kEq, std::move(value));
  }
  DocumentFilter& lt(std::string field, nlohmann::json value) {
    return add(std::move(field), FieldCondition::Op::kLt, std::move(value));
  }
  DocumentFilter& le(std::string field, nlohmann::json value) {
    return add(std::move(field), FieldCondition::Op::kLe, std::move(value));
  }
  DocumentFilter& gt(std::string field, nlohmann::json value) {
    return add(std::move(field), FieldCondition::Op::kGt, std::move(value));
  }
  DocumentFilter& ge(std::string field, nlohmann::json value) {
    return add(std::move(field), FieldCondition::Op::kGe, std::move(value));
  }
  /// jsonb containment (@>): an array field contains the value (or every element of an array
  /// value), an object field contains the members of an object value, a scalar equals it.
  DocumentFilter& contains(std::string field, nlohmann::json value) {
    return add(std::move(field), FieldCondition::Op::kContains, std::move(value));
  }

  [[nodiscard]] const std::vector<FieldCondition>& conditions() const noexcept {
    return conditions_;
  }
  friend bool operator==(const DocumentFilter&, const DocumentFilter&) = default;

 private:
  DocumentFilter& add(std::string field, FieldCondition::Op op, nlohmann::json value) {
    conditions_.push_back(FieldCondition{std::move(field), op, std::move(value)});
    return *this;
  }
  std::vector<FieldCondition> conditions_;
};

/// What find() returns: one page, ordered, and the cursor of the next page.
struct DocumentQuery {
  DocumentFilter filter;
  /// Order by this field, then by id; documents lacking the field are left out. Empty: by id.
  std::optional<std::string> order_by;
  bool descending = false;
  /// The `next` cursor of the previous page (opaque); empty for the first page.
  std::optional<std::string> after;
  /// Documents per page, 1 to 1000. Default 100.
  std::size_t limit = 100;
};

/// A stored document.
struct Document {
  std::string id;
  nlohmann::json data;
  friend bool operator==(const Document&, const Document&) = default;
};

/// One page of find(): the documents, and the cursor to pass as DocumentQuery::after for the
/// next page (empty on the last page).
struct DocumentPage {
  std::vector<Document> documents;
  std::optional<std::string> next;
};

/// A typed page.
template <typename T>
struct Page {
  std::vector<std::string> ids;
  std::vector<T> items;
  std::optional<std::string> next;
};

/// Read-your-writes: wait until the collection's projection has passed `position` (at most
/// `timeout`) before querying.
struct ReadAfter {
  Position position;
  std::chrono::milliseconds timeout{5'000};
};

template <typename T>
class TypedCollection;

/// Queries of document collections. Implementations: make_in_memory_document_reader() below
/// and annals::projections::make_postgres_document_reader()
/// (annals/projections/postgres/postgres_document_reader.hpp).
///
/// Every call validates the collection name and field paths first (InvalidArgumentError,
/// nothing sent), then, with `after`, waits for the collection's projection
/// (CatchUpTimeoutError; NotFoundError when no projection declares the collection), then
/// queries. Thread safety: every method from any thread.
class DocumentReader {
 public:
  DocumentReader(const DocumentReader&) = delete;
  DocumentReader& operator=(const DocumentReader&) = delete;
  virtual ~DocumentReader() = default;

  /// The document `id`, or empty. Cost: one round trip (plus the wait).
  [[nodiscard]] virtual std::optional<nlohmann::json> get(
      std::string_view collection, std::string_view id, const std::optional<ReadAfter>& after) = 0;
  /// One page of the documents matching `query.filter`. Throws InvalidArgumentError for a
  /// malformed cursor or limit. Cost: one round trip (plus the wait).
  [[nodiscard]] virtual DocumentPage find(std::string_view collection, const DocumentQuery& query,
                                          const std::optional<ReadAfter>& after) = 0;
  /// How many documents match `filter`. Cost: one round trip (plus the wait).
  [[nodiscard]] virtual std::int64_t count(std::string_view collection,
                                           const DocumentFilter& filter,
                                           const std::optional<ReadAfter>& after) = 0;
  /// The escape hatch: "SELECT id, data FROM <collection's table> " + `tail` (e.g.
  /// "WHERE data->>'owner' = $1 ORDER BY id LIMIT 10"), with `params` bound as $1, $2, ...
  /// Build `tail` from constants only. Throws InvalidArgumentError on the in-memory reader
  /// (there is no SQL there) and for a parameter count that does not match `tail`.
  [[nodiscard]] virtual std::vector<Document> raw(std::string_view collection,
                                                  std::string_view tail,
                                                  const std::vector<nlohmann::json>& params,
                                                  const std::optional<ReadAfter>& after) = 0;
  /// The projection maintaining `collection`. Throws NotFoundError when none declared it.
  [[nodiscard]] virtual std::string projection_of(std::string_view collection) = 0;

  /// The typed view of one collection: documents decode through nlohmann's from_json.
  template <typename T>
  [[nodiscard]] TypedCollection<T> collection(std::string name) {
    return TypedCollection<T>(*this, std::move(name));
  }

 protected:
  DocumentReader() = default;
};

/// A typed view of one collection (cheap to copy; the reader must outlive it).
template <typename T>
class TypedCollection {
 public:
  TypedCollection(DocumentReader& reader, std::string name)
      : reader_(&reader), name_(std::move(name)) {}

  /// The same view, whose queries first wait until the collection's projection passed
  /// `position` (at most `timeout`; CatchUpTimeoutError otherwise).
  [[nodiscard]] TypedCollection after(
      Position position, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    auto copy = *this;
    copy.after_ = ReadAfter{position, timeout};
    return copy;
  }

  /// The document `id` decoded, or empty. Throws DocumentDecodeError when it does not decode.
  [[nodiscard]] std::optional<T> get(std::string_view id) const {
    auto found = reader_->get(name_, id, after_);
    if (!found) return std::nullopt;
    return decode(*found, id);
  }
  /// One page of matching documents, decoded.
  [[nodiscard]] Page<T> find(const DocumentQuery& query) const {
    auto page = reader_->find(name_, query, after_);
    Page<T> out;
    out.next = std::move(page.next);
    out.ids.reserve(page.documents.size());
    out.items.reserve(page.documents.size());
    for (auto& document : page.documents) {
      out.items.push_back(decode(document.data, document.id));
      out.ids.push_back(std::move(document.id));
    }
    return out;
  }
  /// How many documents match `filter`.
  [[nodiscard]] std::int64_t count(const DocumentFilter& filter = {}) const {
    return reader_->count(name_, filter, after_);
  }
  /// The escape hatch (DocumentReader::raw()), decoded.
  [[nodiscard]] std::vector<T> raw(std::string_view tail,
                                   const std::vector<nlohmann::json>& params = {}) const {
    std::vector<T> out;
    for (auto& document : reader_->raw(name_, tail, params, after_)) {
      out.push_back(decode(document.data, document.id));
    }
    return out;
  }

 private:
  T decode(const nlohmann::json& data, std::string_view id) const {
    try {
      return data.get<T>();
    } catch (const nlohmann::json::exception& e) {
      throw DocumentDecodeError("document \"" + std::string(id) + "\" of collection \"" + name_ +
                                "\" does not decode: " + e.what());
    }
  }

  DocumentReader* reader_;
  std::string name_;
  std::optional<ReadAfter> after_;
};

/// A reader of the documents kept by `store`, which must be an in-memory projection store
/// (make_in_memory_projection_store()) and outlive the reader.
/// Throws: InvalidArgumentError for another kind of store.
[[nodiscard]] std::unique_ptr<DocumentReader> make_in_memory_document_reader(
    ProjectionStore& store);

}  // namespace annals::projections
