// Internal: what the in-memory and PostgreSQL document readers share, so that both validate
// queries, encode cursors and compare values the same way (one contract, two stores).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/projections/document_reader.hpp"

namespace annals::projections::detail {

/// Whether `value` is a JSON integer that std::int64_t holds (nlohmann keeps large positive
/// integers unsigned): what add_to and increment accept as amounts and as stored fields.
inline bool is_int64(const nlohmann::json& value) {
  return value.is_number_integer() &&
         (!value.is_number_unsigned() ||
          value.get<std::uint64_t>() <=
              static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
}

/// The segments of a valid field path. Throws InvalidArgumentError (validate_field_path).
[[nodiscard]] std::vector<std::string> field_segments(std::string_view path);

/// Validates the collection name, every field path, the condition values, the limit and the
/// cursor of `query`. Throws InvalidArgumentError naming what is wrong.
void validate_query(std::string_view collection, const DocumentQuery& query);
/// Validates the collection name and the filter alone (count()).
void validate_filter(std::string_view collection, const DocumentFilter& filter);

/// A decoded keyset cursor: the last document's id and, for an ordered query, its field value.
struct Cursor {
  std::optional<nlohmann::json> value;
  std::string id;
};
/// The cursor after `last` (value: the order_by field of `last`, when ordered).
[[nodiscard]] std::string encode_cursor(const Document& last, const DocumentQuery& query);
/// Throws InvalidArgumentError when `text` is not a cursor of a query of this shape.
[[nodiscard]] Cursor decode_cursor(std::string_view text, const DocumentQuery& query);

/// The value at `segments` in `document`, or nullptr when absent.
[[nodiscard]] const nlohmann::json* find_field(const nlohmann::json& document,
                                               const std::vector<std::string>& segments);
/// jsonb ordering (<0, 0, >0): type first, then value (see DocumentFilter).
[[nodiscard]] int compare_jsonb(const nlohmann::json& a, const nlohmann::json& b);
/// jsonb containment: `a @> b`.
[[nodiscard]] bool jsonb_contains(const nlohmann::json& a, const nlohmann::json& b,
                                  bool top_level = true);

}  // namespace annals::projections::detail
