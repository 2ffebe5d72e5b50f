// Internal: the parameters the projection store's statements take and the rows they return,
// converted one way or the other (sql.hpp names the columns).
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/projections/projection_store.hpp"
#include "postgres_batch.hpp"

namespace annals::projections::detail {

// Statement parameters.
Param value(std::string text);
Param value(std::int64_t number);
Param optional_value(const std::optional<std::string>& text);
Param null_param();
Param optional_key(std::optional<std::int64_t> key);
std::int64_t micros_since_epoch(std::chrono::system_clock::time_point t);
/// An event's JSON for a jsonb parameter: the text it was read as, when it holds one, which
/// saves parsing it only to dump it again (issue 14).
std::string json_text(const LazyJson& value);
/// TTLs travel in milliseconds; throws InvalidArgumentError for a non-positive one (a lease that
/// would be over already).
std::int64_t ttl_millis(std::chrono::milliseconds ttl, const std::string& projection);
/// `{s1,s2,...}`: dead-letter states as a text[] literal.
std::string state_array(std::initializer_list<DeadLetterState> states);

// Result columns.
Position position_of(const pqxx::field& commit, const pqxx::field& sequence, const char* what);
std::optional<Position> optional_position(const pqxx::field& commit, const pqxx::field& sequence,
                                          const char* what);
std::chrono::system_clock::time_point time_of(const pqxx::field& micros);
std::optional<std::string> optional_text(const pqxx::field& field);
std::string_view text_of(const pqxx::field& field);
std::optional<Lease> lease_of(const pqxx::result& rows, const std::string& projection);
/// The owner session a lease statement recorded (column 3 of ANNALS_LEASE_COLUMNS).
std::optional<std::int64_t> recorded_session(const pqxx::result& rows);
DeadLetterState dead_letter_state(const pqxx::field& field);
RebuildState rebuild_state(const pqxx::field& field);
/// Columns as in sql.hpp's ANNALS_REBUILD_COLUMNS.
RebuildRequest decode_rebuild(const pqxx::row& row);
/// Columns as in sql.hpp's ANNALS_DEAD_LETTER_COLUMNS; an undecodable event comes back marked.
DeadLetter decode_dead_letter(const pqxx::row& row);
/// "t1,t2,..." (array_to_string of an xid8[]) as numbers; empty text: none.
std::vector<std::uint64_t> parse_transactions(std::string_view text);

// Messages.
std::string describe(const std::string& projection);
/// "<what>: row '<name>' <rest>", for the refusals of a layout change.
std::string about_row(const std::string& what, const std::string& name, std::string_view rest);
NotFoundError not_registered(const std::string& projection);

}  // namespace annals::projections::detail
