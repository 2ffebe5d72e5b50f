-- 0005: least privilege: the values the store vouches for are set by the database on every
-- insert path, and an optional role layout (owner, writer, reader, auditor) that production
-- deployments run with (issue 11; ARCHITECTURE decision 8; docs/security.md).
--
-- Decisions:
-- * transaction_id, recorded_at, hash and global_position are chosen by the database, never by
--   the application role. Two insert paths exist:
--   - annals.append_events (SECURITY DEFINER, owned by the owner) computes them itself, as
--     before; only roles granted EXECUTE may call it (not PUBLIC).
--   - a plain INSERT naming only the event's own columns (the single-event statement of the
--     client, eventstore/postgres/src/sql.hpp kAppendOne). transaction_id and recorded_at take
--     their defaults, and the BEFORE INSERT trigger events_set_chain sets them again, checks
--     that the version follows the stream's last one and computes the hash from the stored
--     predecessor. The writer role holds INSERT on those columns only (column privileges), so
--     it cannot name transaction_id, recorded_at, hash or global_position at all: a forged
--     INSERT is refused with SQLSTATE 42501 before any row is built.
--   The trigger fires only for rows without a hash (WHEN clause), which is every row the writer
--   can insert; rows with a hash come from append_events or from the owner, whom verify and
--   anchors check instead.
-- * A trigger that raises 23505 when the version is already taken keeps the client's existing
--   rule for a raced single-event append (fall back to append_events, which locks the stream).
--   A version that skips ahead is refused with AN011.
-- * Functions that run with another role's rights, or that the writer's statements fire, pin
--   search_path so that objects a role creates in its own schemas cannot shadow the built-in
--   functions and operators they use.

ALTER TABLE annals.events ALTER COLUMN transaction_id SET DEFAULT pg_current_xact_id();
ALTER TABLE annals.events ALTER COLUMN recorded_at SET DEFAULT now();

-- Sets the database's values of a row inserted without a hash: the writing transaction, the
-- transaction's time, the hash chained to the stream's stored last event. Rows inserted earlier
-- by the same statement are visible here (a row-level BEFORE trigger sees them).
CREATE FUNCTION annals.set_event_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_version bigint;
  v_hash    bytea;
BEGIN
  SELECT e.stream_version, e.hash INTO v_version, v_hash
    FROM annals.events e WHERE e.stream_id = NEW.stream_id
   ORDER BY e.stream_version DESC LIMIT 1;
  IF NEW.stream_version IS DISTINCT FROM coalesce(v_version, 0) + 1 THEN
    IF NEW.stream_version <= coalesce(v_version, 0) THEN
      RAISE EXCEPTION 'stream % already has version %', NEW.stream_id, NEW.stream_version
        USING ERRCODE = '23505';
    END IF;
    RAISE EXCEPTION 'stream % is at version %: version % would leave a gap',
      NEW.stream_id, coalesce(v_version, 0), NEW.stream_version USING ERRCODE = 'AN011';
  END IF;
  NEW.transaction_id := pg_current_xact_id();
  NEW.recorded_at := now();
  NEW.hash := annals.event_hash(coalesce(v_hash, '\x'::bytea), NEW.event_id, NEW.stream_id,
                                NEW.stream_version, NEW.event_type, NEW.schema_version,
                                NEW.data, NEW.metadata, NEW.recorded_at);
  RETURN NEW;
END
$$;

CREATE TRIGGER events_set_chain BEFORE INSERT ON annals.events
  FOR EACH ROW WHEN (NEW.hash IS NULL) EXECUTE FUNCTION annals.set_event_chain();

