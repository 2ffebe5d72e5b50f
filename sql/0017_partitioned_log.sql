-- 0017: a partitioned log (issue 17): annals.events can become a table partitioned by ranges of
-- global_position, chosen by `annals migrate --partitioned-log` (MigrateOptions::partitioned_log),
-- on a fresh store or an existing one. This migration only installs the means; a store stays
-- a plain table until annals.partition_log is called. docs/scaling.md, "Partitioned log".
--
-- Decisions:
-- * A partitioned table's unique indexes must contain the partition key, so neither
--   (stream_id, stream_version) nor event_id can be unique across partitions by an index of
--   annals.events. Instead:
--   - event ids: annals.event_ids, one plain (not partitioned) table with the id as primary key,
--     is filled by the trigger events_claim_id on every row any path inserts. Two appends that
--     carry the same id can never both commit, whichever partitions they reach (the loser gets
--     23505, which the client already treats as "ask again": the append function then finds the
--     stored id and answers re-send, overlap or idempotency error). Rows stay there when their
--     partition is archived, so an archived id is never stored twice.
--   - versions: every insert path takes the stream's transaction-scoped advisory lock before it
--     reads the stream's last version: annals.append_events always did, and events_claim_id
--     takes it for rows inserted without a hash (the single-event statement, whose trigger
--     events_set_chain then reads the head). Each partition also has its own unique index on
--     (stream_id, stream_version) and on event_id, so a duplicate within a partition is refused
--     by an index as before, and `annals verify` recomputes every chain, which a second event
--     at a taken version would break.
-- * Partitions are created ahead of need by annals.ensure_log_partitions (`annals migrate
--   --partitioned-log` and `annals partitions --ensure` call it, run by the owner): there are
--   always `ahead` empty ranges past the last position handed out. A DEFAULT partition takes
--   any row past the last range, so an append never fails for lack of a partition.
--   Partitions are created apart and then attached (ATTACH takes SHARE UPDATE EXCLUSIVE on
--   annals.events, which appends and reads do not conflict with; CREATE TABLE ... PARTITION OF
--   would take ACCESS EXCLUSIVE).
-- * Row triggers of annals.events (refusing UPDATE and DELETE, setting the chain, claiming the
--   id) are cloned by PostgreSQL onto every partition; statement triggers are not, so every
--   partition gets its own events_refuse_truncate. Partitions grant nothing to anyone: the
--   writer reaches them only through annals.events.
-- * Archiving detaches a partition that no live stream still ends in and moves it to another
--   schema, where it stays read-only (triggers) and can be attached again
--   (annals.restore_log_partition). Moving a partition to another tablespace keeps it attached.

CREATE TABLE annals.log_partitioning (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  partition_size bigint NOT NULL CHECK (partition_size >= 1),
  -- How many empty ranges ensure_log_partitions keeps past the last position handed out.
  ahead          integer NOT NULL DEFAULT 2 CHECK (ahead >= 1),
  partitioned_at timestamptz NOT NULL DEFAULT now()
);

