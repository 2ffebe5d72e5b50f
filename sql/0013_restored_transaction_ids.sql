-- 0013: a store restored into another cluster works without pg_resetwal (issue 16).
--
-- Positions in the global log are (transaction id, global position), and readers read only
-- below the oldest transaction still running (ARCHITECTURE decision 5). A dump restored into a
-- new cluster carries the old cluster's transaction ids, which are usually far ahead of the new
-- server's counter: new events would sort before old ones and readers would hold them back, so
-- stores refuse to open such a database (docs/schema.md, "Restoring a dump"). Managed
-- PostgreSQL services offer no pg_resetwal to move the counter on.
--
-- Decisions:
-- * The store's transaction ids are the server's plus an offset: annals.xid_offset(), an
--   IMMUTABLE function whose body is the offset. 0 everywhere until a restore needs more;
--   annals.fix_restored_xids() (`annals restore-check --fix`) replaces its body once, after
--   checking that no other session is connected, so that every later transaction id is above
--   every stored one. Being immutable and written in SQL, it is folded into the statements
--   that use it: with offset 0 the functions below plan to the built-in calls, at no cost.
--   Replacing it invalidates the cached plans that folded the old value (PostgreSQL tracks
--   inlined functions), and pg_dump carries it to the next restore.
-- * annals.current_xid(), annals.visible_below() and annals.next_xid() are what the store
--   used directly before: pg_current_xact_id(), and the xmin and xmax of the current
--   snapshot, each with the offset added. They are inlined into their callers (no SET clause,
--   no SECURITY DEFINER), so they qualify every name with pg_catalog and run in the caller's
--   context; the store's functions that call them pin search_path.
-- * append_events and the trigger function are 0012's, with pg_current_xact_id() replaced by
--   annals.current_xid(); grant_role_privileges is 0005's, granting the new functions to the
--   layout's roles.
-- * verify (docs/auditing.md) compares the database's functions with these definitions and
--   accepts any integer offset as the body of annals.xid_offset(); it reports the offset.

CREATE FUNCTION annals.xid_offset() RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$SELECT 0::bigint$$;

CREATE FUNCTION annals.current_xid() RETURNS xid8 LANGUAGE sql VOLATILE AS $$
SELECT CASE WHEN annals.xid_offset() = 0 THEN pg_catalog.pg_current_xact_id()
            ELSE ((pg_catalog.pg_current_xact_id()::pg_catalog.text::pg_catalog.numeric
                   + annals.xid_offset())::pg_catalog.text)::pg_catalog.xid8 END
$$;

CREATE FUNCTION annals.visible_below() RETURNS xid8 LANGUAGE sql STABLE AS $$
SELECT CASE WHEN annals.xid_offset() = 0
            THEN pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
            ELSE ((pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())
                     ::pg_catalog.text::pg_catalog.numeric
                   + annals.xid_offset())::pg_catalog.text)::pg_catalog.xid8 END
$$;

CREATE FUNCTION annals.next_xid() RETURNS xid8 LANGUAGE sql STABLE AS $$
SELECT CASE WHEN annals.xid_offset() = 0
            THEN pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())
            ELSE ((pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())
                     ::pg_catalog.text::pg_catalog.numeric
                   + annals.xid_offset())::pg_catalog.text)::pg_catalog.xid8 END
$$;

-- What `annals restore-check` reports: the highest stored transaction id (NULL when the log is
-- empty), the next one this server will give (offset included), the offset, and how many other
-- sessions are connected to this database.
CREATE FUNCTION annals.restore_check(OUT stored_max xid8, OUT server_next xid8,
                                     OUT xid_offset bigint, OUT other_sessions integer)
LANGUAGE sql STABLE AS $$
SELECT (SELECT pg_catalog.max(e.transaction_id) FROM annals.events e), annals.next_xid(),
       annals.xid_offset(),
       (SELECT pg_catalog.count(*)::integer FROM pg_catalog.pg_stat_activity a
         WHERE a.datname = pg_catalog.current_database()
           AND a.pid <> pg_catalog.pg_backend_pid() AND a.backend_type = 'client backend')
$$;

