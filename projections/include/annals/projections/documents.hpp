// Document read models: a projection that keeps JSON documents by id in named collections, and
// the write side it uses (docs/read-side.md). On PostgreSQL each collection is one jsonb table
// that the library creates and migrates, written in the same transaction as the projection's
// checkpoint (exactly once, like ReadModelProjection); in memory, the documents live in the
// in-memory projection store and change atomically with its checkpoint. Queries are in
// annals/projections/document_reader.hpp.
//
//   class Accounts final : public annals::projections::DocumentProjection {
//    public:
//     explicit Accounts(const annals::EventRegistry& r) : DocumentProjection(r) {
//       on<Opened>([](const Opened& e, const annals::EventContext& c, Documents& docs) {
//         docs.collection("accounts").upsert(c.stream_id().value(), Account{e.owner, 0});
//       });
//     }
//     std::string name() const override { return "accounts"; }
//     std::vector<CollectionSpec> collections() const override {
//       return {{"accounts", {DocumentIndex::ordered("balance")}}};
//     }
//   };
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/projections/projection.hpp"

namespace annals::projections {

/// Throws InvalidArgumentError naming the name unless it is a valid collection name: 1 to 48
/// characters of [a-z0-9_], starting with a letter. (Collections are stored in tables named
/// after them, so the rule is strict; the name is still quoted wherever it reaches SQL.)
void validate_collection_name(std::string_view name);

/// Throws InvalidArgumentError unless `path` is a valid field path: 1 to 8 segments separated
/// by '.', each 1 to 63 characters of [A-Za-z0-9_] starting with a letter or '_'
/// ("balance", "owner.name"). Paths name object members only (no array indexes).
void validate_field_path(std::string_view path);

/// Throws InvalidArgumentError naming what is wrong unless `amounts` can be given to
/// Documents::add_to(): a non-empty JSON object whose member names are single field names and
/// whose values are integers within std::int64_t. `collection` and `id` only name the write.
void validate_amounts(std::string_view collection, std::string_view id,
                      const nlohmann::json& amounts);

/// Throws InvalidArgumentError unless `id` can be a document id: 1 to 256 bytes, no control
/// characters (a NUL could not be stored; the others would be unreadable in messages).
void validate_document_id(std::string_view id);

/// An index on a document field, created by the collection's migration.
struct DocumentIndex {
  enum class Kind {
    /// A b-tree on (field, id): speeds up equality, ranges, ordering and keyset paging on it.
    kOrdered,
    /// A GIN index (jsonb_path_ops) on the field: speeds up contains() on it.
    kContains,
  };
  std::string field;
  Kind kind = Kind::kOrdered;

  [[nodiscard]] static DocumentIndex ordered(std::string field) {
    return {std::move(field), Kind::kOrdered};
  }
  [[nodiscard]] static DocumentIndex contains(std::string field) {
    return {std::move(field), Kind::kContains};
  }
  friend bool operator==(const DocumentIndex&, const DocumentIndex&) = default;
};

/// A collection a DocumentProjection maintains: its name and its indexes. Adding an index later
/// creates it at the next start (each index is one migration, recorded by name); removing one
/// from the list leaves it in place.
struct CollectionSpec {
  std::string name;
  std::vector<DocumentIndex> indexes;
  friend bool operator==(const CollectionSpec&, const CollectionSpec&) = default;
};

/// Writes of one collection inside a projection's batch (see Documents::collection()).
class CollectionWriter;

/// The write side of document collections inside one batch of a DocumentProjection. Every
/// write takes effect with the batch's checkpoint, or not at all.
///
/// Documents are JSON objects. Writes are queued and sent with the checkpoint on PostgreSQL
/// (pipelined batches, as for ReadModel::upsert), so a write the database refuses fails the
/// batch later, as a DeferredWriteError.
///
/// Thread safety: the runner's thread only; valid only inside handle().
class Documents {
 public:
  Documents(const Documents&) = delete;
  Documents& operator=(const Documents&) = delete;
  virtual ~Documents() = default;

  /// Stores `document` (a JSON object) under `id`, replacing any document stored there.
  /// Throws: InvalidArgumentError (unknown collection of this projection, bad id, not an
  /// object). Cost: one statement, queued in a pipelined batch.
  virtual void upsert_json(std::string_view collection, std::string_view id,
                           const nlohmann::json& document) = 0;
  /// Shallow merge: sets each top-level member of `changes` (a JSON object) in the document
  /// `id` (a null member is stored as null, not removed). A missing document stays missing.
  /// Throws and costs as upsert_json().
  virtual void patch_json(std::string_view collection, std::string_view id,
                          const nlohmann::json& changes) = 0;
  /// Adds `by` to the integer at `field` (a field path, validate_field_path) of the document
  /// `id`; a missing field counts as 0 and is created when its parent object exists. A missing
  /// document stays missing. A field holding something else than an integer fails the write
  /// (InvalidArgumentError in memory; on PostgreSQL the database refuses it, as a
  /// DeferredWriteError in a pipelined batch). Throws and costs as upsert_json().
  virtual void increment(std::string_view collection, std::string_view id, std::string_view field,
                         std::int64_t by) = 0;
  /// Adds each member of `amounts` (a JSON object whose members are integers) to the same
  /// top-level field of the document `id`, a missing or null field counting as 0; a missing
  /// document is created holding `amounts` (MongoDB's $inc with upsert). For counters and
  /// totals that a handler cannot read back inside its batch: one statement per call.
  /// A sum beyond 64 bits or a field holding something else than an integer fails the write
  /// (InvalidArgumentError in memory; on PostgreSQL the database refuses it, as a
  /// DeferredWriteError in a pipelined batch), so the event fails and nothing of it is written.
  /// Throws: InvalidArgumentError also for an `amounts` that is not a non-empty object of
  /// integers within 64 bits, or whose member names are not single field names
  /// (validate_field_path without dots). Costs as upsert_json().
  virtual void add_to(std::string_view collection, std::string_view id,
                      const nlohmann::json& amounts) = 0;
  /// Deletes the document `id`, if any. Throws and costs as upsert_json().
  virtual void remove(std::string_view collection, std::string_view id) = 0;

