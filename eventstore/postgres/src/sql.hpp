// Internal: every SQL statement annals::postgres sends, in one place (STYLE 2.8).
// Statements are prepared and take $n parameters only: no value is ever spliced into SQL.
#pragma once

namespace annals::postgres::sql {

// Appends to one or more streams: one round trip (ARCHITECTURE decision 2). See
// sql/0009_refuse_changed_resend.sql and sql/0014_stream_lifecycle.sql for the function's
// contract; $2 holds ExpectedCode values, $10 which streams may be reopened (NULL: none), and
// the outcome column AppendOutcome values (append_codes.hpp).
inline constexpr const char* kAppendName = "annals_append";
inline constexpr const char* kAppend =
    "SELECT stream_index, outcome, first_version, last_version, transaction_id::text, "
    "global_position, actual_version "
    "FROM annals.append_events($1::text[], $2::bigint[], $3::integer[], $4::uuid[], "
    "$5::text[], $6::integer[], $7::jsonb[], $8::jsonb[], $9::boolean, $10::boolean[])";

// The common case, one event to one stream, as one prepared statement (no PL/pgSQL function of
// its own: its expressions would be prepared again in every transaction, and an autocommit
// append is a new transaction each time). The statement names only the event's own columns and
// passes the expected version ($2: an ExpectedCode of append_codes.hpp, -1 any, -2 no stream,
// -3 exists, n >= 0 exactly n) in stream_version, encoded as a negative number
// (ExpectedCode::kExactBase - n for n >= 0); the trigger
// events_set_chain (sql/0010) looks up the stream's last event once, assigns the next version
// when the stream meets the expectation and sets transaction_id, recorded_at and hash, which
// the writer role may not insert (least privilege). When the expectation is not met the
// trigger skips the row, and when the id is stored the statement inserts nothing; either way
// it returns no row, and the client calls annals.append_events, whose checks give the
// authoritative answer (exact re-send, conflict with the actual version, or overlap). A
// concurrent writer of the same stream makes the insert fail on the primary key (23505); the
// client then also falls back to annals.append_events, which locks the stream.
inline constexpr const char* kAppendOneName = "annals_append_one";
inline constexpr const char* kAppendOne =
    "INSERT INTO annals.events AS ev (stream_id, stream_version, event_id, event_type,"
    "   schema_version, data, metadata)"
    " SELECT $1::text, CASE WHEN $2::bigint >= 0 THEN -4 - $2 ELSE $2 END, $3::uuid, $4::text,"
    "        $5::integer, $6::jsonb, $7::jsonb"
    "  WHERE NOT EXISTS (SELECT 1 FROM annals.events e WHERE e.event_id = $3)"
    " RETURNING ev.transaction_id::text, ev.global_position, ev.stream_version";

// The same two statements for a partitioned log with stream heads (sql/0019_stream_heads.sql),
// prepared under the same names when the store finds annals.stream_heads at open: the look-ups
// by stream id and event id of annals.events cannot be pruned by position and would run over
// every attached partition. annals.append_events_partitioned has append_events' contract and
// reads annals.stream_heads and annals.event_ids instead. The single-event statement has no
// NOT EXISTS: the statement trigger events_move_heads claims the id in annals.event_ids after
// the row's checks (set_partitioned_chain), and a stored id fails the insert with 23505, which
// the client answers as above (in a group, the group is rolled back and each member retried
// alone).
inline constexpr const char* kAppendPartitioned =
    "SELECT stream_index, outcome, first_version, last_version, transaction_id::text, "
    "global_position, actual_version "
    "FROM annals.append_events_partitioned($1::text[], $2::bigint[], $3::integer[], $4::uuid[], "
    "$5::text[], $6::integer[], $7::jsonb[], $8::jsonb[], $9::boolean, $10::boolean[])";
inline constexpr const char* kAppendOnePartitioned =
    "INSERT INTO annals.events AS ev (stream_id, stream_version, event_id, event_type,"
    "   schema_version, data, metadata)"
    " VALUES ($1::text, CASE WHEN $2::bigint >= 0 THEN -4 - $2 ELSE $2 END, $3::uuid, $4::text,"
    "         $5::integer, $6::jsonb, $7::jsonb)"
    " RETURNING ev.transaction_id::text, ev.global_position, ev.stream_version";

// Wakes subscribers after an append committed (see AfterCommitNotifier).
inline constexpr const char* kNotifyName = "annals_notify";
inline constexpr const char* kNotify = "SELECT pg_notify('annals_events', '')";
inline constexpr const char* kNotifierSession = "SET synchronous_commit = off";

// The columns every read returns, in this order, in their stored types: the reads ask for binary
// results (decode_event reads each column's binary form), which spares the server rendering
// numbers, uuids and times as text and the client parsing them back. Reads alias the table as
// `e` and ORDER BY qualified columns (an output column named like a table column would
// otherwise win in ORDER BY).
#define ANNALS_EVENT_COLUMNS                                                                       \
  "e.transaction_id, e.global_position, e.stream_id, e.stream_version, e.event_id, e.event_type, " \
  "e.schema_version, e.data, e.metadata, e.recorded_at"

// A stream's events, within its retention rules (sql/0014_stream_lifecycle.sql). The stream's
// row of annals.stream_metadata (a primary-key probe; no row, no rules) gives the oldest version
// kept (truncate_before, or the last version - max_count + 1: one more probe of the events'
// primary key, made only when max_count is set) and the oldest recorded time kept (now() -
// max_age). Both are uncorrelated scalar subqueries, which PostgreSQL evaluates once, before
// the scan, so the version bound is a condition of the index scan. Versions are never
// renumbered.
#define ANNALS_WITHIN_RULES                                                                 \
  " AND e.stream_version >= coalesce((SELECT greatest(m.truncate_before,"                   \
  "       (SELECT x.stream_version FROM annals.events x WHERE x.stream_id = $1"             \
  "         ORDER BY x.stream_version DESC LIMIT 1) - m.max_count + 1)"                     \
  "     FROM annals.stream_metadata m WHERE m.stream_id = $1), 1)"                          \
  " AND e.recorded_at >= coalesce((SELECT now() - make_interval(secs => m.max_age_seconds)" \
  "     FROM annals.stream_metadata m WHERE m.stream_id = $1), '-infinity')"

inline constexpr const char* kReadStreamForwardName = "annals_read_stream_forward";
inline constexpr const char* kReadStreamForward =
    "SELECT " ANNALS_EVENT_COLUMNS
    " FROM annals.events e WHERE e.stream_id = $1 AND e.stream_version >= $2" ANNALS_WITHIN_RULES
    " ORDER BY e.stream_version LIMIT $3";

inline constexpr const char* kReadStreamBackwardName = "annals_read_stream_backward";
inline constexpr const char* kReadStreamBackward =
    "SELECT " ANNALS_EVENT_COLUMNS
    " FROM annals.events e WHERE e.stream_id = $1 AND e.stream_version <= $2" ANNALS_WITHIN_RULES
    " ORDER BY e.stream_version DESC LIMIT $3";

#undef ANNALS_WITHIN_RULES

// The global log, strictly after ($1, $2) in (transaction id, position) order, and only
// transactions older than the oldest still running: none of them can commit later, so a
// reader that continues after the last row it saw never skips one (decision 5). The row
// comparison is served by events_log_order_idx.
inline constexpr const char* kReadAllName = "annals_read_all";
inline constexpr const char* kReadAll =
    "SELECT " ANNALS_EVENT_COLUMNS
    " FROM annals.events e"
    " WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)"
    "   AND e.transaction_id < annals.visible_below()"
    " ORDER BY e.transaction_id, e.global_position LIMIT $3";

inline constexpr const char* kReadAllFilteredName = "annals_read_all_filtered";
inline constexpr const char* kReadAllFiltered =
    "SELECT " ANNALS_EVENT_COLUMNS
    " FROM annals.events e"
    " WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)"
    "   AND e.transaction_id < annals.visible_below()"
    "   AND ($4::text IS NULL OR split_part(e.stream_id, '-', 1) = $4::text)"
    "   AND ($5::text[] IS NULL OR e.event_type = ANY ($5::text[]))"
    " ORDER BY e.transaction_id, e.global_position LIMIT $3";

#undef ANNALS_EVENT_COLUMNS

// The last settled event: a backward scan of events_log_order_idx that skips rows of
// transactions still in progress.
inline constexpr const char* kHeadPositionName = "annals_head_position";
inline constexpr const char* kHeadPosition =
    "SELECT e.transaction_id::text, e.global_position FROM annals.events e"
    " WHERE e.transaction_id < annals.visible_below()"
    " ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1";

// Whether the read side's settled horizon is above a position's transaction id ($1): then
// read_all returns that position's event (annals::postgres::wait_for_position).
inline constexpr const char* kPositionVisibleName = "annals_position_visible";
inline constexpr const char* kPositionVisible = "SELECT $1::xid8 < annals.visible_below()";

// Whether the log holds a committed event at or after a position ($1 transaction id, $2 global
// position), settled or not: a forward probe of events_log_order_idx
// (annals::postgres::log_reaches).
inline constexpr const char* kLogReachesName = "annals_log_reaches";
inline constexpr const char* kLogReaches =
    "SELECT EXISTS (SELECT 1 FROM annals.events e"
    " WHERE (e.transaction_id, e.global_position) >= ($1::xid8, $2::bigint))";

// The primary's WAL flushed so far, asked after a notification, and whether a standby has
// replayed up to it (a standby's LISTEN receives nothing; docs/scaling.md).
inline constexpr const char* kFlushLsn = "SELECT pg_catalog.pg_current_wal_flush_lsn()::text";
inline constexpr const char* kReplayedName = "annals_replayed";
inline constexpr const char* kReplayed =
    "SELECT coalesce(pg_catalog.pg_last_wal_replay_lsn() >= $1::pg_lsn, true)";

inline constexpr const char* kStreamVersionName = "annals_stream_version";
inline constexpr const char* kStreamVersion =
    "SELECT max(stream_version) FROM annals.events WHERE stream_id = $1";

// A stream's version, whether its last event is a tombstone ($2 = kStreamDeletedType), and its
// retention rules: one row, NULLs where there is nothing (sql/0014_stream_lifecycle.sql).
inline constexpr const char* kStreamStateName = "annals_stream_state";
inline constexpr const char* kStreamState =
    "SELECT l.stream_version, coalesce(l.event_type = $2::text, false),"
    "       m.max_count, m.max_age_seconds, m.truncate_before"
    "  FROM (SELECT 1) AS one"
    "  LEFT JOIN LATERAL (SELECT e.stream_version, e.event_type FROM annals.events e"
    "                      WHERE e.stream_id = $1 ORDER BY e.stream_version DESC LIMIT 1) l"
    "    ON true"
    "  LEFT JOIN annals.stream_metadata m ON m.stream_id = $1";

// Replaces a stream's retention rules ($2-$4 NULL where a rule is not set), or removes them.
inline constexpr const char* kSetStreamMetadataName = "annals_set_stream_metadata";
inline constexpr const char* kSetStreamMetadata =
    "INSERT INTO annals.stream_metadata AS m (stream_id, max_count, max_age_seconds,"
    "   truncate_before) VALUES ($1, $2::bigint, $3::bigint, $4::bigint)"
    " ON CONFLICT (stream_id) DO UPDATE SET max_count = EXCLUDED.max_count,"
    "   max_age_seconds = EXCLUDED.max_age_seconds, truncate_before = EXCLUDED.truncate_before,"
    "   updated_at = now()";
inline constexpr const char* kClearStreamMetadataName = "annals_clear_stream_metadata";
inline constexpr const char* kClearStreamMetadata =
    "DELETE FROM annals.stream_metadata WHERE stream_id = $1";

// Start-up checks: the schema exists, and no stored transaction id is ahead of the server's
// next one, offset included (which happens when a dump is restored into a new cluster;
// readers would then hold back those events until the server's ids catch up, and order them
// wrongly; `annals restore-check --fix` sets the offset, sql/0013).
// The second column says whether the schema is recent enough for this library's append
// statement (the trigger function of sql/0005 sets what kAppendOne leaves to the database),
// the third whether it has the transaction-id functions the reads call (sql/0013: the
// server's ids plus the offset a restore into another cluster may need).
// The fourth whether it has the stream lifecycle of sql/0014 (the metadata table the stream
// reads join, and the append function's reopen parameter).
// The fifth whether the log is partitioned with stream heads (sql/0019): then the store
// prepares kAppendPartitioned and kAppendOnePartitioned.
inline constexpr const char* kSchemaPresent =
    "SELECT to_regclass('annals.events') IS NOT NULL,"
    "       to_regprocedure('annals.set_event_chain()') IS NOT NULL,"
    "       to_regprocedure('annals.visible_below()') IS NOT NULL,"
    "       to_regclass('annals.stream_metadata') IS NOT NULL,"
    "       to_regclass('annals.stream_heads') IS NOT NULL";
inline constexpr const char* kTransactionIdCheck =
    "SELECT (SELECT max(e.transaction_id) FROM annals.events e)::text,"
    "       annals.next_xid()::text";

// The oldest running transaction with a transaction id: what holds back pg_snapshot_xmin.
inline constexpr const char* kReadHorizon =
    "SELECT pid, coalesce(datname, ''), coalesce(state, ''),"
    "       (extract(epoch FROM clock_timestamp() - xact_start) * 1000)::bigint,"
    "       left(coalesce(query, ''), 200)"
    "  FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
    " ORDER BY age(backend_xid) DESC LIMIT 1";

// The NOTIFY channel "annals_events" (kNotify sends on it).
inline constexpr const char* kListenStatement = "LISTEN annals_events";

// Migrations: serialized by a transaction-scoped advisory lock, which also works behind
// transaction poolers.
inline constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7365726579)";
inline constexpr const char* kMigrationTable =
    "CREATE SCHEMA IF NOT EXISTS annals;"
    "CREATE TABLE IF NOT EXISTS annals.schema_migrations ("
    "  name text PRIMARY KEY,"
    "  applied_at timestamptz NOT NULL DEFAULT now())";
