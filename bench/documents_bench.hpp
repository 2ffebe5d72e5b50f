// annals-bench, document figures: the typed query API of the document read side
// (annals/projections/document_reader.hpp) against hand-written prepared queries of the same
// jsonb rows, decoded into the same C++ type, on one connection each, measured in the same
// round, interleaved (which goes first alternates).
//
// - documents_get: TypedCollection::get(id) of a random document vs a prepared primary-key
//   SELECT of the same row ("SELECT data::text FROM doc_<c> WHERE id = $1"), parsed and
//   decoded with from_json. Target ratio >= 0.8.
// - documents_find_page: TypedCollection::find() of a page of 20 documents with balance >= a
//   random value, ordered by the indexed field balance, vs the equivalent hand-written
//   prepared keyset query on the collection's expression index. Target ratio >= 0.7.
//
// The collection holds 10,000 documents, written through a DocumentProjection batch (the real
// write path). Requires: `conninfo` names a database migrated to the latest schema.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace annals::bench {

struct DocumentBenchOptions {
  /// Rounds per figure; the figure is the median over rounds. Default 3.
  int rounds = 3;
  /// Seconds each side runs per round. Default 3.
  double seconds = 3.0;
  /// Only figures whose name is in this comma-separated list (empty: all).
  std::string only;
};

/// The names of the document figures, in the order they run.
[[nodiscard]] const std::vector<std::string>& document_figure_names();

/// Runs the document figures; returns {"figures": [{"name", "unit", "value", "samples",
/// "baseline", "baseline_value", "baseline_samples", "ratio", "target_ratio", "pass", "note"}]}.
/// Progress goes to stderr.
/// Throws: annals::Error from the stores.
[[nodiscard]] nlohmann::json run_document_benchmarks(const std::string& conninfo,
                                                     const DocumentBenchOptions& options = {});

/// The figures of run_document_benchmarks as a plain-text table.
[[nodiscard]] std::string format_document_figures(const nlohmann::json& result);

}  // namespace annals::bench
