-- 0006: bind each snapshot to the event chain (ARCHITECTURE decisions 8 and 10; issue 11).
--
-- A snapshot is a cache, never a source of truth. Two columns let a load tell a snapshot that
-- still describes the stored history from one that does not:
--
-- * event_hash: annals.events.hash of the snapshot's (stream_id, stream_version), taken by the
--   server inside the save statement (the client never supplies it). NULL when the stream had
--   no such event at save time; such a snapshot is never used.
-- * digest: sha256(coalesce(event_hash, '') || convert_to(stream_version::text || '|' ||
--   schema_version::text || '|' || state::text, 'UTF8')), also computed by the server at save,
--   so that an UPDATE of state, stream_version or schema_version that does not recompute it is
--   detected. It is not a secret-keyed MAC: whoever can write the table and knows this formula
--   can forge it; the replay check (docs/framework.md) still compares snapshots with the events.
--
-- A load joins annals.events on (stream_id, stream_version) in the same statement and ignores a
-- snapshot whose event is missing or has another hash (history restored or rewritten since),
-- whose digest does not match (edited in place), or that has no digest (written before this
-- migration). Ignoring a snapshot costs replay time only; the next save replaces it.
-- See eventstore/postgres/src/snapshot_sql.hpp.

ALTER TABLE annals.snapshots
  ADD COLUMN event_hash bytea,
  ADD COLUMN digest bytea;