  /// The writer of one collection, typed through nlohmann's to_json.
  [[nodiscard]] CollectionWriter collection(std::string_view name);

 protected:
  Documents() = default;
};

class CollectionWriter {
 public:
  CollectionWriter(Documents& documents, std::string_view name)
      : documents_(&documents), name_(name) {}

  /// Stores `document` (anything nlohmann's to_json turns into an object) under `id`.
  template <typename T>
  void upsert(std::string_view id, const T& document) {
    documents_->upsert_json(name_, id, nlohmann::json(document));
  }
  /// Shallow merge of `changes` into the document `id` (see Documents::patch_json()).
  void patch(std::string_view id, const nlohmann::json& changes) {
    documents_->patch_json(name_, id, changes);
  }
  /// Adds `by` to the integer at `field` of the document `id` (see Documents::increment()).
  void increment(std::string_view id, std::string_view field, std::int64_t by) {
    documents_->increment(name_, id, field, by);
  }
  /// Adds `amounts` to the document `id`, creating it when missing (Documents::add_to()).
  void add_to(std::string_view id, const nlohmann::json& amounts) {
    documents_->add_to(name_, id, amounts);
  }
  /// Deletes the document `id`, if any.
  void remove(std::string_view id) { documents_->remove(name_, id); }

 private:
  Documents* documents_;
  std::string name_;
};

inline CollectionWriter Documents::collection(std::string_view name) {
  return CollectionWriter(*this, name);
}

/// What a projection store's unit of work offers a DocumentProjection. Implemented by the units
/// of work of the in-memory and PostgreSQL projection stores; a DocumentProjection finds it
/// with a cross-cast.
class DocumentWork {
 public:
  DocumentWork(const DocumentWork&) = delete;
  DocumentWork& operator=(const DocumentWork&) = delete;
  virtual ~DocumentWork() = default;

  /// Creates or migrates `collections` for the unit of work's projection.
  /// Throws: InvalidArgumentError (bad names, a collection of another projection).
  virtual void set_up_collections(const std::vector<CollectionSpec>& collections) = 0;
  /// The writer of this unit of work, limited to `collections`.
  virtual Documents& documents(const std::vector<CollectionSpec>& collections) = 0;
  /// Deletes every document of `collections` (a rebuild).
  virtual void clear_collections(const std::vector<CollectionSpec>& collections) = 0;
  /// Whether the event at `position` was applied inline already (skip it). Default: never.
  [[nodiscard]] virtual bool skip_applied(const Position& position) {
    static_cast<void>(position);
    return false;
  }

 protected:
  DocumentWork() = default;
};

/// Base of projections that maintain document collections, exactly once, on the in-memory and
/// the PostgreSQL projection store alike. See the header comment.
///
/// Typed (constructed with an EventRegistry, handlers declared with on<E>()): as
/// InProcessProjection and ReadModelProjection (undecodable events fail like a throwing
/// handler; events of other types are skipped).
class DocumentProjection : public Projection {
 public:
  /// A projection that overrides handle().
  DocumentProjection() = default;
  /// A typed projection whose handlers (on<E>()) are dispatched through `registry`, which must
  /// outlive it.
  explicit DocumentProjection(const EventRegistry& registry) : handlers_(registry) {}

  /// The collections it maintains (each owned by this projection alone). Required.
  [[nodiscard]] virtual std::vector<CollectionSpec> collections() const = 0;
  /// Applies one event. Throwing fails it; its writes are rolled back. Default: dispatches to
  /// the typed handlers; throws InvalidArgumentError when none is declared.
  virtual void handle(const RecordedEvent& event, Documents& documents);

  /// With typed handlers: the stored type names that reach them. Otherwise every event.
  [[nodiscard]] EventFilter filter() const override;

  /// Validates collections() and creates or migrates them. Throws InvalidArgumentError on a
  /// store whose units of work hold no documents.
  void setup(UnitOfWork& work) final;
  void apply(const RecordedEvent& event, UnitOfWork& work) final;
  /// Deletes every document of collections().
  void reset(UnitOfWork& work) final;

 protected:
  /// Declares the handler of E: `(const E&, const EventContext&, Documents&)` or
  /// `(const E&, Documents&)`. Throws: InvalidArgumentError (no registry, E not registered,
  /// declared twice).
  template <EventType E, typename F>
  void on(F handler) {
    handlers_.on<E>(std::move(handler));
  }

 private:
  // collections(), validated once per setup and cached for apply().
  const std::vector<CollectionSpec>& specs();

  EventHandlers<Documents&> handlers_;
  std::vector<CollectionSpec> specs_;
  bool specs_known_ = false;
};

}  // namespace annals::projections