-- Every range partition of the log: [from_position, to_position), attached unless archived_in
-- names the schema it was moved to.
CREATE TABLE annals.log_partitions (
  partition_name name PRIMARY KEY,
  from_position  bigint NOT NULL,
  to_position    bigint NOT NULL CHECK (to_position > from_position),
  archived_in    name,
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE annals.event_ids (
  event_id        uuid PRIMARY KEY,
  global_position bigint NOT NULL
);
CREATE TRIGGER event_ids_refuse_update_delete BEFORE UPDATE OR DELETE ON annals.event_ids
  FOR EACH ROW EXECUTE FUNCTION annals.refuse_event_change();
CREATE TRIGGER event_ids_refuse_truncate BEFORE TRUNCATE ON annals.event_ids
  FOR EACH STATEMENT EXECUTE FUNCTION annals.refuse_event_change();

-- BEFORE INSERT on a partitioned annals.events (every row, every path): serializes writers of
-- the stream for rows without a hash (the single-event statement; append_events holds the lock
-- already) and claims the event id across all partitions. Runs with its owner's rights: the
-- writer holds no privilege on annals.event_ids.
CREATE FUNCTION annals.claim_event_id() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.hash IS NULL THEN
    PERFORM pg_advisory_xact_lock(1634627169, hashtext(NEW.stream_id));
  END IF;
  INSERT INTO annals.event_ids (event_id, global_position)
  VALUES (NEW.event_id, NEW.global_position);
  RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION annals.claim_event_id() FROM PUBLIC;

-- The last global position handed out (0 when none): what the identity's sequence says, so a
-- position taken by a transaction that is still running (or rolled back) counts too.
CREATE FUNCTION annals.log_position() RETURNS bigint LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_position bigint;
BEGIN
  EXECUTE format('SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END FROM %s s',
                 pg_get_serial_sequence('annals.events', 'global_position'))
     INTO v_position;
  RETURN coalesce(v_position, 0);
END
$$;
REVOKE ALL ON FUNCTION annals.log_position() FROM PUBLIC;

-- Makes a table ready to become a partition of annals.events: the per-partition unique
-- indexes and the TRUNCATE guard (row triggers come with ATTACH).
CREATE FUNCTION annals.prepare_log_partition(p_table name) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('CREATE UNIQUE INDEX %I ON annals.%I (stream_id, stream_version)',
                 p_table || '_version_key', p_table);
  EXECUTE format('CREATE UNIQUE INDEX %I ON annals.%I (event_id)', p_table || '_event_id_key',
                 p_table);
  EXECUTE format('CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON annals.%I '
                 'FOR EACH STATEMENT EXECUTE FUNCTION annals.refuse_event_change()', p_table);
END
$$;
REVOKE ALL ON FUNCTION annals.prepare_log_partition(name) FROM PUBLIC;

-- Creates range partitions until `ahead` empty ranges lie past the last position handed out.
-- Returns how many it created. Safe to call concurrently (an advisory lock) and on a store
-- that is not partitioned (returns 0). Runs as the owner so that the writer's store may call
-- it; it creates nothing but the next ranges.
CREATE FUNCTION annals.ensure_log_partitions() RETURNS integer LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_size    bigint;
  v_ahead   integer;
  v_top     bigint;
  v_current bigint;
  v_default bigint;
  v_name    name;
  v_created integer := 0;
BEGIN
  SELECT p.partition_size, p.ahead INTO v_size, v_ahead FROM annals.log_partitioning p;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  PERFORM pg_advisory_xact_lock(1634627169, 1886417524);  -- 'part'
  SELECT max(p.to_position) INTO v_top FROM annals.log_partitions p;
  v_top := coalesce(v_top, 1);
  v_current := annals.log_position();
  -- Rows that reached the default partition (maintenance fell behind) stay there; the next
  -- range starts past them.
  SELECT max(d.global_position) INTO v_default FROM annals.events_default d;
  IF v_default IS NOT NULL AND v_default >= v_top THEN
    v_top := v_default + 1;
  END IF;
  WHILE v_top <= v_current + v_ahead::bigint * v_size LOOP
    v_name := 'events_from_' || v_top::text;
    EXECUTE format('CREATE TABLE annals.%I (LIKE annals.events INCLUDING DEFAULTS '
                   'INCLUDING CONSTRAINTS)', v_name);
    PERFORM annals.prepare_log_partition(v_name);
    EXECUTE format('ALTER TABLE annals.events ATTACH PARTITION annals.%I '
                   'FOR VALUES FROM (%s) TO (%s)', v_name, v_top, v_top + v_size);
    INSERT INTO annals.log_partitions (partition_name, from_position, to_position)
    VALUES (v_name, v_top, v_top + v_size);
    v_top := v_top + v_size;
    v_created := v_created + 1;
  END LOOP;
  RETURN v_created;
END
$$;
REVOKE ALL ON FUNCTION annals.ensure_log_partitions() FROM PUBLIC;

-- Turns annals.events into a table partitioned by ranges of p_partition_size positions.
-- A store without events gets a new, empty partitioned table; a store with events keeps them:
-- the old table becomes the first partition, [1, the first multiple of the size past its last
-- position + 1), after one scan that proves its range (ACCESS EXCLUSIVE on annals.events for
-- that scan). Positions continue where they were, so checkpoints and anchors stay valid.
-- On a store that is already partitioned, only records p_partition_size for the ranges created
-- from now on. Returns what it did, as a short text.
CREATE FUNCTION annals.partition_log(p_partition_size bigint) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_max   bigint;
  v_next  bigint;
  v_bound bigint;
  v_name  name;
BEGIN
  IF p_partition_size IS NULL OR p_partition_size < 1 THEN
    RAISE EXCEPTION 'partition_log: the partition size must be at least 1 (got %)',
      p_partition_size USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_partitioned_table t
              WHERE t.partrelid = 'annals.events'::regclass) THEN
    UPDATE annals.log_partitioning SET partition_size = p_partition_size;
    PERFORM annals.ensure_log_partitions();
    RETURN 'already partitioned; new ranges hold ' || p_partition_size::text || ' positions';
  END IF;

  LOCK TABLE annals.events IN ACCESS EXCLUSIVE MODE;
  SELECT max(e.global_position) INTO v_max FROM annals.events e;
  v_next := greatest(coalesce(v_max, 0), annals.log_position()) + 1;

  DROP VIEW annals.streams;
  ALTER TABLE annals.events RENAME TO events_unpartitioned;
  ALTER INDEX annals.events_log_order_idx RENAME TO events_unpartitioned_log_order_idx;
  CREATE TABLE annals.events (
    LIKE annals.events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS
      INCLUDING IDENTITY INCLUDING STORAGE
  ) PARTITION BY RANGE (global_position);
  EXECUTE format('ALTER TABLE annals.events ALTER COLUMN global_position RESTART WITH %s',
                 v_next);
  CREATE INDEX events_log_order_idx ON annals.events (transaction_id, global_position);
  CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON annals.events
    FOR EACH ROW EXECUTE FUNCTION annals.refuse_event_change();
  CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON annals.events
    FOR EACH STATEMENT EXECUTE FUNCTION annals.refuse_event_change();
  CREATE TRIGGER events_claim_id BEFORE INSERT ON annals.events
    FOR EACH ROW EXECUTE FUNCTION annals.claim_event_id();
  CREATE TRIGGER events_set_chain BEFORE INSERT ON annals.events
    FOR EACH ROW WHEN (NEW.hash IS NULL) EXECUTE FUNCTION annals.set_event_chain();

  IF v_max IS NULL THEN
    DROP TABLE annals.events_unpartitioned;
    v_bound := 1;
  ELSE
    -- The old table keeps its own unique indexes and TRUNCATE guard; its row triggers come
    -- back as clones of the parent's.
    v_bound := (v_max / p_partition_size + 1) * p_partition_size + 1;
    v_name := 'events_from_1';
    ALTER TABLE annals.events_unpartitioned ALTER COLUMN global_position DROP IDENTITY;
    DROP TRIGGER events_refuse_update_delete ON annals.events_unpartitioned;
    DROP TRIGGER events_set_chain ON annals.events_unpartitioned;
    EXECUTE format('ALTER TABLE annals.events_unpartitioned RENAME TO %I', v_name);
    INSERT INTO annals.event_ids (event_id, global_position)
    SELECT e.event_id, e.global_position FROM annals.events_from_1 e;
    EXECUTE format('ALTER TABLE annals.events ATTACH PARTITION annals.%I '
                   'FOR VALUES FROM (1) TO (%s)', v_name, v_bound);
    INSERT INTO annals.log_partitions (partition_name, from_position, to_position)
    VALUES (v_name, 1, v_bound);
  END IF;

  CREATE TABLE annals.events_default (LIKE annals.events INCLUDING DEFAULTS
                                      INCLUDING CONSTRAINTS);
  PERFORM annals.prepare_log_partition('events_default');
  ALTER TABLE annals.events ATTACH PARTITION annals.events_default DEFAULT;

  CREATE VIEW annals.streams AS
    SELECT stream_id, max(stream_version) AS version, count(*) AS event_count,
           min(recorded_at) AS created_at, max(recorded_at) AS updated_at
      FROM annals.events GROUP BY stream_id;

  INSERT INTO annals.log_partitioning (partition_size) VALUES (p_partition_size);
  PERFORM annals.ensure_log_partitions();
  PERFORM annals.grant_role_privileges();
  RETURN CASE WHEN v_max IS NULL THEN 'partitioned an empty log'
              ELSE 'partitioned a log of ' || v_max::text || ' positions' END;
