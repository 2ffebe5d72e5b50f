// Internal: every SQL statement the PostgreSQL subject key store sends (STYLE 2.8). Prepared,
// $n parameters only. The table and annals.forget_subject come from sql/0015_subject_keys.sql.
// Key material travels as hex text (decode/encode), never spliced into the statement.
#pragma once

namespace annals::postgres::subject_key_sql {

// Whether migration 0015 is applied, and whether this role may read the keys.
inline constexpr const char* kTablePresent =
    "SELECT to_regclass('annals.subject_keys') IS NOT NULL"
    "   AND to_regprocedure('annals.forget_subject(text)') IS NOT NULL,"
    " to_regclass('annals.subject_keys') IS NOT NULL"
    "   AND has_table_privilege('annals.subject_keys', 'SELECT')";

// The subject's live key, inserting the candidate when it has none. Under READ COMMITTED a
// candidate that loses to a concurrent first use (committed after this statement's snapshot)
// inserts nothing and finds nothing: no row comes back, and the client runs it again (the next
// statement's snapshot sees the winner).
inline constexpr const char* kGetOrCreateName = "annals_subject_key_get_or_create";
inline constexpr const char* kGetOrCreate =
    "WITH inserted AS ("
    "  INSERT INTO annals.subject_keys (key_id, subject, key_material, wrapping)"
    "  VALUES ($1::uuid, $2::text, decode($3::text, 'hex'), $4::text)"
    "  ON CONFLICT (subject) WHERE forgotten_at IS NULL DO NOTHING"
    "  RETURNING key_id, key_material, wrapping)"
    " SELECT key_id::text, encode(key_material, 'hex'), wrapping FROM inserted"
    " UNION ALL"
    " SELECT key_id::text, encode(key_material, 'hex'), wrapping FROM annals.subject_keys"
    "  WHERE subject = $2::text AND forgotten_at IS NULL"
    "    AND NOT EXISTS (SELECT 1 FROM inserted)";

// Key $2 of subject $1: material (NULL when forgotten) and wrapping; no row when unknown.
inline constexpr const char* kFindName = "annals_subject_key_find";
inline constexpr const char* kFind =
    "SELECT encode(key_material, 'hex'), wrapping, forgotten_at IS NOT NULL"
    " FROM annals.subject_keys WHERE key_id = $2::uuid AND subject = $1::text";

inline constexpr const char* kForgetName = "annals_subject_key_forget";
inline constexpr const char* kForget =
    "SELECT key_id::text, destroyed_now FROM annals.forget_subject($1::text)";

}  // namespace annals::postgres::subject_key_sql
