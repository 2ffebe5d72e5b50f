-- 0015: per-subject encryption keys for personal data (crypto-shredding; issue 16,
-- docs/personal-data.md).
--
-- Fields an event type declares as personal data are stored encrypted with their subject's key
-- (AES-256-GCM, by the framework, annals/framework/personal_data.hpp). The log keeps only
-- ciphertext, which the hash chain covers; forgetting a subject destroys its key here, and
-- every later read redacts the fields. Nothing in annals.events changes.
--
-- Decisions:
-- * One table of its own, so that dumps can leave it out (pg_dump --exclude-table-data
--   annals.subject_keys) and backups of the log hold ciphertext only. key_material is the
--   32-byte key, or that key wrapped (AES-256-GCM) by a master key kept outside the database;
--   `wrapping` says which ('none', or 'master:<fingerprint>').
-- * A subject has at most one live key (the partial unique index): concurrent first uses insert
--   with ON CONFLICT DO NOTHING and read back the one that won. Forgetting keeps the row with
--   its key_material set to NULL, so that a later read can tell "forgotten" from "unknown key"
--   and forgetting twice finds nothing left to destroy. A subject used again after it was
--   forgotten gets a new key (new key id); what was written before stays unreadable.
-- * The writer may read and insert keys, never change or delete them: forgetting goes through
--   annals.forget_subject, SECURITY DEFINER, which only ever sets keys to NULL. The reader and
--   the auditor get nothing on this table: they see ciphertext.
-- * grant_role_privileges is 0013's with the grants of this table and function added.