END
$$;
REVOKE ALL ON FUNCTION annals.partition_log(bigint) FROM PUBLIC;

-- Detaches a range partition whose events lie wholly before the current position and moves it
-- to schema p_schema (created when missing, which needs CREATE on the database), where triggers keep it read-only. Refused while
-- a stream still ends in it (its last event is there): an append to that stream would no
-- longer find its head.
-- Returns the number of events archived.
CREATE FUNCTION annals.archive_log_partition(p_partition name, p_schema name)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_part    annals.log_partitions%ROWTYPE;
  v_current bigint;
  v_count   bigint;
  v_stream  text;
BEGIN
  SELECT * INTO v_part FROM annals.log_partitions p WHERE p.partition_name = p_partition;
  IF NOT FOUND OR v_part.archived_in IS NOT NULL THEN
    RAISE EXCEPTION 'archive_log_partition: % is not an attached range partition of annals.events',
      p_partition USING ERRCODE = '22023';
  END IF;
  IF p_schema IS NULL OR p_schema = 'annals' THEN
    RAISE EXCEPTION 'archive_log_partition: the archive schema must be another schema than annals'
      USING ERRCODE = '22023';
  END IF;
  LOCK TABLE annals.events IN ACCESS EXCLUSIVE MODE;
  v_current := annals.log_position();
  IF v_part.to_position > v_current + 1 THEN
    RAISE EXCEPTION 'archive_log_partition: % still takes new events (positions up to %; the log is at %)',
      p_partition, v_part.to_position - 1, v_current USING ERRCODE = '22023';
  END IF;
  EXECUTE format(
    'SELECT h.stream_id FROM annals.%I h'
    ' WHERE NOT EXISTS (SELECT 1 FROM annals.events l WHERE l.stream_id = h.stream_id'
    '                     AND l.stream_version > h.stream_version)'
    ' LIMIT 1', p_partition) INTO v_stream;
  IF v_stream IS NOT NULL THEN
    RAISE EXCEPTION 'archive_log_partition: stream % ends in %; archive it once the stream has later events',
      v_stream, p_partition USING ERRCODE = '22023';
  END IF;
  EXECUTE format('SELECT count(*) FROM annals.%I', p_partition) INTO v_count;
  EXECUTE format('ALTER TABLE annals.events DETACH PARTITION annals.%I', p_partition);
  -- Creating the schema needs CREATE on the database, which a role layout's owner lacks: then
  -- create it beforehand (CREATE SCHEMA ... AUTHORIZATION the owner).
  IF to_regnamespace(quote_ident(p_schema)) IS NULL THEN
    EXECUTE format('CREATE SCHEMA %I', p_schema);
  END IF;
  EXECUTE format('ALTER TABLE annals.%I SET SCHEMA %I', p_partition, p_schema);
  EXECUTE format('CREATE TRIGGER archive_refuse_update_delete BEFORE UPDATE OR DELETE ON %I.%I '
                 'FOR EACH ROW EXECUTE FUNCTION annals.refuse_event_change()',
                 p_schema, p_partition);
  EXECUTE format('CREATE TRIGGER archive_refuse_insert BEFORE INSERT ON %I.%I '
                 'FOR EACH ROW EXECUTE FUNCTION annals.refuse_event_change()',
                 p_schema, p_partition);
  UPDATE annals.log_partitions SET archived_in = p_schema WHERE partition_name = p_partition;
  RETURN v_count;
