// Internal: the SQL of annals::postgres::verify and take_anchor (kept apart from sql.hpp,
// which serves the hot paths). Every statement is prepared; values travel as $n parameters.
//
// One function of schema annals is called: annals.visible_below() (sql/0013), the read
// horizon with the offset a restore may have set, by take_anchor as by every reader; verify
// compares its body with the shipped one (check_functions). Hashes are recomputed by the
// client, and the other built-in functions used here (extract, aclexplode) live in
// pg_catalog, which only a superuser can change.
#pragma once

namespace annals::postgres::verify_sql {

// One snapshot for every statement, so findings, counts and digest describe one instant.
inline constexpr const char* kBegin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
inline constexpr const char* kBeginWritable = "BEGIN ISOLATION LEVEL REPEATABLE READ";
inline constexpr const char* kCommit = "COMMIT";
// The hash covers UTF-8 bytes; text must reach the client unconverted.
inline constexpr const char* kClientEncoding = "SET client_encoding = 'UTF8'";

// The columns an event's hash covers, in PostgreSQL's text output (what ::text gives inside
// annals.event_hash), the time as that function turns it into microseconds.
#define ANNALS_HASHED_COLUMNS                                                          \
  "e.event_id, e.stream_id, e.stream_version, e.event_type, e.schema_version, e.data," \
  " e.metadata, ((extract(epoch FROM e.recorded_at) * 1000000)::bigint), e.hash"

// Every event (or one stream's, $1), in primary-key order: each stream's chain in order.
inline constexpr const char* kChainName = "annals_verify_chain";
inline constexpr const char* kChain = "SELECT " ANNALS_HASHED_COLUMNS
                                      " FROM annals.events e"
                                      " WHERE ($1::text IS NULL OR e.stream_id = $1::text)"
                                      " ORDER BY e.stream_id, e.stream_version";

// The events after ($1, $2) up to and including ($3, $4) in log order, each with its stream
// predecessor's stored hash (NULL when there is none), fetched by primary key because the
// predecessor can come later in log order when transactions interleave.
inline constexpr const char* kLogRangeName = "annals_verify_log_range";
inline constexpr const char* kLogRange =
    "SELECT " ANNALS_HASHED_COLUMNS
    ", e.transaction_id, e.global_position, p.hash"
    " FROM annals.events e"
    " LEFT JOIN annals.events p"
    "   ON p.stream_id = e.stream_id AND p.stream_version = e.stream_version - 1"
    " WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)"
    "   AND (e.transaction_id, e.global_position) <= ($3::xid8, $4::bigint)"
    " ORDER BY e.transaction_id, e.global_position";

// The same rows of every stream as binary COPY: no per-row result and no text escaping, so the
// client decodes fields by length (the fastest way PostgreSQL sends rows; docs/performance.md).
// jsonb's binary form is a version byte (1) followed by the same text as ::text.
inline constexpr const char* kChainCopy =
    "COPY (SELECT " ANNALS_HASHED_COLUMNS
    " FROM annals.events e"
    " ORDER BY e.stream_id, e.stream_version) TO STDOUT (FORMAT binary)";

#undef ANNALS_HASHED_COLUMNS

// take_anchor: the settled log in read order (as sql.hpp's kReadAll) and the server's time.
inline constexpr const char* kSettledLogName = "annals_anchor_settled_log";
inline constexpr const char* kSettledLog =
    "SELECT e.transaction_id, e.global_position, e.hash FROM annals.events e"
    " WHERE e.transaction_id < annals.visible_below()"
    " ORDER BY e.transaction_id, e.global_position";
inline constexpr const char* kNow =
    "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

// annals.anchors (sql/0008).
inline constexpr const char* kRecordAnchorName = "annals_anchor_record";
inline constexpr const char* kRecordAnchor =
    "INSERT INTO annals.anchors (transaction_id, global_position, events, digest, taken_at)"
    " VALUES ($1::xid8, $2::bigint, $3::bigint, decode($4::text, 'hex'), $5::timestamptz)"
    " ON CONFLICT DO NOTHING";
inline constexpr const char* kAnchorRecordedName = "annals_anchor_recorded";
inline constexpr const char* kAnchorRecorded =
    "SELECT EXISTS (SELECT 1 FROM annals.anchors a"
    "  WHERE a.transaction_id = $1::xid8 AND a.global_position = $2::bigint"
    "    AND a.events = $3::bigint AND a.digest = decode($4::text, 'hex'))";
inline constexpr const char* kAnchorsPresent = "SELECT to_regclass('annals.anchors') IS NOT NULL";

// The triggers of annals.events (ordinary ones; constraint triggers are internal) and whether
// each fires for ordinary sessions: 'O' (origin, the default) and 'A' (always) do; 'R'
// (replica only) and 'D' (disabled) do not.
// The third column names the function the trigger runs (schema.name).
#define ANNALS_TRIGGER_FUNCTION                          \
  "(SELECT n.nspname || '.' || p.proname FROM pg_proc p" \
  "   JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = t.tgfoid)"
inline constexpr const char* kTriggers =
    "SELECT t.tgname, t.tgenabled::text, " ANNALS_TRIGGER_FUNCTION
    " FROM pg_trigger t"
    " WHERE t.tgrelid = 'annals.events'::regclass AND NOT t.tgisinternal ORDER BY t.tgname";

// Whether annals.events is partitioned (sql/0017), and the ordinary triggers of each of its
// partitions with their firing mode (the row triggers are clones of the parent's; each
// partition has its own TRUNCATE guard).
inline constexpr const char* kLogPartitioned =
    "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table t"
    "                WHERE t.partrelid = 'annals.events'::regclass)";
inline constexpr const char* kPartitionTriggers =
    "SELECT format('%I.%I', n.nspname, c.relname), t.tgname, t.tgenabled::text,"
    "       " ANNALS_TRIGGER_FUNCTION
    "  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    "  JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_trigger t"
    "    ON t.tgrelid = i.inhrelid AND NOT t.tgisinternal"
    " WHERE i.inhparent = 'annals.events'::regclass ORDER BY 1, 2";

// A partitioned log's stream heads (sql/0019; whether the table exists is kSchemaPresent's
// column 4): its triggers (as kTriggers), and every head that disagrees with its stream's last
// attached event (or a stream without a head, or a head without a stream), $1 one stream or NULL
// for all: stream id, the head's version and position, the last event's version and position (NULLs
// where absent).
inline constexpr const char* kHeadTriggers =
    "SELECT t.tgname, t.tgenabled::text, " ANNALS_TRIGGER_FUNCTION
    " FROM pg_trigger t"
    " WHERE t.tgrelid = 'annals.stream_heads'::regclass AND NOT t.tgisinternal"
    " ORDER BY t.tgname";
inline constexpr const char* kHeadMismatchesName = "annals_verify_head_mismatches";
inline constexpr const char* kHeadMismatches =
    "SELECT coalesce(h.stream_id, l.stream_id), h.stream_version, h.global_position,"
    "       l.stream_version, l.global_position"
    "  FROM (SELECT x.* FROM annals.stream_heads x"
    "         WHERE $1::text IS NULL OR x.stream_id = $1::text) h"
    "  FULL JOIN (SELECT DISTINCT ON (e.stream_id) e.stream_id::text AS stream_id,"
    "                    e.stream_version, e.global_position, e.transaction_id, e.hash,"
    "                    e.event_type = '$stream-deleted' AS deleted"
    "               FROM annals.events e WHERE $1::text IS NULL OR e.stream_id = $1::text"
    "              ORDER BY e.stream_id DESC, e.stream_version DESC) l"
    "    ON l.stream_id = h.stream_id"
    " WHERE (h.stream_version, h.global_position, h.transaction_id, h.hash, h.deleted)"
    "       IS DISTINCT FROM"
    "       (l.stream_version, l.global_position, l.transaction_id, l.hash, l.deleted)"
    " ORDER BY 1";
#undef ANNALS_TRIGGER_FUNCTION

// Every function of schema annals with what verify compares against the shipped definition.
inline constexpr const char* kFunctions =
    "SELECT p.proname, pg_get_function_identity_arguments(p.oid), p.prosrc, p.prosecdef,"
    "       coalesce(array_to_string(p.proconfig, E'\\n'), '')"
    "  FROM pg_proc p WHERE p.pronamespace = 'annals'::regnamespace"
    " ORDER BY p.proname, 2";

// Table-level INSERT/UPDATE/DELETE/TRUNCATE on annals.events, on each of its partitions
// (sql/0017) and on a partitioned log's stream heads (sql/0019) held by anyone but its owner
// and superusers (grantee 0 is PUBLIC).
inline constexpr const char* kTablePrivileges =
    "SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type,"
    "       format('%I.%I', n.nspname, c.relname)"
    "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "  CROSS JOIN LATERAL aclexplode(c.relacl) a"
    "  LEFT JOIN pg_roles r ON r.oid = a.grantee"
    " WHERE (c.oid = 'annals.events'::regclass"
    "        OR c.oid = to_regclass('annals.stream_heads')"
    "        OR c.oid IN (SELECT i.inhrelid FROM pg_inherits i"
    "                      WHERE i.inhparent = 'annals.events'::regclass))"
    "   AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')"
    "   AND a.grantee <> c.relowner AND NOT coalesce(r.rolsuper, false)"
    " ORDER BY 3, 1, 2";

// Column-level INSERT/UPDATE on the columns the database must set.
inline constexpr const char* kColumnPrivileges =
    "SELECT coalesce(r.rolname, 'PUBLIC'), att.attname, a.privilege_type"
    "  FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid"
    "  CROSS JOIN LATERAL aclexplode(att.attacl) a"
    "  LEFT JOIN pg_roles r ON r.oid = a.grantee"
    " WHERE att.attrelid = 'annals.events'::regclass"
    "   AND att.attname IN ('transaction_id', 'recorded_at', 'hash', 'global_position')"
    "   AND a.privilege_type IN ('INSERT', 'UPDATE')"
    "   AND a.grantee <> c.relowner AND NOT coalesce(r.rolsuper, false)"
    " ORDER BY 1, 2, 3";

}  // namespace annals::postgres::verify_sql