inline constexpr const char* kMigrationApplied =
    "SELECT name FROM annals.schema_migrations ORDER BY name";
inline constexpr const char* kMigrationAppliedIfExists =
    "SELECT CASE WHEN to_regclass('annals.schema_migrations') IS NULL THEN NULL"
    " ELSE 1 END";
inline constexpr const char* kMigrationRecord =
    "INSERT INTO annals.schema_migrations (name) VALUES ($1)";

// The role layout (sql/0005): whether its table exists (a statement naming a missing table
// fails when parsed), then its owner when one is recorded, the role migrations run as.
inline constexpr const char* kRoleLayoutPresent =
    "SELECT to_regclass('annals.role_layout') IS NOT NULL";
inline constexpr const char* kRoleLayoutOwner = "SELECT owner_role::text FROM annals.role_layout";
// Becomes that role until the end of the transaction (SET LOCAL ROLE with a parameter).
inline constexpr const char* kSetLocalRole = "SELECT set_config('role', $1, true)";
inline constexpr const char* kConfigureRoles =
    "SELECT annals.configure_roles($1::name, $2::name, $3::name, $4::name, $5::name)";
inline constexpr const char* kGrantRolePrivileges = "SELECT annals.grant_role_privileges()";

// The partitioned log (sql/0017; migrations.cpp).
inline constexpr const char* kPartitionLog = "SELECT annals.partition_log($1::bigint)";
inline constexpr const char* kEnsureLogPartitions = "SELECT annals.ensure_log_partitions()";
inline constexpr const char* kSetPartitionsAhead =
    "UPDATE annals.log_partitioning SET ahead = $1::integer";
inline constexpr const char* kListLogPartitions =
    "SELECT p.partition_name::text, p.from_position, p.to_position, p.archived_in::text,"
    "       (SELECT t.spcname::text FROM pg_class c"
    "          JOIN pg_namespace n ON n.oid = c.relnamespace"
    "          JOIN pg_tablespace t ON t.oid = c.reltablespace"
    "         WHERE c.relname = p.partition_name"
    "           AND n.nspname = coalesce(p.archived_in, 'annals'))"
    "  FROM annals.log_partitions p ORDER BY p.from_position";
inline constexpr const char* kArchiveLogPartition =
    "SELECT annals.archive_log_partition($1::name, $2::name)";
inline constexpr const char* kRestoreLogPartition = "SELECT annals.restore_log_partition($1::name)";

}  // namespace annals::postgres::sql
