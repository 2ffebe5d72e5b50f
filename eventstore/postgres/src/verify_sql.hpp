// Internal: the SQL of annals::postgres::verify (kept apart from sql.hpp, which serves the
// hot paths). $1 = one stream id or NULL for all.
#pragma once

namespace annals::postgres::verify_sql {

// Each event against its predecessor in the same stream: the version must follow it and the
// stored hash must equal the chain recomputed from the stored bytes (annals.event_hash is the
// very function the append paths use). Only offending rows leave the server.
inline constexpr const char* kFindings =
    "SELECT c.stream_id, c.stream_version, c.kind, c.previous_version FROM ("
    "  SELECT e.stream_id, e.stream_version,"
    "         lag(e.stream_version) OVER w AS previous_version,"
    "         CASE WHEN e.stream_version <> coalesce(lag(e.stream_version) OVER w, 0) + 1"
    "                THEN 'version-gap'"
    "              WHEN e.hash IS DISTINCT FROM annals.event_hash("
    "                     coalesce(lag(e.hash) OVER w, '\\x'::bytea), e.event_id, e.stream_id,"
    "                     e.stream_version, e.event_type, e.schema_version, e.data,"
    "                     e.metadata, e.recorded_at)"
    "                THEN 'hash-mismatch'"
    "         END AS kind"
    "    FROM annals.events e WHERE ($1::text IS NULL OR e.stream_id = $1::text)"
    "  WINDOW w AS (PARTITION BY e.stream_id ORDER BY e.stream_version)"
    ") c WHERE c.kind IS NOT NULL ORDER BY c.stream_id, c.stream_version LIMIT $2";

// Counts and the digest over (stream id, head hash) of every examined stream.
inline constexpr const char* kSummary =
    "SELECT count(*), coalesce(sum(h.events), 0),"
    "       encode(sha256(coalesce(string_agg("
    "         convert_to(octet_length(h.stream_id)::text || ':' || h.stream_id, 'UTF8')"
    "         || h.hash, ''::bytea ORDER BY h.stream_id), ''::bytea)), 'hex')"
    "  FROM (SELECT DISTINCT ON (e.stream_id) e.stream_id, e.hash,"
    "               count(*) OVER (PARTITION BY e.stream_id) AS events"
    "          FROM annals.events e WHERE ($1::text IS NULL OR e.stream_id = $1::text)"
    "         ORDER BY e.stream_id, e.stream_version DESC) h";

// The append-only triggers of sql/0001 that are present and enabled.
inline constexpr const char* kGuards =
    "SELECT t.tgname FROM pg_trigger t"
    " WHERE t.tgrelid = 'annals.events'::regclass AND t.tgenabled <> 'D'"
    "   AND t.tgname IN ('events_refuse_update_delete', 'events_refuse_truncate')";

}  // namespace annals::postgres::verify_sql