-- append_events writes the columns the writer may not: it runs with its owner's rights, and
-- only roles granted EXECUTE may call it.
ALTER FUNCTION annals.append_events(text[], bigint[], integer[], uuid[], text[], integer[],
                                    jsonb[], jsonb[], boolean)
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION annals.append_events(text[], bigint[], integer[], uuid[], text[],
                                            integer[], jsonb[], jsonb[], boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION annals.set_event_chain() FROM PUBLIC;
ALTER FUNCTION annals.refuse_event_change() SET search_path = pg_catalog, pg_temp;

-- The role layout, when one was configured (annals migrate --roles): at most one row.
CREATE TABLE annals.role_layout (
  singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  owner_role        name NOT NULL,
  writer_role       name NOT NULL,
  reader_role       name NOT NULL,
  auditor_role      name NOT NULL,
  -- The schema where the writer creates its read-model tables (NULL: none granted).
  read_model_schema name,
  configured_at     timestamptz NOT NULL DEFAULT now()
);

-- Grants each role of the recorded layout exactly what it needs on the store's objects, and
-- revokes everything else from them and from PUBLIC. Run by configure_roles and again by every
-- `annals migrate` after new migrations (as the owner), so new objects get their grants.
CREATE FUNCTION annals.grant_role_privileges() RETURNS void LANGUAGE plpgsql
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
                 'uuid[], text[], integer[], jsonb[], jsonb[], boolean), '
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

-- Creates (when missing) and records the role layout, hands every object of the schema to the
-- owner, and grants each role its privileges. Role names are identifiers, quoted with %I; they
-- reach this function as parameters, never spliced by the client.
-- Requires: a superuser, or a role with CREATEROLE that owns the store's objects.
CREATE FUNCTION annals.configure_roles(p_owner name, p_writer name, p_reader name,
                                       p_auditor name, p_read_model_schema name)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r       record;
  v_role  name;
  v_kind  text;
BEGIN
  IF p_owner IS NULL OR p_writer IS NULL OR p_reader IS NULL OR p_auditor IS NULL
     OR cardinality(ARRAY(SELECT DISTINCT x FROM unnest(ARRAY[p_owner, p_writer, p_reader,
                                                             p_auditor]) AS x)) <> 4 THEN
    RAISE EXCEPTION 'configure_roles: owner, writer, reader and auditor must be four different roles'
      USING ERRCODE = '22023';
  END IF;
  FOR v_kind, v_role IN VALUES ('owner', p_owner), ('writer', p_writer), ('reader', p_reader),
                               ('auditor', p_auditor) LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', v_role,
                       CASE WHEN v_kind = 'owner' THEN 'NOLOGIN' ELSE 'LOGIN' END);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by a concurrent configure_roles (roles are cluster-wide)
      END;
    END IF;
  END LOOP;
  -- A role that can do more than its kind allows defeats the layout: refuse it.
  FOR v_kind, v_role IN VALUES ('writer', p_writer), ('reader', p_reader),
                               ('auditor', p_auditor) LOOP
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role AND (rolsuper OR rolbypassrls))
       OR pg_has_role(v_role, p_owner, 'MEMBER') THEN
      RAISE EXCEPTION 'configure_roles: the % role "%" is a superuser or a member of the owner "%"',
        v_kind, v_role, p_owner USING ERRCODE = '22023';
    END IF;
  END LOOP;
  IF NOT pg_has_role(current_user, p_owner, 'MEMBER') THEN
    EXECUTE format('GRANT %I TO %I', p_owner, current_user);
  END IF;

  EXECUTE format('ALTER SCHEMA annals OWNER TO %I', p_owner);
  FOR r IN SELECT format('%I.%I', n.nspname, c.relname) AS name, c.relkind
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'annals' AND c.relkind IN ('r', 'p', 'v', 'm')
              AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = p_owner) LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE WHEN r.relkind = 'v' THEN 'VIEW'
                        WHEN r.relkind = 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                   r.name, p_owner);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'annals'
              AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = p_owner) LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO %I', r.signature, p_owner);
  END LOOP;

  INSERT INTO annals.role_layout (owner_role, writer_role, reader_role, auditor_role,
                                  read_model_schema)
  VALUES (p_owner, p_writer, p_reader, p_auditor, p_read_model_schema)
  ON CONFLICT (singleton) DO UPDATE
    SET owner_role = EXCLUDED.owner_role, writer_role = EXCLUDED.writer_role,
        reader_role = EXCLUDED.reader_role, auditor_role = EXCLUDED.auditor_role,
        read_model_schema = EXCLUDED.read_model_schema, configured_at = now();
  PERFORM annals.grant_role_privileges();
END
$$;
REVOKE ALL ON FUNCTION annals.configure_roles(name, name, name, name, name) FROM PUBLIC;
REVOKE ALL ON FUNCTION annals.grant_role_privileges() FROM PUBLIC;
