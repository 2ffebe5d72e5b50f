// annals-bench: the workloads, each as a harness Step or read pass.
//
// Store side: appends through EventStore::append with ExpectedVersion::exact (each writer owns
// its stream and tracks the version locally, so there are no conflicts), given the JSON text
// the ceiling sends or, for the *_json figures, nlohmann::json trees; and reads of the global
// log through EventStore::read_all, decoded into RecordedEvent.
//
// Ceiling side (plain PostgreSQL, raw libpq): prepared single-row or multi-row INSERTs in
// autocommit into bench_ceiling.events, which has exactly the columns, types, constraints and
// indexes of annals.events (no streams table, no function, no checks, no NOTIFY); prepared
// SELECTs of the store's read columns (keyset pages of the log, a primary-key range of one
// stream) with every field of every row touched, in text or binary result format; and COPY of
// the store's read columns, in the store's read order, read with PQgetCopyData.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "annals/eventstore/event_store.hpp"
#include "harness.hpp"
#include "pg.hpp"

namespace annals::bench {

// --- plain PostgreSQL ---------------------------------------------------------------------

/// Creates schema bench_ceiling with table events (see above). Requires: a fresh database.
void create_ceiling_table(PgConnection& connection);

/// Writer `i` opens its own connection and appends `batch` rows per autocommit INSERT (one
/// prepared statement, one round trip, one transaction) to stream `<prefix>-<i>`. With
/// `notify`, the statement also calls pg_notify (as a data-modifying CTE: still one statement),
/// to show what NOTIFY itself costs plain PostgreSQL.
[[nodiscard]] MakeStep ceiling_insert(std::string conninfo, const Payload& payload, int batch,
                                      std::string stream_prefix, bool notify);

/// The read columns of the store, over `annals.events e` (sql.hpp's ANNALS_EVENT_COLUMNS,
/// copied: keep in step).
inline constexpr const char* kEventColumns =
    "e.transaction_id::text AS tx, e.global_position, e.stream_id, e.stream_version, "
    "e.event_id::text, e.event_type, e.schema_version, e.data::text, e.metadata::text, "
    "(extract(epoch FROM e.recorded_at) * 1000000)::bigint";

/// The same columns in their stored types, for ResultFormat::kNative.
inline constexpr const char* kNativeColumns =
    "e.transaction_id, e.global_position, e.stream_id, e.stream_version, e.event_id, "
    "e.event_type, e.schema_version, e.data, e.metadata, e.recorded_at";

/// One COPY of the first `limit` events of annals.events in log order; returns the rows.
std::uint64_t ceiling_copy_pass(PgConnection& connection, std::uint64_t limit);

/// The ceiling of the `verify` figure: one COPY of every event with the columns verify reads
/// (those an event's hash covers, in text form, and the stored hash) in the order it reads
/// them (each stream's events in version order); returns the rows.
std::uint64_t verify_copy_pass(PgConnection& connection);

/// One annals::postgres::verify of the whole store (hashes recomputed in the client); returns
/// the events verified. Throws std::runtime_error when verify finds a problem.
std::uint64_t verify_pass(const std::string& conninfo);

/// A read step: one page (or one COPY); returns the events read. Throws std::runtime_error if
/// the log ends before `limit` events.
using ReadStep = std::function<std::uint64_t()>;

/// How a raw libpq reader asks for its rows. kText and kBinary select the store's read columns
/// (kEventColumns) in text or binary result format (PQexecPrepared's resultFormat); kNative
/// selects the same columns in their stored types (kNativeColumns: xid8, uuid, jsonb and
/// timestamptz as they are, no casts) in binary format, which is how a plain PostgreSQL reader
/// that wants the fastest read would ask. Which is fastest depends on the columns, so the read
/// ceilings try all three and take the best.
enum class ResultFormat : int { kText = 0, kBinary = 1, kNative = 2 };

/// "text", "binary" or "native".
[[nodiscard]] const char* format_name(ResultFormat format) noexcept;

/// The ceiling of `read_all`: pages of 1,000 through the first `limit` events of the log, over
/// and over (back to the start after `limit` events), with the store's read_all keyset query
/// (its columns, its order) prepared and executed through raw libpq, every field of every row
/// touched (PgResult::touch_all_fields). Throws std::runtime_error if a page comes back short.
[[nodiscard]] ReadStep ceiling_keyset_reader(PgConnection& connection, std::uint64_t limit,
                                             ResultFormat format);

/// The ceiling of `read_stream_1000`: versions 1 to `events` of `stream`, by a primary-key
/// range SELECT (`stream_id = $1 AND stream_version BETWEEN $2 AND $3`, in version order) of
/// the store's read columns, prepared and executed through raw libpq, every field of every row
/// touched. Each step is one read; it returns `events`. Throws std::runtime_error unless the
/// read returns exactly `events` rows.
[[nodiscard]] ReadStep ceiling_stream_reader(PgConnection& connection, std::string stream,
                                             std::uint64_t events, ResultFormat format);

/// Pages of 1,000 through the first `limit` events of the log, over and over (the cursor goes
/// back to the start after `limit` events), with the store's read_all keyset query sent
/// through raw libpq and nothing decoded but the cursor: what paging costs without the
/// client library and the decoding.
[[nodiscard]] ReadStep raw_keyset_reader(PgConnection& connection, std::uint64_t limit);

// --- the store ----------------------------------------------------------------------------

/// A store with `pool_size` connections; `group_commit` false sets group_commit_max_appends
/// to 1 (every single-event append its own transaction).
[[nodiscard]] std::unique_ptr<EventStore> open_store(const std::string& conninfo,
                                                     std::size_t pool_size, bool notify,
                                                     bool group_commit = true);

/// What the store side of an append figure hands the store as each event's data and metadata.
enum class AppendInput {
  /// The JSON text the ceiling sends (Payload::data_text(n), Payload::metadata_text), as
  /// NewEvent::data_json and metadata_json: both sides start from the same bytes.
  kJsonText,
  /// nlohmann::json trees (a copy of Payload::data with "n" set, and Payload::metadata), which
  /// the store validates and serializes: what an application that holds trees pays.
  kTree,
};

/// "json_text" or "tree".
[[nodiscard]] const char* append_input_name(AppendInput input) noexcept;

/// Writer `i` appends `batch` events per append to stream `<prefix>-<i>`, expected version
/// exact (tracked locally), with data and metadata as `input` says. Event ids are left to the
/// store (it generates UUIDv7s, as the ceiling does for its rows).
[[nodiscard]] MakeStep store_append(EventStore& store, const Payload& payload, int batch,
                                    std::string stream_prefix, AppendInput input);

/// Pages of 1,000 through the first `limit` events of the global log with read_all, decoded
/// into RecordedEvent, over and over (back to the start after `limit` events).
[[nodiscard]] ReadStep store_reader(EventStore& store, std::uint64_t limit);

/// The store side of `read_stream_1000`: read_stream of the whole of `stream`, decoded into
/// RecordedEvent. Each step is one read; it returns `events`. Throws std::runtime_error unless
/// the read returns exactly versions 1 to `events`.
[[nodiscard]] ReadStep store_stream_reader(EventStore& store, StreamId stream,
                                           std::uint64_t events);

/// Appends `events` events in batches of 100 to fresh streams (filling the log for reads).
void fill_log(EventStore& store, const Payload& payload, std::uint64_t events);

/// Appends `events` events (the usual payload) in batches of 100 to `stream`, which must not
/// exist yet. Throws: ConcurrencyError if it does.
void fill_stream(EventStore& store, const Payload& payload, const StreamId& stream,
                 std::uint64_t events);

}  // namespace annals::bench
