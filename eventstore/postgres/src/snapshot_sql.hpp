// Internal: every SQL statement the PostgreSQL snapshot store sends (STYLE 2.8). Prepared,
// $n parameters only. The table is created by sql/0002_create_snapshots.sql.
#pragma once

namespace annals::postgres::snapshot_sql {

inline constexpr const char* kLoadName = "annals_snapshot_load";
inline constexpr const char* kLoad =
    "SELECT stream_version, schema_version, state::text FROM annals.snapshots"
    " WHERE stream_id = $1";

// Keeps the newer of two snapshots of the same schema version; always replaces a snapshot of
// another schema version (decision 10: a mismatch is ignored by readers and replaced).
inline constexpr const char* kSaveName = "annals_snapshot_save";
inline constexpr const char* kSave =
    "INSERT INTO annals.snapshots AS s (stream_id, stream_version, schema_version, state)"
    " VALUES ($1, $2, $3, $4::jsonb)"
    " ON CONFLICT (stream_id) DO UPDATE"
    " SET stream_version = EXCLUDED.stream_version, schema_version = EXCLUDED.schema_version,"
    "     state = EXCLUDED.state, taken_at = now()"
    " WHERE s.schema_version <> EXCLUDED.schema_version"
    "    OR s.stream_version <= EXCLUDED.stream_version";

inline constexpr const char* kRemoveName = "annals_snapshot_remove";
inline constexpr const char* kRemove = "DELETE FROM annals.snapshots WHERE stream_id = $1";

// Whether migration 0002 is applied (checked once when the store opens).
inline constexpr const char* kTablePresent = "SELECT to_regclass('annals.snapshots') IS NOT NULL";

}  // namespace annals::postgres::snapshot_sql
