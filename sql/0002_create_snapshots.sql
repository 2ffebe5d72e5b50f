-- 0002: the snapshot cache of aggregate states (ARCHITECTURE decision 10).
--
-- One row per stream: the state after event `stream_version`, serialized by schema version
-- `schema_version` of the aggregate's state. Snapshots are a cache, not history: rows are
-- replaced and may be deleted (or the whole table truncated) at any time; losing them changes
-- nothing but replay time. Unlike annals.events, the table is therefore not append-only and
-- has no hash chain, and there is no foreign key to annals.events (a snapshot write must not
-- take locks on the event log).
--
-- A save keeps the newer of two snapshots of the same schema version (two writers racing),
-- and always replaces one of another schema version (an old or a new release wrote it): see
-- the ON CONFLICT clause in eventstore/postgres/src/snapshot_sql.hpp.

CREATE TABLE annals.snapshots (
  stream_id      text PRIMARY KEY,
  stream_version bigint NOT NULL CHECK (stream_version >= 1),
  schema_version integer NOT NULL CHECK (schema_version >= 1),
  state          jsonb NOT NULL,
  taken_at       timestamptz NOT NULL DEFAULT now()
);
