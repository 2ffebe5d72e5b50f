// Internal: every SQL text annals::projections_postgres sends, in one place (STYLE 2.8).
// Statements are prepared and take $n parameters only; no value is ever spliced into SQL. The
// read-model helpers assemble their statements from the fragments at the end of this file and
// from identifiers that were validated and quoted first (read_model.cpp).
//
// Conventions: a Position travels as two parameters, its commit as text cast to xid8 and its
// sequence as bigint; timestamps are read as microseconds since the Unix epoch, so no session
// time zone or DateStyle matters.
#pragma once

namespace annals::projections::sql {

// --- Start-up ----------------------------------------------------------------------------------

inline constexpr const char* kSchemaPresent =
    "SELECT to_regclass('annals.projections') IS NOT NULL";

// --- Registration and read-model migrations ----------------------------------------------------

inline constexpr const char* kRegisterName = "annals_proj_register";
inline constexpr const char* kRegister =
    "INSERT INTO annals.projections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING";

// Serializes the read-model migrations of one projection across processes. Transaction-scoped,
// so it also works behind a transaction pooler; the first key is "annalspr" folded into an
// int4 namespace of our own (the migration runner and appends use other keys).
inline constexpr const char* kMigrationLockName = "annals_proj_migration_lock";
inline constexpr const char* kMigrationLock =
    "SELECT pg_advisory_xact_lock(1634627184, hashtext($1::text))";
inline constexpr const char* kMigrationsAppliedName = "annals_proj_migrations_applied";
inline constexpr const char* kMigrationsApplied =
    "SELECT name FROM annals.projection_migrations WHERE projection = $1";
inline constexpr const char* kMigrationRecordName = "annals_proj_migration_record";
inline constexpr const char* kMigrationRecord =
    "INSERT INTO annals.projection_migrations (projection, name) VALUES ($1, $2)";

// --- Leases ------------------------------------------------------------------------------------

#define ANNALS_LEASE_COLUMNS                                                              \
  "p.owner, p.fencing_token, (extract(epoch FROM p.lease_expires_at) * 1000000)::bigint," \
  " p.owner_session"

// Whether some session of this database holds the session-level advisory lock on the bigint
// key `key` (pg_advisory_lock(bigint) shows in pg_locks as classid = high 32 bits, objid = low
// 32 bits, objsubid = 1). pg_locks is readable by every role; it lists the locks of the whole
// cluster, hence the database condition.
#define ANNALS_SESSION_ALIVE(key)                                   \
  "EXISTS (SELECT 1 FROM pg_catalog.pg_locks l"                     \
  " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1" \
  "   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d" \
  "                      WHERE d.datname = current_database())"     \
  "   AND ((l.classid::bigint << 32) | l.objid::bigint) = " key ")"

// The presence key this store records in the lease ($n: its key, NULL without one): recorded
// only when its lock is really held at this moment, so a row never names a session that had
// already ended when it was written. NULL in RETURNING tells the store its presence is gone.
#define ANNALS_RECORDED_SESSION(param) \
  "CASE WHEN " ANNALS_SESSION_ALIVE(param "::bigint") " THEN " param "::bigint END"

// Takes the lease when nobody holds a live one, or renews it when `owner` ($2) holds it. A
// lease is not live once it expired (database clock), was released (owner NULL), or records an
// owner session ($4 is this store's) whose lock no session holds any more: its owner died or
// lost its connection, and waiting out the expiry would only delay the takeover. Every
// acquisition that is not a renewal of a live lease (never held, released, lapsed, dead
// session: even by the same owner name, whose old incarnation may still be running) increases
// the fencing token. The row lock makes concurrent acquirers queue; the second re-evaluates
// the WHERE clause on the first one's result and finds the lease taken.
inline constexpr const char* kAcquireName = "annals_proj_acquire";
inline constexpr const char* kAcquire =
    "UPDATE annals.projections p"
    "   SET fencing_token = CASE WHEN p.owner = $2 AND p.lease_expires_at > now()"
    "                             AND (p.owner_session IS NULL"
    "                                  OR " ANNALS_SESSION_ALIVE("p.owner_session") ")"
    "                            THEN p.fencing_token ELSE p.fencing_token + 1 END,"
    "       owner = $2,"
    "       lease_expires_at = now() + $3::bigint * interval '1 millisecond',"
    "       owner_session = " ANNALS_RECORDED_SESSION("$4")
    ",      updated_at = now()"
    " WHERE p.name = $1"
    "   AND (p.owner IS NULL OR p.lease_expires_at <= now() OR p.owner = $2"
    "        OR (p.owner_session IS NOT NULL"
    "            AND NOT " ANNALS_SESSION_ALIVE("p.owner_session") "))"
    " RETURNING " ANNALS_LEASE_COLUMNS;

// Extends the lease of ($2, $3) if it is still that lease: nobody took it over (a takeover
// changes the token) and it was not released (owner NULL). A lease that lapsed, or whose
// recorded session ended, but was not taken is still exclusive, so extending it is safe; the
// renewal records the store's current presence key ($5).
inline constexpr const char* kRenewName = "annals_proj_renew";
inline constexpr const char* kRenew =
    "UPDATE annals.projections p"
    "   SET lease_expires_at = now() + $4::bigint * interval '1 millisecond',"
    "       owner_session = " ANNALS_RECORDED_SESSION("$5")
    ",      updated_at = now()"
    " WHERE p.name = $1 AND p.owner = $2 AND p.fencing_token = $3"
    " RETURNING " ANNALS_LEASE_COLUMNS;

inline constexpr const char* kReleaseName = "annals_proj_release";
inline constexpr const char* kRelease =
    "UPDATE annals.projections"
    "   SET owner = NULL, lease_expires_at = NULL, owner_session = NULL, updated_at = now()"
    " WHERE name = $1 AND owner = $2 AND fencing_token = $3";

// The presence connection's lock (presence.cpp): false when another session holds the key.
inline constexpr const char* kPresenceLock = "SELECT pg_try_advisory_lock($1::bigint)";

#undef ANNALS_LEASE_COLUMNS
#undef ANNALS_RECORDED_SESSION

inline constexpr const char* kExistsName = "annals_proj_exists";
inline constexpr const char* kExists = "SELECT 1 FROM annals.projections WHERE name = $1";

// --- Checkpoints and reports -------------------------------------------------------------------

inline constexpr const char* kCheckpointName = "annals_proj_checkpoint";
inline constexpr const char* kCheckpoint =
    "SELECT checkpoint_tx::text, checkpoint_position, fencing_token, owner"
    "  FROM annals.projections WHERE name = $1";

// The guarded checkpoint write of a batch (ARCHITECTURE decision 7): it updates the row only
// when the lease ($7, $2) is still held (a release clears the owner, a takeover changes the
// token) and the stored checkpoint is still the one the batch began at ($3, $4). Sent inside the
// batch's transaction, right before COMMIT; no row updated means a stale writer, and the whole
// transaction is rolled back.
// It also drops the inline-applied transactions (sql/0016) the new checkpoint passed: a
// transaction below the checkpoint's is entirely behind it and is never read again.
inline constexpr const char* kCommitCheckpointName = "annals_proj_commit_checkpoint";
inline constexpr const char* kCommitCheckpoint =
    "UPDATE annals.projections"
    "   SET checkpoint_tx = $5::xid8, checkpoint_position = $6::bigint, updated_at = now(),"
    "       inline_applied = CASE WHEN cardinality(inline_applied) = 0 THEN inline_applied"
    "         ELSE ARRAY(SELECT t FROM unnest(inline_applied) t WHERE t >= $5::xid8) END"
    " WHERE name = $1 AND fencing_token = $2::bigint AND owner = $7"
    "   AND checkpoint_tx = $3::xid8 AND checkpoint_position = $4::bigint";

// --- Partition layout changes (Batch::commit_layout; annals/projections/partitions.hpp) -------
// Sent inside the batch's transaction, unprepared: a layout change is rare.

// A lease the layout change relies on, still current; locks the row until commit.
inline constexpr const char* kLayoutHeld =
    "SELECT 1 FROM annals.projections"
    " WHERE name = $1 AND owner = $2 AND fencing_token = $3::bigint FOR UPDATE";
// The batch's own row still at the checkpoint it began at.
inline constexpr const char* kLayoutCheckpointAt =
    "SELECT 1 FROM annals.projections"
    " WHERE name = $1 AND checkpoint_tx = $2::xid8 AND checkpoint_position = $3::bigint";
inline constexpr const char* kLayoutOpenDeadLetter =
    "SELECT id FROM annals.projection_dead_letters"
    " WHERE projection = $1 AND state IN ('parked', 'retry-requested') ORDER BY id LIMIT 1";
// Dead letters and rebuild requests go with the row (ON DELETE CASCADE).
inline constexpr const char* kLayoutRemove = "DELETE FROM annals.projections WHERE name = $1";
inline constexpr const char* kLayoutFence =
    "UPDATE annals.projections"
    "   SET owner = NULL, lease_expires_at = NULL, owner_session = NULL,"
    "       fencing_token = fencing_token + 1, updated_at = now()"
    " WHERE name = $1";
inline constexpr const char* kLayoutPlace =
    "INSERT INTO annals.projections"
    "  (name, checkpoint_tx, checkpoint_position, fencing_token, state)"
    " VALUES ($1, $2::xid8, $3::bigint, 1, 'stopped')"
    " ON CONFLICT (name) DO UPDATE"
    "   SET checkpoint_tx = EXCLUDED.checkpoint_tx,"
    "       checkpoint_position = EXCLUDED.checkpoint_position,"
    "       owner = NULL, lease_expires_at = NULL, owner_session = NULL,"
    "       fencing_token = annals.projections.fencing_token + 1, state = 'stopped',"
    "       last_error = NULL, events_applied = 0, inline_applied = '{}', updated_at = now()";

inline constexpr const char* kReportName = "annals_proj_report";
inline constexpr const char* kReport =
    "UPDATE annals.projections"
    "   SET state = $4, last_error = $5, events_applied = $6::bigint, updated_at = now()"
    " WHERE name = $1 AND owner = $2 AND fencing_token = $3::bigint";

inline constexpr const char* kListName = "annals_proj_list";
inline constexpr const char* kList =
    "SELECT name, checkpoint_tx::text, checkpoint_position, owner,"
    "       (extract(epoch FROM lease_expires_at) * 1000000)::bigint, fencing_token, state,"
    "       last_error, events_applied, (extract(epoch FROM updated_at) * 1000000)::bigint,"
    "       (owner IS NOT NULL AND lease_expires_at > now()"
    "        AND (owner_session IS NULL OR " ANNALS_SESSION_ALIVE("owner_session") ")),"
    "       read_schema"
    "  FROM annals.projections ORDER BY name COLLATE \"C\"";  // byte order, like std::string

#undef ANNALS_SESSION_ALIVE

// --- Inline projections (inline_projections.cpp, sql/0016) -------------------------------------
// An inline append is one transaction: the append, then per inline projection the shared lock,
// the caught-up check (which also enters the projection's read schema), the read-back of the
// appended events, the projection's writes and the record of its transaction, then COMMIT. See
// inline_projections.cpp for why in this order.

// The append itself: annals.append_events, as the event store calls it (its array parameters
// as text literals here), without NOTIFY inside the transaction (sent after the commit).
inline constexpr const char* kInlineAppendName = "annals_inline_append";
inline constexpr const char* kInlineAppend =
    "SELECT stream_index, outcome, first_version, last_version, transaction_id::text,"
    "       global_position, actual_version"
    "  FROM annals.append_events($1::text[], $2::bigint[], $3::integer[], $4::uuid[],"
    "                            $5::text[], $6::integer[], $7::jsonb[], $8::jsonb[], false,"
    "                            $9::boolean[])";

// Inline appends of a projection hold this lock shared (they do not wait for each other); a
// rebuild's reset holds it exclusively, so an inline append never reads the checkpoint and the
// inline-applied list of a reset that has not committed yet, nor writes into tables a reset is
// emptying. Transaction-scoped: works behind a transaction pooler. The first key, 1634627177
// ("anni"), is ours alone (the migration lock above and appends use others).
inline constexpr const char* kInlineLockSharedName = "annals_inline_lock_shared";
inline constexpr const char* kInlineLockShared =
    "SELECT pg_advisory_xact_lock_shared(1634627177, hashtext($1::text))";
inline constexpr const char* kInlineLockName = "annals_inline_lock";
inline constexpr const char* kInlineLock =
    "SELECT pg_advisory_xact_lock(1634627177, hashtext($1::text))";

// The search_path that puts projection $1's read schema (sql/0016; NULL: none) before the
// session's own, as set_config's value: unqualified table names of its handlers, migrations and
// reset then reach the tables of its current generation (blue/green rebuilds).
#define ANNALS_READ_SCHEMA_PATH                                                \
  "set_config('search_path', CASE WHEN p.read_schema IS NULL THEN s.reset_val" \
  " ELSE pg_catalog.quote_ident(p.read_schema) || ', ' || s.reset_val END, true)"
#define ANNALS_READ_SCHEMA_FROM                                                          \
  " FROM annals.projections p, pg_catalog.pg_settings s WHERE p.name = $1 AND s.name = " \
  "'search_path'"

// Whether projection $1 has applied the earlier events of the appended streams ($2) that it
// handles ($3 category, $4 types; NULL: any): for each stream, the last such event before the
// append is behind the checkpoint or in a transaction applied inline. "Before the append": not
// written by this transaction, whose events are the stream's newest (the append locked the
// streams, so every earlier event of them has committed and this statement, sent after it, sees
// them). The last one suffices: what a projection applied of a stream is always a prefix of it
// (the runner applies in log order; an inline append applies only after such a prefix), so the
// one before it is applied too. One backward probe of events_stream_version_pkey per stream
// (skipping this transaction's own events). No row: the projection is not registered.
inline constexpr const char* kInlineCaughtUpName = "annals_inline_caught_up";
inline constexpr const char* kInlineCaughtUp =
    "SELECT NOT EXISTS (SELECT 1"
    "  FROM unnest($2::text[]) AS a(stream_id)"
    "  CROSS JOIN LATERAL (SELECT e.transaction_id, e.global_position FROM annals.events e"
    "     WHERE e.stream_id = a.stream_id AND e.transaction_id <> (SELECT annals.current_xid())"
    "       AND ($4::text[] IS NULL OR e.event_type = ANY ($4::text[]))"
    "     ORDER BY e.stream_version DESC LIMIT 1) last"
    "  WHERE ($3::text IS NULL OR split_part(a.stream_id, '-', 1) = $3::text)"
    "    AND (last.transaction_id, last.global_position)"
    "        > (p.checkpoint_tx, p.checkpoint_position)"
    "    AND last.transaction_id <> ALL (p.inline_applied))"
    "  FROM annals.projections p WHERE p.name = $1";

// Enters projection $1's read schema for the inline writes that follow (queued first in their
// pipeline): the search_path of kEnterReadModel, without the list.
inline constexpr const char* kInlineEnterName = "annals_inline_enter";
inline constexpr const char* kInlineEnter =
    "SELECT " ANNALS_READ_SCHEMA_PATH ANNALS_READ_SCHEMA_FROM;

// The events this transaction appended, as a reader of the log gets them (stored JSON, recorded
// time), so that inline handlers see exactly what the runner's would. Served by
// events_log_order_idx (the transaction id is computed once, as an InitPlan).
inline constexpr const char* kInlineReadBackName = "annals_inline_read_back";
inline constexpr const char* kInlineReadBack =
    "SELECT e.transaction_id::text, e.global_position, e.stream_id, e.stream_version,"
    "       e.event_id::text, e.event_type, e.schema_version, e.data::text, e.metadata::text,"
    "       (extract(epoch FROM e.recorded_at) * 1000000)::bigint"
    "  FROM annals.events e WHERE e.transaction_id = (SELECT annals.current_xid())"
    " ORDER BY e.global_position";

// Records that the projection applied transaction $2 inline (the runner then skips its events).
inline constexpr const char* kInlineRecordName = "annals_inline_record";
inline constexpr const char* kInlineRecord =
    "UPDATE annals.projections SET inline_applied = array_append(inline_applied, $2::xid8)"
    " WHERE name = $1";

// A unit of work's first statement on the projection's tables (a batch: at its first event):
// enters the projection's read schema, and returns the transactions applied inline after the
// checkpoint, which the batch skips ("t1,t2,..."; empty: none).
inline constexpr const char* kEnterReadModelName = "annals_enter_read_model";
inline constexpr const char* kEnterReadModel =
    "SELECT " ANNALS_READ_SCHEMA_PATH
    ", pg_catalog.array_to_string(p.inline_applied, ',')" ANNALS_READ_SCHEMA_FROM;

// A reset forgets the transactions applied inline: the replay applies every event again.
inline constexpr const char* kInlineForgetName = "annals_inline_forget";
inline constexpr const char* kInlineForget =
    "UPDATE annals.projections SET inline_applied = '{}' WHERE name = $1"
    "   AND cardinality(inline_applied) > 0";

// Wakes runners and subscribers after an inline append committed.
inline constexpr const char* kInlineNotifyName = "annals_inline_notify";
inline constexpr const char* kInlineNotify = "SELECT pg_notify('annals_events', '')";

#undef ANNALS_READ_SCHEMA_PATH
#undef ANNALS_READ_SCHEMA_FROM

// --- Blue/green rebuilds (blue_green.cpp, sql/0016) --------------------------------------------
// The DDL of a switch (CREATE SCHEMA, DROP TABLE / DROP VIEW, CREATE VIEW, DROP SCHEMA) is
// assembled in blue_green.cpp from identifiers that were validated and quoted first, like the
// read-model helpers' statements; it takes no values.

inline constexpr const char* kReadSchemaName = "annals_bg_read_schema";
inline constexpr const char* kReadSchema =
    "SELECT read_schema FROM annals.projections WHERE name = $1";

// Registers a generation under its own name ($1) with its schema ($2); an existing row (a
// rebuild resumed) keeps its checkpoint.
inline constexpr const char* kRegisterGenerationName = "annals_bg_register";
inline constexpr const char* kRegisterGeneration =
    "INSERT INTO annals.projections (name, read_schema) VALUES ($1, $2)"
    " ON CONFLICT (name) DO UPDATE SET read_schema = EXCLUDED.read_schema, updated_at = now()";

// What readers reach under a table name ($1, resolved with the session's search_path): its
// schema and kind ('r' table, 'v' view, ...); no row when there is nothing of that name.
inline constexpr const char* kLiveRelationName = "annals_bg_live_relation";
inline constexpr const char* kLiveRelation =
    "SELECT n.nspname, c.relkind::text FROM pg_catalog.pg_class c"
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.oid = pg_catalog.to_regclass($1)";
inline constexpr const char* kCurrentSchemaName = "annals_bg_current_schema";
inline constexpr const char* kCurrentSchema = "SELECT pg_catalog.current_schema()";

// Hands generation $2's checkpoint and schema ($3) to projection $1. Its inline-applied list is
// emptied: the new generation's runner applied every event up to its checkpoint, and the
// projection's runner applies those after it to the new tables. The fencing token goes up, as on
// a takeover: a batch of the owner that began before the switch read the old inline list (and
// may skip events applied inline only to the dropped tables) even when the two checkpoints are
// equal, so its checkpoint write must fail and roll it back; the owner then takes its lease
// back (same owner: the new token) and continues from the new checkpoint and list.
inline constexpr const char* kHandOverName = "annals_bg_hand_over";
inline constexpr const char* kHandOver =
    "UPDATE annals.projections p"
    "   SET checkpoint_tx = g.checkpoint_tx, checkpoint_position = g.checkpoint_position,"
    "       read_schema = $3, inline_applied = '{}', fencing_token = p.fencing_token + 1,"
    "       updated_at = now()"
    "  FROM annals.projections g WHERE p.name = $1 AND g.name = $2"
    " RETURNING p.checkpoint_tx::text, p.checkpoint_position";
inline constexpr const char* kDropMigrationsName = "annals_bg_drop_migrations";
inline constexpr const char* kDropMigrations =
    "DELETE FROM annals.projection_migrations WHERE projection = $1";
inline constexpr const char* kMoveMigrationsName = "annals_bg_move_migrations";
inline constexpr const char* kMoveMigrations =
    "UPDATE annals.projection_migrations SET projection = $1 WHERE projection = $2";
// The generation's dead letters become the projection's (replacing its own of the same events).
inline constexpr const char* kDropDeadLettersName = "annals_bg_drop_dead_letters";
inline constexpr const char* kDropDeadLetters =
    "DELETE FROM annals.projection_dead_letters d WHERE d.projection = $1 AND d.event_id IN"
    " (SELECT g.event_id FROM annals.projection_dead_letters g WHERE g.projection = $2)";
inline constexpr const char* kMoveDeadLettersName = "annals_bg_move_dead_letters";
inline constexpr const char* kMoveDeadLetters =
    "UPDATE annals.projection_dead_letters SET projection = $1 WHERE projection = $2";
inline constexpr const char* kDropGenerationName = "annals_bg_drop_generation";
inline constexpr const char* kDropGeneration = "DELETE FROM annals.projections WHERE name = $1";

// --- Dead letters ------------------------------------------------------------------------------

// Parks an event; parking the same event again (a retry failed for good) refreshes the row.
inline constexpr const char* kParkName = "annals_proj_park";
inline constexpr const char* kPark =
    "INSERT INTO annals.projection_dead_letters AS d (projection, event_id, stream_id,"
    "   stream_version, transaction_id, global_position, event_type, schema_version, data,"
    "   metadata, recorded_at, error, attempts)"
    " VALUES ($1, $2::uuid, $3, $4::bigint, $5::xid8, $6::bigint, $7, $8::integer, $9::jsonb,"
    "   $10::jsonb, timestamptz 'epoch' + $11::bigint * interval '1 microsecond', $12,"
    "   $13::integer)"
    " ON CONFLICT (projection, event_id) DO UPDATE"
    "   SET error = EXCLUDED.error, attempts = EXCLUDED.attempts, state = 'parked',"
    "       updated_at = now()";

inline constexpr const char* kResolveName = "annals_proj_resolve";
inline constexpr const char* kResolve =
    "UPDATE annals.projection_dead_letters SET state = 'resolved', updated_at = now()"
    " WHERE id = $1::bigint AND projection = $2";

#define ANNALS_DEAD_LETTER_COLUMNS                                                     \
  "d.id, d.projection, d.transaction_id::text, d.global_position, d.stream_id,"        \
  " d.stream_version, d.event_id::text, d.event_type, d.schema_version, d.data::text," \
  " d.metadata::text, (extract(epoch FROM d.recorded_at) * 1000000)::bigint, d.error," \
  " d.attempts, d.state, (extract(epoch FROM d.parked_at) * 1000000)::bigint,"         \
  " (extract(epoch FROM d.updated_at) * 1000000)::bigint"

inline constexpr const char* kListDeadLettersName = "annals_proj_list_dead_letters";
inline constexpr const char* kListDeadLetters =
    "SELECT " ANNALS_DEAD_LETTER_COLUMNS
    "  FROM annals.projection_dead_letters d"
    " WHERE ($1::text IS NULL OR d.projection = $1::text)"
    "   AND ($2::text IS NULL OR d.state = $2::text)"
    " ORDER BY d.id LIMIT $3::bigint";

#undef ANNALS_DEAD_LETTER_COLUMNS

// Moves a dead letter to $2 when its state is one of $3 (a text[]), in one round trip. Returns
// the state it had (no row: no such dead letter), whether it moved.
inline constexpr const char* kTransitionDeadLetterName = "annals_proj_transition_dead_letter";
inline constexpr const char* kTransitionDeadLetter =
    "WITH cur AS (SELECT id, state FROM annals.projection_dead_letters"
    "              WHERE id = $1::bigint FOR UPDATE),"
    " upd AS (UPDATE annals.projection_dead_letters d SET state = $2, updated_at = now()"
    "           FROM cur WHERE d.id = cur.id AND cur.state = ANY ($3::text[])"
    "         RETURNING d.id)"
    " SELECT cur.state, EXISTS (SELECT 1 FROM upd) FROM cur";

inline constexpr const char* kRetryFailedName = "annals_proj_retry_failed";
inline constexpr const char* kRetryFailed =
    "UPDATE annals.projection_dead_letters"
    "   SET state = 'parked', error = $2, attempts = attempts + 1, updated_at = now()"
    " WHERE id = $1::bigint";

// --- Rebuild requests --------------------------------------------------------------------------

#define ANNALS_REBUILD_COLUMNS                                                               \
  "r.id, r.projection, r.state, r.target_tx::text, r.target_position, r.progress_tx::text,"  \
  " r.progress_position, r.message, (extract(epoch FROM r.requested_at) * 1000000)::bigint," \
  " (extract(epoch FROM r.updated_at) * 1000000)::bigint"

// Inserts a request unless the projection already has an open one (the partial unique index
// projection_rebuilds_one_open_idx) or does not exist; returns the new request, if any.
inline constexpr const char* kRequestRebuildName = "annals_proj_request_rebuild";
inline constexpr const char* kRequestRebuild =
    "INSERT INTO annals.projection_rebuilds AS r (projection)"
    " SELECT name FROM annals.projections WHERE name = $1"
    " ON CONFLICT (projection) WHERE state IN ('requested', 'running') DO NOTHING"
    " RETURNING " ANNALS_REBUILD_COLUMNS;

inline constexpr const char* kOpenRebuildName = "annals_proj_open_rebuild";
inline constexpr const char* kOpenRebuild =
    "SELECT " ANNALS_REBUILD_COLUMNS
    "  FROM annals.projection_rebuilds r"
    " WHERE r.projection = $1 AND r.state IN ('requested', 'running')"
    " ORDER BY r.id LIMIT 1";

inline constexpr const char* kRebuildRequestName = "annals_proj_rebuild_request";
inline constexpr const char* kRebuildRequest =
    "SELECT " ANNALS_REBUILD_COLUMNS " FROM annals.projection_rebuilds r WHERE r.id = $1::bigint";

inline constexpr const char* kUpdateRebuildName = "annals_proj_update_rebuild";
inline constexpr const char* kUpdateRebuild =
    "UPDATE annals.projection_rebuilds"
    "   SET state = $2, target_tx = $3::xid8, target_position = $4::bigint,"
    "       progress_tx = $5::xid8, progress_position = $6::bigint, message = $7,"
    "       updated_at = now()"
    " WHERE id = $1::bigint";

#undef ANNALS_REBUILD_COLUMNS

// --- Read-model helpers (read_model.cpp) -------------------------------------------------------
// Assembled as, with every identifier validated and double-quoted and $n numbered in order
// (keys first):
//   upsert:    WITH cur AS (UPDATE <t> SET <v> = $3, ... WHERE <k> = $1 AND ... RETURNING 1)
//              INSERT INTO <t> (<k...>, <v...>) SELECT $1, ... WHERE NOT EXISTS (SELECT 1 FROM cur)
//              (no value columns: the CTE is a SELECT 1 ... WHERE <k> = $1 ... instead)
//   increment: WITH cur AS (UPDATE <t> SET <c> = coalesce(<c>, 0) + $n::bigint WHERE <k> = $1
//                           AND ... RETURNING 1)
//              INSERT INTO <t> (<k...>, <c>) SELECT $1, ..., $n::bigint
//              WHERE NOT EXISTS (SELECT 1 FROM cur)
//   remove:    DELETE FROM <t> WHERE <k> = $1 AND ...
//   truncate:  TRUNCATE <t>, ... RESTART IDENTITY   (a rebuild; no parameters. Identity and
//              serial columns start again, so a rebuilt table equals a fresh computation.)
// Why not INSERT ... ON CONFLICT DO UPDATE: PostgreSQL checks NOT NULL constraints on the
// proposed row before it finds the conflict, so updating some columns of a row whose other
// NOT NULL columns are not given would fail. Update-then-insert touches only the named
// columns of an existing row. The parameters get their types from the CTE, which is analysed
// first: from the key comparisons and the SET assignments, i.e. from the columns themselves.
// A projection's tables have one writer at a time (its owner), so the two steps cannot race.

inline constexpr const char* kWithUpdate = "WITH cur AS (UPDATE ";
inline constexpr const char* kWithSelect = "WITH cur AS (SELECT 1 FROM ";
inline constexpr const char* kSet = " SET ";
inline constexpr const char* kIncrementFrom = " = coalesce(";
inline constexpr const char* kIncrementBy = ", 0) + $";
inline constexpr const char* kBigintCast = "::bigint";
inline constexpr const char* kReturningOne = " RETURNING 1";
inline constexpr const char* kInsertInto = ") INSERT INTO ";
inline constexpr const char* kSelectParams = ") SELECT ";
inline constexpr const char* kUnlessUpdated = " WHERE NOT EXISTS (SELECT 1 FROM cur)";
inline constexpr const char* kDeleteFrom = "DELETE FROM ";
inline constexpr const char* kWhere = " WHERE ";
inline constexpr const char* kEqualsParam = " = $";
inline constexpr const char* kAnd = " AND ";
inline constexpr const char* kTruncate = "TRUNCATE ";
inline constexpr const char* kRestartIdentity = " RESTART IDENTITY";

// --- Document collections (postgres_documents.cpp, postgres_document_reader.cpp) -------------
// A collection <c> is the table "doc_<c>" (id text COLLATE "C" PRIMARY KEY, data jsonb NOT NULL):
// the "C" collation makes id order bytewise, as in memory. Collection names and field paths are
// validated first (documents.cpp: [a-z0-9_] names; paths of [A-Za-z0-9_] segments), the table
// name is double-quoted, and a field path becomes the jsonb path literal '{seg,seg}' in
// (data #> '{seg,seg}'): the expression of the collection's indexes, so that queries written with
// the same expression use them. Values are always bound parameters ($n::jsonb).
//   create:   CREATE TABLE "doc_<c>" (id text COLLATE "C" PRIMARY KEY, data jsonb NOT NULL)
//   ordered:  CREATE INDEX "dx_<hash>" ON "doc_<c>" ((data #> '{f}'), id)
//   contains: CREATE INDEX "dx_<hash>" ON "doc_<c>" USING gin ((data #> '{f}') jsonb_path_ops)
//   upsert:   INSERT INTO "doc_<c>" (id, data) VALUES ($1, $2::jsonb)
//             ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data
//   patch:    UPDATE "doc_<c>" SET data = data || $2::jsonb WHERE id = $1
//   increment: UPDATE "doc_<c>" SET data = jsonb_set(data, '{f}',
//              to_jsonb(coalesce((data #>> '{f}')::bigint, 0) + $2::bigint)) WHERE id = $1
//   add_to:   INSERT INTO "doc_<c>" AS t (id, data) VALUES ($1, $2::jsonb) ON CONFLICT (id)
//             DO UPDATE SET data = t.data || (SELECT jsonb_object_agg(a.key, <the field held
//             (null or missing: 0) + the amount, in numeric; unless that is an integer within
//             bigint, the cast of the text 'cannot add <amount> to field "<f>" of document
//             "<id>" holding <value>: ...' to bigint fails the statement with that message>)
//             FROM jsonb_each(EXCLUDED.data) AS a)
//   remove:   DELETE FROM "doc_<c>" WHERE id = $1
//   get:      SELECT data::text FROM "doc_<c>" WHERE id = $1
//   find:     SELECT id, data::text FROM "doc_<c>" WHERE <conditions> [AND (f, id) > ($k, $k+1)]
//             ORDER BY (f), id LIMIT $n        (conditions: (data #> '{f}') <op> $i::jsonb,
//                                              or @> for contains; f IS NOT NULL when ordered)
//   count:    SELECT count(*) FROM "doc_<c>" WHERE <conditions>
//   raw:      SELECT id, data::text FROM "doc_<c>" <the caller's tail, with $n parameters>
inline constexpr const char* kDocumentTablePrefix = "doc_";
inline constexpr const char* kDocumentCreateHead = "CREATE TABLE ";
inline constexpr const char* kDocumentCreateBody =
    " (id text COLLATE \"C\" PRIMARY KEY, data jsonb NOT NULL)";
inline constexpr const char* kDocumentIndexHead = "CREATE INDEX ";
inline constexpr const char* kDocumentIndexOn = " ON ";
inline constexpr const char* kDocumentGin = " USING gin (";
inline constexpr const char* kDocumentGinOps = " jsonb_path_ops)";
inline constexpr const char* kDocumentFieldHead = "(data #> '{";
inline constexpr const char* kDocumentFieldTail = "}')";
inline constexpr const char* kDocumentUpsertHead = "INSERT INTO ";
inline constexpr const char* kDocumentUpsertTail =
    " (id, data) VALUES ($1, $2::jsonb) ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data";
inline constexpr const char* kDocumentPatchHead = "UPDATE ";
inline constexpr const char* kDocumentPatchTail = " SET data = data || $2::jsonb WHERE id = $1";
inline constexpr const char* kDocumentIncrementSet = " SET data = jsonb_set(data, ";
inline constexpr const char* kDocumentIncrementFrom = ", to_jsonb(coalesce((data #>> ";
inline constexpr const char* kDocumentIncrementBy = ")::bigint, 0) + $2::bigint)) WHERE id = $1";
inline constexpr const char* kDocumentAddTail =
    " AS t (id, data) VALUES ($1, $2::jsonb) ON CONFLICT (id) DO UPDATE SET data = t.data ||"
    " (SELECT jsonb_object_agg(a.key, CASE WHEN c.held IS NOT NULL AND c.held = trunc(c.held)"
    "  AND c.held + a.value::text::numeric BETWEEN -9223372036854775808 AND 9223372036854775807"
    "  THEN (c.held + a.value::text::numeric)::bigint"
    "  ELSE ('cannot add ' || a.value::text || ' to field \"' || a.key || '\" of document \"'"
    "   || t.id || '\" holding ' || coalesce(t.data -> a.key, 'null'::jsonb)::text"
    "   || ': the sum is not a 64-bit integer')::bigint END)"
    " FROM jsonb_each(EXCLUDED.data) AS a CROSS JOIN LATERAL (SELECT CASE"
    "  coalesce(jsonb_typeof(t.data -> a.key), 'null') WHEN 'null' THEN 0::numeric"
    "  WHEN 'number' THEN (t.data ->> a.key)::numeric END AS held) AS c)";
inline constexpr const char* kDocumentRemoveHead = "DELETE FROM ";
inline constexpr const char* kDocumentById = " WHERE id = $1";
inline constexpr const char* kDocumentGetHead = "SELECT data::text FROM ";
inline constexpr const char* kDocumentSelectHead = "SELECT id, data::text FROM ";
inline constexpr const char* kDocumentCountHead = "SELECT count(*) FROM ";
inline constexpr const char* kDocumentJsonbParam = "::jsonb";
inline constexpr const char* kDocumentIsNotNull = " IS NOT NULL";
inline constexpr const char* kDocumentContains = " @> $";
inline constexpr const char* kDocumentOrderBy = " ORDER BY ";
inline constexpr const char* kDocumentIdColumn = "id";
inline constexpr const char* kDocumentDesc = " DESC";
inline constexpr const char* kDocumentLimit = " LIMIT $";
inline constexpr const char* kDocumentTruncate = "TRUNCATE ";
// Which projection created a collection: its creation is recorded as that projection's
// migration "documents.<c>.create".
inline constexpr const char* kDocumentOwnerName = "annals_doc_owner";
inline constexpr const char* kDocumentOwner =
    "SELECT projection FROM annals.projection_migrations WHERE name = $1";

}  // namespace annals::projections::sql
