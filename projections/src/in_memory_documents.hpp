// Internal: the documents of the in-memory projection store. Collections live beside the store's
// checkpoints; a batch stages its writes (StagedDocuments) and the store applies them at commit,
// under its lock, in the same step as the checkpoint, so that a reader that saw the checkpoint
// pass a position also sees every write before it (read-your-writes), and a batch that is not
// committed leaves no trace (exactly once).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/projections/document_reader.hpp"
#include "annals/projections/documents.hpp"

namespace annals::projections::detail {

/// Every collection of one in-memory store. Lock order: the store's mutex, then this one.
struct DocumentTables {
  std::mutex mutex;
  /// Collection name → the projection that declared it.
  std::map<std::string, std::string, std::less<>> owners;
  /// Collection name → id → document.
  std::map<std::string, std::map<std::string, nlohmann::json, std::less<>>, std::less<>> data;

  /// Records `collections` as `projection`'s. Throws InvalidArgumentError (bad names, a
  /// collection of another projection). Takes the mutex.
  void declare(const std::string& projection, const std::vector<CollectionSpec>& collections);
};

/// The writes of one batch, applied by apply_locked() at commit.
class StagedDocuments final : public Documents {
 public:
  StagedDocuments(std::shared_ptr<DocumentTables> tables, std::string projection)
      : tables_(std::move(tables)), projection_(std::move(projection)) {}

  /// Limits the writes to `collections` (those of the projection).
  void allow(const std::vector<CollectionSpec>& collections);
  /// Empties `collections` at commit (a rebuild); the writes staged after it still apply.
  void clear(const std::vector<CollectionSpec>& collections);

  void upsert_json(std::string_view collection, std::string_view id,
                   const nlohmann::json& document) override;
  void patch_json(std::string_view collection, std::string_view id,
                  const nlohmann::json& changes) override;
  void increment(std::string_view collection, std::string_view id, std::string_view field,
                 std::int64_t by) override;
  void add_to(std::string_view collection, std::string_view id,
              const nlohmann::json& amounts) override;
  void remove(std::string_view collection, std::string_view id) override;

  /// Applies the staged writes. Requires: tables_->mutex held.
  void apply_locked();

 private:
  void check(std::string_view collection, std::string_view id) const;
  // The document as this batch sees it: staged, else committed.
  std::optional<nlohmann::json> current(const std::string& collection, const std::string& id);

  std::shared_ptr<DocumentTables> tables_;
  std::string projection_;
  std::set<std::string, std::less<>> allowed_;
  std::set<std::string> cleared_;
  // Collection → id → the document after this batch (empty: removed).
  std::map<std::string, std::map<std::string, std::optional<nlohmann::json>>> staged_;
};

/// The in-memory reader over `tables`, waiting on `store`'s checkpoints.
[[nodiscard]] std::unique_ptr<DocumentReader> make_tables_reader(
    std::shared_ptr<DocumentTables> tables, ProjectionStore& store);

}  // namespace annals::projections::detail
