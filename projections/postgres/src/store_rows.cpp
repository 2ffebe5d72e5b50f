// Parameters and rows of the projection store's statements (store_rows.hpp).
#include "store_rows.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/detail/stored_event.hpp"
#include "annals/eventstore/error.hpp"
#include "annals/projections/postgres/postgres_projection_store.hpp"
#include "error_translation.hpp"
#include "parse_int.hpp"
#include "pooled_call.hpp"
#include "postgres_batch.hpp"
#include "presence.hpp"
#include "sql.hpp"
#include "statement_connection.hpp"

namespace annals::projections::detail {

Param value(std::string text) { return Param{std::move(text), false}; }
Param value(std::int64_t number) { return Param{std::to_string(number), false}; }
Param optional_value(const std::optional<std::string>& text) {
  return text ? Param{*text, false} : Param{{}, true};
}
Param null_param() { return Param{{}, true}; }

Position position_of(const pqxx::field& commit, const pqxx::field& sequence, const char* what) {
  return Position(postgres::detail::parse_int<std::uint64_t>(commit, what),
                  sequence.as<std::int64_t>());
}

std::optional<Position> optional_position(const pqxx::field& commit, const pqxx::field& sequence,
                                          const char* what) {
  if (commit.is_null()) return std::nullopt;
  return position_of(commit, sequence, what);
}

std::chrono::system_clock::time_point time_of(const pqxx::field& micros) {
  return std::chrono::system_clock::time_point(
      std::chrono::microseconds(micros.as<std::int64_t>()));
}

std::optional<std::string> optional_text(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return std::string(field.c_str(), field.size());
}

std::int64_t micros_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

// An event's JSON for a jsonb parameter: the text it was read as, when it holds one, which
// saves parsing it only to dump it again (issue 14).
std::string json_text(const LazyJson& value) {
  if (const auto text = value.text()) return std::string(*text);
  return value.dump();
}

std::string describe(const std::string& projection) { return "projection \"" + projection + "\""; }

// TTLs travel in milliseconds; a non-positive one would create a lease that is already over.
std::int64_t ttl_millis(std::chrono::milliseconds ttl, const std::string& projection) {
  if (ttl.count() <= 0) {
    throw InvalidArgumentError(describe(projection) + ": lease ttl must be positive, got " +
                               std::to_string(ttl.count()) + " ms");
  }
  return static_cast<std::int64_t>(ttl.count());
}

std::optional<Lease> lease_of(const pqxx::result& rows, const std::string& projection) {
  if (rows.empty()) return std::nullopt;
  const auto& row = rows[0];
  return Lease{.projection = projection,
               .owner = std::string(row[0].c_str(), row[0].size()),
               .fencing_token = row[1].as<std::int64_t>(),
               .expires_at = time_of(row[2])};
}

// The owner session a lease statement recorded (column 3 of ANNALS_LEASE_COLUMNS).
std::optional<std::int64_t> recorded_session(const pqxx::result& rows) {
  if (rows.empty() || rows[0][3].is_null()) return std::nullopt;
  return rows[0][3].as<std::int64_t>();
}

Param optional_key(std::optional<std::int64_t> key) { return key ? value(*key) : null_param(); }

DeadLetterState dead_letter_state(const pqxx::field& field) {
  return parse_dead_letter_state(std::string(field.c_str(), field.size()));
}

RebuildState rebuild_state(const pqxx::field& field) {
  const std::string_view text(field.c_str(), field.size());
  if (text == "requested") return RebuildState::kRequested;
  if (text == "running") return RebuildState::kRunning;
  if (text == "done") return RebuildState::kDone;
  if (text == "failed") return RebuildState::kFailed;
  throw CorruptionError("unknown rebuild state '" + std::string(text) + "'");
}

// Columns as in sql.hpp's ANNALS_REBUILD_COLUMNS.
RebuildRequest decode_rebuild(const pqxx::row& row) {
  return RebuildRequest{
      .id = row[0].as<std::int64_t>(),
      .projection = row[1].c_str(),
      .state = rebuild_state(row[2]),
      .target = optional_position(row[3], row[4], "rebuild target"),
      .progress = optional_position(row[5], row[6], "rebuild progress"),
      .message = optional_text(row[7]),
      .requested_at = time_of(row[8]),
      .updated_at = time_of(row[9]),
  };
}

std::string_view text_of(const pqxx::field& field) {
  return std::string_view(field.c_str(), field.size());
}

// Columns as in sql.hpp's ANNALS_DEAD_LETTER_COLUMNS. The event is decoded as the event store
// decodes it (annals::detail::decode_stored_event): an undecodable event, parked as such,
// comes back marked, never as an error that would hide every other dead letter.
DeadLetter decode_dead_letter(const pqxx::row& row) {
  const auto id = row[0].as<std::int64_t>();
  return DeadLetter{
      .id = id,
      .projection = row[1].c_str(),
      .event = annals::detail::decode_stored_event({
          .stream_id = text_of(row[4]),
          .version = row[5].as<std::int64_t>(),
          .position = position_of(row[2], row[3], "dead letter transaction id"),
          .id = EventId::parse(text_of(row[6])),
          .type = text_of(row[7]),
          .schema_version = row[8].as<std::int32_t>(),
          .data = text_of(row[9]),
          .metadata = text_of(row[10]),
          .recorded_at = time_of(row[11]),
      }),
      .error = row[12].c_str(),
      .attempts = row[13].as<int>(),
      .state = dead_letter_state(row[14]),
      .parked_at = time_of(row[15]),
      .updated_at = time_of(row[16]),
  };
}

// "t1,t2,..." (array_to_string of an xid8[]) as numbers; empty text: none.
std::vector<std::uint64_t> parse_transactions(std::string_view text) {
  std::vector<std::uint64_t> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    out.push_back(postgres::detail::parse_int<std::uint64_t>(text.substr(0, comma),
                                                             "inline-applied transaction id"));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

// "<what>: row '<name>' <rest>", for the refusals of a layout change.
std::string about_row(const std::string& what, const std::string& name, std::string_view rest) {
  std::string out = what;
  out += ": row '";
  out += name;
  out += "' ";
  out += rest;
  return out;
}

NotFoundError not_registered(const std::string& projection) {
  return NotFoundError(describe(projection) +
                       " is not registered (ProjectionStore::prepare() registers it)");
}

std::string state_array(std::initializer_list<DeadLetterState> states) {
  std::string text = "{";
  for (const auto state : states) {
    if (text.size() > 1) text.push_back(',');
    text += to_string(state);
  }
  return text + "}";
}

}  // namespace annals::projections::detail
