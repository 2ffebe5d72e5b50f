// Decoding a stored row (see detail/stored_event.hpp): what every append enforces is checked
// again on read, and a row that breaks it is delivered marked rather than thrown.
#include "annals/eventstore/detail/stored_event.hpp"

#include <optional>
#include <string>
#include <utility>

#include "annals/eventstore/detail/lazy_json_access.hpp"
#include "annals/eventstore/detail/stored_json.hpp"
#include "annals/eventstore/error.hpp"
#include "text_validation.hpp"

namespace annals::detail {
namespace {

// Whether JSON text is an object: its first non-blank character opens one.
bool starts_object(std::string_view text) noexcept {
  const auto first = text.find_first_not_of(" \t\n\r");
  return first != std::string_view::npos && text[first] == '{';
}

// The stored JSON, or empty with the reason in `problem` (when it has none yet).
std::optional<nlohmann::json> parse_column(std::string_view text, const char* column,
                                           std::optional<std::string>& problem) {
  try {
    return parse_stored_json(text);
  } catch (const nlohmann::json::exception& e) {
    if (!problem) problem = std::string("stored ") + column + " is not JSON: " + e.what();
    return std::nullopt;
  } catch (const InvalidArgumentError& e) {  // nested deeper than kMaxJsonDepth
    if (!problem) problem = std::string("stored ") + column + " is refused: " + e.what();
    return std::nullopt;
  }
}

// The stored JSON as a LazyJson, or empty with the reason in `problem`. Text that passes the
// check is kept as text and parsed on first access (issue 14): the check accepts only text
// that parses without error, so no event that parsing would have marked goes unmarked. Any
// other text is parsed now, as it always was, and marks the event when that fails.
// `require_object`: only an object may be kept as text (metadata; the caller checks the rest).
std::optional<LazyJson> decode_column(std::string_view text, const char* column,
                                      bool require_object, std::optional<std::string>& problem) {
  if (is_lazy_stored_json(text) && (!require_object || starts_object(text))) {
    return LazyJsonAccess::from_checked_text(std::string(text));
  }
  auto parsed = parse_column(text, column, problem);
  if (!parsed) return std::nullopt;
  return LazyJson(*std::move(parsed));
}

}  // namespace

RecordedEvent decode_stored_event(const StoredEventColumns& columns,
                                  const RecordedEvent* previous) {
  std::optional<std::string> problem;

  std::optional<StreamId> stream;
  if (previous != nullptr && !previous->is_undecodable() &&
      previous->stream_id.value() == columns.stream_id) {
    stream = previous->stream_id;
  } else {
    try {
      stream.emplace(std::string(columns.stream_id));
    } catch (const InvalidArgumentError& e) {
      problem = e.what();
    }
  }
  if (!problem &&
      !(previous != nullptr && !previous->is_undecodable() && previous->type == columns.type)) {
    problem = find_type_problem(columns.type);
  }
  if (!problem && columns.schema_version < 1) {
    problem = "schema version " + std::to_string(columns.schema_version) + " is below 1";
  }
  auto data = decode_column(columns.data, "data", false, problem);
  auto metadata = decode_column(columns.metadata, "metadata", true, problem);
  // Metadata kept as text is an object (decode_column checked); asking would parse it.
  const bool metadata_is_object = metadata && (metadata->text() || metadata->is_object());
  if (!problem && !metadata_is_object) {
    problem = std::string("stored metadata is a JSON ") + metadata->type_name() + ", not an object";
  }

  RecordedEvent event{
      .stream_id = stream ? *std::move(stream)
                          : StreamId(sanitize_text(columns.stream_id, StreamId::kMaxBytes)),
      .version = columns.version,
      .position = columns.position,
      .id = columns.id,
      .type = std::string(columns.type),
      .schema_version = columns.schema_version,
      .data = data ? *std::move(data) : LazyJson(nullptr),
      .metadata = metadata_is_object ? *std::move(metadata) : LazyJson(nlohmann::json::object()),
      .recorded_at = columns.recorded_at,
  };
  if (problem) {
    event.decode_failure = DecodeFailure{.reason = *std::move(problem),
                                         .stream_id = std::string(columns.stream_id),
                                         .type = std::string(columns.type),
                                         .data = std::string(columns.data),
                                         .metadata = std::string(columns.metadata)};
  }
  return event;
}

}  // namespace annals::detail