-- Moves the offset so that every transaction id the store gives from now on is above every
-- stored one. Changes nothing when that already holds. Refuses (55006) while any other
-- session is connected to the database: a transaction that started before the change could
-- still append below the stored ids. Runs as the owner of annals.xid_offset() (the owner role
-- or a superuser); not granted to anyone else.
CREATE FUNCTION annals.fix_restored_xids(OUT old_offset bigint, OUT new_offset bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_stored numeric;
  v_next   numeric;
  v_others integer;
BEGIN
  -- No append can start or finish while this holds; reads go on.
  LOCK TABLE annals.events IN EXCLUSIVE MODE;
  SELECT r.other_sessions INTO v_others FROM annals.restore_check() r;
  IF v_others > 0 THEN
    RAISE EXCEPTION 'fix_restored_xids: % other session(s) connected to database %; stop every service and runner using it first',
      v_others, current_database() USING ERRCODE = '55006';
  END IF;
  old_offset := annals.xid_offset();
  new_offset := old_offset;
  SELECT max(e.transaction_id)::text::numeric INTO v_stored FROM annals.events e;
  v_next := pg_snapshot_xmax(pg_current_snapshot())::text::numeric;
  IF v_stored IS NULL OR v_stored < v_next + old_offset THEN
    RETURN;
  END IF;
  -- Every later transaction id of this server is at least v_next.
  new_offset := (v_stored - v_next + 1)::bigint;
  EXECUTE format('CREATE OR REPLACE FUNCTION annals.xid_offset() RETURNS bigint LANGUAGE sql '
                 'IMMUTABLE PARALLEL SAFE AS %L', format('SELECT %s::bigint', new_offset));
END
$$;

REVOKE ALL ON FUNCTION annals.fix_restored_xids() FROM PUBLIC;
REVOKE ALL ON FUNCTION annals.restore_check() FROM PUBLIC;

ALTER TABLE annals.events ALTER COLUMN transaction_id SET DEFAULT annals.current_xid();

-- As 0012 made it, taking its transaction id from annals.current_xid().
CREATE OR REPLACE FUNCTION annals.append_events(
  p_streams text[], p_expected bigint[], p_counts integer[],
  p_event_ids uuid[], p_event_types text[], p_schema_versions integer[],
  p_data jsonb[], p_metadata jsonb[], p_notify boolean DEFAULT true)
RETURNS TABLE (stream_index integer, outcome smallint, first_version bigint,
               last_version bigint, transaction_id xid8, global_position bigint,
               actual_version bigint)
-- As migration 0005 made it: it writes the columns the writer role may not, with its owner's
-- rights, and pins search_path (docs/security.md). CREATE OR REPLACE keeps its grants.
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  n_streams  integer := cardinality(p_streams);
  offsets    integer[];
  actuals    bigint[];
  hashes     bytea[];
  ev_hashes  bytea[];
  s          integer;
  k          integer;
  v_off      integer := 0;
  v_ids      uuid[];
  v_found    bigint;
  v_first    bigint;
  v_dups     integer := 0;
  dup_first  bigint[];
  dup_tx     xid8[];
  dup_pos    bigint[];
  v_version  bigint;
  v_hash     bytea;
  v_exp      bigint;
  v_now      timestamptz := now();
  v_tx       xid8;
  v_last_pos bigint;
  v_ord      bigint;
  v_parts    integer;
  v_stream   annals.stream_id;
  v_time     text;
  v_fixed    text;
  v_data     text;
  v_meta     text;
BEGIN
  IF n_streams IS NULL OR n_streams = 0 THEN
    RAISE EXCEPTION 'append_events: no streams' USING ERRCODE = '22023';
  END IF;
  offsets := array_fill(0, ARRAY[n_streams]);
  FOR s IN 1 .. n_streams LOOP
    offsets[s] := v_off;
    v_off := v_off + p_counts[s];
  END LOOP;
  IF v_off <> cardinality(p_event_ids) THEN
    RAISE EXCEPTION 'append_events: counts do not match the event arrays' USING ERRCODE = '22023';
  END IF;

  -- Phase 1: lock the streams, then check idempotency and versions. Nothing is written in
  -- this phase, so a refusal leaves no trace.
  IF n_streams = 1 THEN
    PERFORM pg_advisory_xact_lock(1634627169, hashtext(p_streams[1]));
  ELSE
    PERFORM pg_advisory_xact_lock(1634627169, x.key)
       FROM (SELECT DISTINCT hashtext(sid) AS key FROM unnest(p_streams) AS sid
              ORDER BY 1 OFFSET 0) AS x;
  END IF;

  IF EXISTS (SELECT 1 FROM annals.events e WHERE e.event_id = ANY (p_event_ids)) THEN
    -- A re-send is exact when, for every stream, every id is stored in that stream, in
    -- order, at consecutive versions. It returns the original result.
    dup_first := array_fill(NULL::bigint, ARRAY[n_streams]);
    dup_tx := array_fill(NULL::xid8, ARRAY[n_streams]);
    dup_pos := array_fill(NULL::bigint, ARRAY[n_streams]);
    FOR s IN 1 .. n_streams LOOP
      v_ids := p_event_ids[offsets[s] + 1 : offsets[s] + p_counts[s]];
      SELECT e.stream_version INTO v_first FROM annals.events e
       WHERE e.event_id = v_ids[1] AND e.stream_id = p_streams[s];
      v_found := 0;
      IF FOUND THEN
        SELECT count(*), max(e.transaction_id), max(e.global_position)
          INTO v_found, v_tx, v_last_pos
          FROM unnest(v_ids) WITH ORDINALITY AS u(id, ord)
          JOIN annals.events e ON e.event_id = u.id
         WHERE e.stream_id = p_streams[s] AND e.stream_version = v_first + u.ord - 1;
      END IF;
      IF v_found <> p_counts[s] THEN
        RETURN QUERY SELECT s, 3::smallint, NULL::bigint, NULL::bigint, NULL::xid8,
                            NULL::bigint, NULL::bigint;
        RETURN;
      END IF;
      -- Same ids at the same places: the re-send is exact only if every event's content is
      -- the stored one too.
      SELECT u.ord, e.stream_version,
             CASE WHEN e.event_type <> p_event_types[offsets[s] + u.ord::integer] THEN 1 ELSE 0 END
             + CASE WHEN e.schema_version <> p_schema_versions[offsets[s] + u.ord::integer] THEN 2 ELSE 0 END
             + CASE WHEN e.data <> p_data[offsets[s] + u.ord::integer] THEN 4 ELSE 0 END
             + CASE WHEN e.metadata <> p_metadata[offsets[s] + u.ord::integer] THEN 8 ELSE 0 END
        INTO v_ord, v_version, v_parts
        FROM unnest(v_ids) WITH ORDINALITY AS u(id, ord)
        JOIN annals.events e ON e.event_id = u.id
       WHERE e.stream_id = p_streams[s]
         AND (e.event_type, e.schema_version, e.data, e.metadata)
             IS DISTINCT FROM (p_event_types[offsets[s] + u.ord::integer],
                               p_schema_versions[offsets[s] + u.ord::integer],
                               p_data[offsets[s] + u.ord::integer], p_metadata[offsets[s] + u.ord::integer])
       ORDER BY u.ord LIMIT 1;
      IF FOUND THEN
        RETURN QUERY SELECT s, 4::smallint, v_version, v_ord, NULL::xid8, NULL::bigint,
                            v_parts::bigint;
        RETURN;
      END IF;
      dup_first[s] := v_first;
      dup_tx[s] := v_tx;
      dup_pos[s] := v_last_pos;
    END LOOP;
    RETURN QUERY SELECT u.s::integer, 1::smallint, dup_first[u.s],
                        dup_first[u.s] + p_counts[u.s] - 1, dup_tx[u.s], dup_pos[u.s],
                        NULL::bigint
                   FROM generate_series(1, n_streams) AS u(s);
    RETURN;
  END IF;

  actuals := array_fill(NULL::bigint, ARRAY[n_streams]);
  hashes := array_fill(NULL::bytea, ARRAY[n_streams]);
  FOR s IN 1 .. n_streams LOOP
    SELECT e.stream_version, e.hash INTO v_version, v_hash
      FROM annals.events e WHERE e.stream_id = p_streams[s]
     ORDER BY e.stream_version DESC LIMIT 1;
    IF FOUND THEN
      actuals[s] := v_version;
      hashes[s] := v_hash;
    END IF;
    v_exp := p_expected[s];
    IF NOT (v_exp = -1
            OR ((v_exp = -2 OR v_exp = 0) AND actuals[s] IS NULL)
            OR (v_exp = -3 AND actuals[s] IS NOT NULL)
            OR (v_exp > 0 AND actuals[s] IS NOT DISTINCT FROM v_exp)) THEN
      RETURN QUERY SELECT s, 2::smallint, NULL::bigint, NULL::bigint, NULL::xid8,
                          NULL::bigint, actuals[s];
      RETURN;
    END IF;
  END LOOP;

  -- Phase 2: chain the hashes, insert, notify. The bytes each hash covers are those of
  -- annals.event_hash (0001): data and metadata rendered once each, the parts shared by the
  -- stream's events (recorded time, stream id) built once per stream.
  v_tx := annals.current_xid();
  v_time := ((extract(epoch FROM v_now) * 1000000)::bigint)::text;
  FOR s IN 1 .. n_streams LOOP
    v_version := coalesce(actuals[s], 0);
    v_hash := coalesce(hashes[s], '\x'::bytea);
    v_stream := p_streams[s];
    v_fixed := concat('|', v_time, '|', octet_length(v_stream), ':', v_stream, '|');
    ev_hashes := array_fill(NULL::bytea, ARRAY[p_counts[s]]);
    FOR k IN offsets[s] + 1 .. offsets[s] + p_counts[s] LOOP
      v_data := p_data[k]::text;
      v_meta := p_metadata[k]::text;
      v_hash := sha256(v_hash || convert_to(concat(
        p_event_ids[k], '|', v_version + k - offsets[s], '|', p_schema_versions[k], v_fixed,
        octet_length(p_event_types[k]), ':', p_event_types[k], '|',
        octet_length(v_data), ':', v_data, '|', octet_length(v_meta), ':', v_meta), 'UTF8'));
      ev_hashes[k - offsets[s]] := v_hash;
    END LOOP;

    WITH ins AS (
      INSERT INTO annals.events AS ev (transaction_id, stream_id, stream_version, event_id,
                                       event_type, schema_version, data, metadata, recorded_at,
                                       hash)
      SELECT v_tx, v_stream, v_version + u.k, u.id, u.typ, u.sv, u.dat, u.meta, v_now, u.h
        FROM unnest(p_event_ids[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    p_event_types[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    p_schema_versions[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    p_data[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    p_metadata[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    ev_hashes)
             WITH ORDINALITY AS u(id, typ, sv, dat, meta, h, k)
       ORDER BY u.k
      RETURNING ev.global_position)
    SELECT max(ins.global_position) INTO v_last_pos FROM ins;

    stream_index := s;
    outcome := 0;
    first_version := v_version + 1;
    last_version := v_version + p_counts[s];
    transaction_id := v_tx;
    global_position := v_last_pos;
    actual_version := actuals[s];
    RETURN NEXT;
  END LOOP;

  IF p_notify THEN
    PERFORM pg_notify('annals_events', '');
  END IF;
END
$$;

-- As 0012 made it, taking the transaction id from annals.current_xid().
CREATE OR REPLACE FUNCTION annals.set_event_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_version bigint;
  v_hash    bytea;
  v_want    bigint;
  v_data    text;
  v_meta    text;
BEGIN
  SELECT e.stream_version, e.hash INTO v_version, v_hash
    FROM annals.events e WHERE e.stream_id = NEW.stream_id
   ORDER BY e.stream_version DESC LIMIT 1;
  IF NEW.stream_version < 0 THEN
    v_want := NEW.stream_version;
    IF NOT (v_want = -1
            OR (v_want IN (-2, -4) AND v_version IS NULL)
            OR (v_want = -3 AND v_version IS NOT NULL)
            OR (v_want < -4 AND coalesce(v_version = -4 - v_want, false))) THEN
      RETURN NULL;
    END IF;
    NEW.stream_version := coalesce(v_version, 0) + 1;
  ELSIF NEW.stream_version IS DISTINCT FROM coalesce(v_version, 0) + 1 THEN
    IF NEW.stream_version <= coalesce(v_version, 0) THEN
      RAISE EXCEPTION 'stream % already has version %', NEW.stream_id, NEW.stream_version
        USING ERRCODE = '23505';
    END IF;
    RAISE EXCEPTION 'stream % is at version %: version % would leave a gap',
      NEW.stream_id, coalesce(v_version, 0), NEW.stream_version USING ERRCODE = 'AN011';
  END IF;
  NEW.transaction_id := annals.current_xid();
  NEW.recorded_at := now();
  -- The bytes of annals.event_hash (0001), with data and metadata rendered once each.
  v_data := NEW.data::text;
  v_meta := NEW.metadata::text;
  NEW.hash := sha256(coalesce(v_hash, '\x'::bytea) || convert_to(concat(
    NEW.event_id, '|', NEW.stream_version, '|', NEW.schema_version, '|',
    (extract(epoch FROM NEW.recorded_at) * 1000000)::bigint, '|',
    octet_length(NEW.stream_id), ':', NEW.stream_id, '|',
    octet_length(NEW.event_type), ':', NEW.event_type, '|',
    octet_length(v_data), ':', v_data, '|',
    octet_length(v_meta), ':', v_meta), 'UTF8'));
  RETURN NEW;
END
$$;

-- As 0005 made it, granting the functions above too.
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

  -- The transaction-id functions of sql/0013: every statement that appends or reads the log
  -- calls them, on behalf of each role.
  IF to_regprocedure('annals.xid_offset()') IS NOT NULL THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION annals.xid_offset(), annals.current_xid(), '
                   'annals.visible_below(), annals.next_xid(), annals.restore_check() '
                   'TO %I, %I, %I', l.writer_role, l.reader_role, l.auditor_role);
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
