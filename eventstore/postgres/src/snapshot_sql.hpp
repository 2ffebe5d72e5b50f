// Internal: every SQL statement the PostgreSQL snapshot store sends (STYLE 2.8). Prepared,
// $n parameters only. The table is created by sql/0002_create_snapshots.sql; the columns that
// bind a snapshot to the event chain, event_hash and digest, by sql/0006_snapshot_integrity.sql.
//
// The digest is
//   sha256(coalesce(event_hash, '') || convert_to(stream_version::text || '|' ||
//          schema_version::text || '|' || state::text, 'UTF8'))
// over the stored jsonb's text, computed by the server at save and again at load; it is
// spelled out in each statement below and must stay the same in all of them.
#pragma once

namespace annals::postgres::snapshot_sql {

// The stored snapshot and whether it may be used, in one round trip: the event at the
// snapshot's version is joined in and its hash compared with the one recorded at save.
// verdict: 0 usable, 1 unbound (no digest: written before migration 0006), 2 history differs
// (the event is missing or has another hash), 3 state edited (the digest does not match).
inline constexpr const char* kLoadName = "annals_snapshot_load";
inline constexpr const char* kLoad =
    "SELECT s.stream_version, s.schema_version, s.state::text,"
    " CASE WHEN s.digest IS NULL THEN 1"
    "      WHEN e.hash IS NULL OR s.event_hash IS DISTINCT FROM e.hash THEN 2"
    "      WHEN s.digest <> sha256(coalesce(s.event_hash, ''::bytea) || convert_to("
    "             s.stream_version::text || '|' || s.schema_version::text || '|' ||"
    "             s.state::text, 'UTF8')) THEN 3"
    "      ELSE 0 END AS verdict"
    " FROM annals.snapshots AS s"
    " LEFT JOIN annals.events AS e"
    "   ON e.stream_id = s.stream_id AND e.stream_version = s.stream_version"
    " WHERE s.stream_id = $1::text";

// The server takes the hash of the stream's event at the snapshot's version (NULL when there
// is none: such a snapshot is stored but never used) and computes the digest; the client never
// supplies either. Keeps the newer of two snapshots of the same schema version; always replaces
// a snapshot of another schema version (decision 10: a mismatch is ignored by readers and
// replaced) and one that a load would ignore (unbound, another history, edited), so that a bad
// snapshot ahead of a restored stream cannot block new ones. The extra cost over an unbound
// save is one primary-key probe of annals.events and one SHA-256 of the state
// (docs/performance.md).
inline constexpr const char* kSaveName = "annals_snapshot_save";
inline constexpr const char* kSave =
    "INSERT INTO annals.snapshots AS s"
    "   (stream_id, stream_version, schema_version, state, event_hash, digest)"
    " SELECT $1::text, $2::bigint, $3::integer, v.state, e.hash,"
    "        sha256(coalesce(e.hash, ''::bytea) || convert_to("
    "          $2::bigint::text || '|' || $3::integer::text || '|' || v.state::text, 'UTF8'))"
    "   FROM (SELECT $4::jsonb AS state) AS v"
    "   LEFT JOIN annals.events AS e ON e.stream_id = $1::text AND e.stream_version = $2::bigint"
    " ON CONFLICT (stream_id) DO UPDATE"
    " SET stream_version = EXCLUDED.stream_version, schema_version = EXCLUDED.schema_version,"
    "     state = EXCLUDED.state, taken_at = now(), event_hash = EXCLUDED.event_hash,"
    "     digest = EXCLUDED.digest"
    " WHERE s.schema_version <> EXCLUDED.schema_version"
    "    OR s.stream_version <= EXCLUDED.stream_version"
    "    OR s.digest IS NULL"
    "    OR s.digest <> sha256(coalesce(s.event_hash, ''::bytea) || convert_to("
    "         s.stream_version::text || '|' || s.schema_version::text || '|' ||"
    "         s.state::text, 'UTF8'))"
    "    OR s.event_hash IS NULL"
    "    OR s.event_hash IS DISTINCT FROM (SELECT o.hash FROM annals.events AS o"
    "         WHERE o.stream_id = s.stream_id AND o.stream_version = s.stream_version)";

inline constexpr const char* kRemoveName = "annals_snapshot_remove";
inline constexpr const char* kRemove = "DELETE FROM annals.snapshots WHERE stream_id = $1";

// Whether migrations 0002 and 0006 are applied (checked once when the store opens).
inline constexpr const char* kTablePresent =
    "SELECT to_regclass('annals.snapshots') IS NOT NULL"
    "   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute"
    "                WHERE attrelid = to_regclass('annals.snapshots') AND attname = 'digest'"
    "                  AND NOT attisdropped)";

}  // namespace annals::postgres::snapshot_sql
