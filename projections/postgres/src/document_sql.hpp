// Internal: the pieces of document-collection SQL that the writer (postgres_documents.cpp) and
// the reader (postgres_document_reader.cpp) share, built from validated names only (sql.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "annals/projections/detail/document_query.hpp"
#include "annals/projections/documents.hpp"
#include "sql.hpp"

namespace annals::projections::detail {

/// "doc_<collection>", double-quoted. Throws InvalidArgumentError for a bad name.
inline std::string document_table(std::string_view collection) {
  validate_collection_name(collection);
  std::string out = "\"";
  out += sql::kDocumentTablePrefix;
  out.append(collection);
  out += '"';
  return out;
}

/// (data #> '{a,b}') for the path "a.b". Throws InvalidArgumentError for a bad path. The
/// segments hold only [A-Za-z0-9_], so the literal needs no escaping.
inline std::string field_expression(std::string_view path) {
  std::string out = sql::kDocumentFieldHead;
  bool first = true;
  for (const auto& segment : field_segments(path)) {
    if (!first) out += ',';
    first = false;
    out += segment;
  }
  out += sql::kDocumentFieldTail;
  return out;
}

/// "dx_<16 hex digits>": a stable index name (FNV-1a of collection, kind and field), short
/// enough for PostgreSQL's 63 bytes whatever the names.
inline std::string index_name(std::string_view collection, const DocumentIndex& index) {
  std::uint64_t hash = 14695981039346656037ULL;
  const auto mix = [&](std::string_view text) {
    for (const char c : text) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ULL;
    }
    hash ^= 0xffU;
    hash *= 1099511628211ULL;
  };
  mix(collection);
  mix(index.kind == DocumentIndex::Kind::kOrdered ? "ordered" : "contains");
  mix(index.field);
  std::string out = "\"dx_";
  for (int shift = 60; shift >= 0; shift -= 4) {
    out += "0123456789abcdef"[(hash >> static_cast<unsigned>(shift)) & 0xfU];
  }
  return out + "\"";
}

}  // namespace annals::projections::detail