END
$$;
REVOKE ALL ON FUNCTION annals.archive_log_partition(name, name) FROM PUBLIC;

-- Attaches an archived partition again at its recorded range (one scan to prove the range).
CREATE FUNCTION annals.restore_log_partition(p_partition name) RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_part  annals.log_partitions%ROWTYPE;
  v_count bigint;
BEGIN
  SELECT * INTO v_part FROM annals.log_partitions p WHERE p.partition_name = p_partition;
  IF NOT FOUND OR v_part.archived_in IS NULL THEN
    RAISE EXCEPTION 'restore_log_partition: % is not an archived partition of annals.events',
      p_partition USING ERRCODE = '22023';
  END IF;
  EXECUTE format('DROP TRIGGER archive_refuse_update_delete ON %I.%I', v_part.archived_in,
                 p_partition);
  EXECUTE format('DROP TRIGGER archive_refuse_insert ON %I.%I', v_part.archived_in,
                 p_partition);
  EXECUTE format('ALTER TABLE %I.%I SET SCHEMA annals', v_part.archived_in, p_partition);
  EXECUTE format('ALTER TABLE annals.events ATTACH PARTITION annals.%I '
                 'FOR VALUES FROM (%s) TO (%s)', p_partition, v_part.from_position,
                 v_part.to_position);
  EXECUTE format('SELECT count(*) FROM annals.%I', p_partition) INTO v_count;
  UPDATE annals.log_partitions SET archived_in = NULL WHERE partition_name = p_partition;
  PERFORM annals.grant_role_privileges();
  RETURN v_count;
END
$$;
REVOKE ALL ON FUNCTION annals.restore_log_partition(name) FROM PUBLIC;