CREATE TABLE annals.subject_keys (
  key_id       uuid PRIMARY KEY,
  subject      text NOT NULL CHECK (octet_length(subject) BETWEEN 1 AND 480),
  key_material bytea CHECK (key_material IS NULL OR octet_length(key_material) BETWEEN 32 AND 256),
  wrapping     text NOT NULL CHECK (wrapping = 'none' OR wrapping LIKE 'master:%'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  forgotten_at timestamptz,
  CHECK ((key_material IS NULL) = (forgotten_at IS NOT NULL))
);

CREATE UNIQUE INDEX subject_keys_live ON annals.subject_keys (subject)
  WHERE forgotten_at IS NULL;
CREATE INDEX subject_keys_by_subject ON annals.subject_keys (subject);

-- Destroys every live key of p_subject (sets its material to NULL) and returns every key the
-- subject ever had with whether this call destroyed it. Idempotent: a second call destroys
-- nothing and returns the same ids.
CREATE FUNCTION annals.forget_subject(p_subject text)
RETURNS TABLE (key_id uuid, destroyed_now boolean) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY
    WITH destroyed AS (
      UPDATE annals.subject_keys AS k SET key_material = NULL, forgotten_at = now()
       WHERE k.subject = p_subject AND k.forgotten_at IS NULL
      RETURNING k.key_id)
    SELECT k.key_id, d.key_id IS NOT NULL
      FROM annals.subject_keys AS k LEFT JOIN destroyed AS d ON d.key_id = k.key_id
     WHERE k.subject = p_subject
     ORDER BY k.key_id;
END
$$;
REVOKE ALL ON FUNCTION annals.forget_subject(text) FROM PUBLIC;

-- As 0013 made it, granting the key table and forget_subject to the writer too.
CREATE OR REPLACE FUNCTION annals.grant_role_privileges() RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  l   annals.role_layout%ROWTYPE;
  obj record;
BEGIN
  SELECT * INTO l FROM annals.role_layout;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  -- Start from nothing: PUBLIC and every layout role lose what they hold on the store.
  FOR obj IN SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'annals' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') LOOP
    EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC, %I, %I, %I',
                   CASE WHEN obj.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, obj.name,
                   l.writer_role, l.reader_role, l.auditor_role);
  END LOOP;
  EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA annals FROM PUBLIC, %I, %I, %I',
                 l.writer_role, l.reader_role, l.auditor_role);
  EXECUTE format('REVOKE ALL ON SCHEMA annals FROM PUBLIC, %I, %I, %I',
                 l.writer_role, l.reader_role, l.auditor_role);
  EXECUTE format('GRANT USAGE ON SCHEMA annals TO %I, %I, %I',
                 l.writer_role, l.reader_role, l.auditor_role);

  -- Everyone reads the log, its streams and the schema's migration record.
  EXECUTE format('GRANT SELECT ON annals.events, annals.streams, annals.schema_migrations '
                 'TO %I, %I, %I', l.writer_role, l.reader_role, l.auditor_role);
  -- Projection status for the reader and the auditor; the writer runs projections.
  EXECUTE format('GRANT SELECT ON annals.projections, annals.projection_dead_letters, '
                 'annals.projection_rebuilds, annals.projection_migrations TO %I, %I',
                 l.reader_role, l.auditor_role);

  -- The writer: appends (the event's own columns only, or append_events), snapshots,
  -- projection checkpoints, leases, dead letters, rebuild requests and read-model migrations.
  EXECUTE format('GRANT INSERT (stream_id, stream_version, event_id, event_type, '
                 'schema_version, data, metadata) ON annals.events TO %I', l.writer_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION annals.append_events(text[], bigint[], integer[], '
                 'uuid[], text[], integer[], jsonb[], jsonb[], boolean, boolean[]), '
                 'annals.event_hash(bytea, uuid, text, bigint, text, integer, jsonb, jsonb, '
                 'timestamptz) TO %I', l.writer_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON annals.snapshots, annals.projections, '
                 'annals.projection_dead_letters, annals.projection_rebuilds, '
                 'annals.projection_migrations TO %I', l.writer_role);

  -- The auditor: everything the store holds, read-only (snapshots too), plus whatever later
  -- migrations give it (anchors).
  EXECUTE format('GRANT SELECT ON annals.snapshots, annals.role_layout TO %I', l.auditor_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION annals.event_hash(bytea, uuid, text, bigint, text, '
                 'integer, jsonb, jsonb, timestamptz) TO %I, %I',
                 l.reader_role, l.auditor_role);

  -- The transaction-id functions of sql/0013: every statement that appends or reads the log
  -- calls them, on behalf of each role.
  IF to_regprocedure('annals.xid_offset()') IS NOT NULL THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION annals.xid_offset(), annals.current_xid(), '
                   'annals.visible_below(), annals.next_xid(), annals.restore_check() '
                   'TO %I, %I, %I', l.writer_role, l.reader_role, l.auditor_role);
  END IF;

  -- Stream metadata (sql/0014): everyone reads it (stream reads honour it), the writer sets it.
  EXECUTE format('GRANT SELECT ON annals.stream_metadata TO %I, %I, %I',
                 l.writer_role, l.reader_role, l.auditor_role);
  EXECUTE format('GRANT INSERT, UPDATE, DELETE ON annals.stream_metadata TO %I', l.writer_role);

  -- Subject keys (sql/0015): the writer encrypts and decrypts personal data and forgets
  -- subjects through annals.forget_subject; no UPDATE or DELETE, and nothing for the reader
  -- and the auditor, who see ciphertext only.
  IF to_regclass('annals.subject_keys') IS NOT NULL THEN
    EXECUTE format('GRANT SELECT, INSERT ON annals.subject_keys TO %I', l.writer_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION annals.forget_subject(text) TO %I',
                   l.writer_role);
  END IF;

  -- Recorded anchors (sql/0008): the auditor records them (annals anchor --record).
  IF to_regclass('annals.anchors') IS NOT NULL THEN
    EXECUTE format('GRANT SELECT, INSERT ON annals.anchors TO %I', l.auditor_role);
  END IF;

  IF l.read_model_schema IS NOT NULL THEN
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', l.read_model_schema,
                   l.writer_role);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I, %I', l.read_model_schema, l.reader_role,
                   l.auditor_role);
    -- Read models the writer creates from now on are readable by the reader and the auditor
    -- (possible only for a member of the writer role, e.g. a superuser running migrate).
    IF pg_has_role(current_user, l.writer_role, 'MEMBER') THEN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I '
                     'GRANT SELECT ON TABLES TO %I, %I', l.writer_role, l.read_model_schema,
                     l.reader_role, l.auditor_role);
    END IF;
  END IF;
END
$$;
