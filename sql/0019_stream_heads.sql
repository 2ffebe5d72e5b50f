-- 0019: the heads of a partitioned log's streams (issue 17, "per-partition append cost";
-- docs/scaling.md, "Partitioned log"). Only a partitioned store changes: a plain store keeps
-- every statement, function and trigger it had (this migration adds functions it never calls).
--
-- Measured before (bench/partitioned_append_cost.sh): every look-up of a partitioned log by
-- stream id (the stream's last version, hash and transaction id) and by event id (the
-- single-event statement's NOT EXISTS, append_events' idempotency probe) cannot be pruned by
-- position, so it was planned, locked and run over every attached partition: with 121
-- partitions a single-event append cost about 10 times a plain table's.
--
-- Decisions:
-- * annals.stream_heads (created by annals.install_stream_heads, only on a partitioned log):
--   one row per stream, its last event's version, position, transaction id, hash and whether
--   it is a tombstone. It is a plain table: a look-up is one primary-key probe, whatever the
--   number of partitions.
-- * Two triggers of a partitioned annals.events keep them, whatever path inserts rows:
--   - events_set_chain (BEFORE, each row without a hash: the single-event statement) runs
--     annals.set_partitioned_chain(), set_event_chain with the head read from stream_heads,
--     under the stream's advisory lock (a plain store keeps annals.set_event_chain()).
--   - events_move_heads (AFTER, once per statement, with the inserted rows as a transition
--     table) runs annals.move_stream_heads(): one statement claims every id in
--     annals.event_ids (23505 when stored: a re-send or a concurrent duplicate, which the
--     client answers by asking the append function) and moves each stream's head to its last
--     row: an UPDATE that requires the head at the stream's first row's version - 1, or, for
--     a stream without a head, an INSERT. So no two writers can extend a head from the same
--     version, and two first appends to one new stream never both commit (the second's head
--     INSERT waits for the first and fails with 23505), even on a path that takes no lock.
--     Set-based, so a batch pays once, not per event (measured: a per-row trigger cost a
--     10-event append_events about 1.3 to 1.6 times a plain table's). A statement's rows of
--     one stream must have consecutive versions (23505).
--   They replace 0017's events_claim_id, which claimed the id before set_event_chain could
--   skip the row (a refused single-event append left its id claimed). Both run with their
--   owner's rights: the writer holds no privilege on annals.event_ids or annals.stream_heads.
--   Statement triggers are not cloned onto partitions: rows the owner inserts into a
--   partition directly move no head (verify reports the stale head).
-- * annals.append_events_partitioned: 0018's append_events (same signature, outcomes and
--   checks), reading heads from annals.stream_heads and event ids from annals.event_ids (an
--   event found there is fetched by its position, which prunes to its partition). The store
--   calls it, and sends a single-event statement without the NOT EXISTS probe, when it finds
--   annals.stream_heads at open (sql.hpp kAppendPartitioned, kAppendOnePartitioned). The plain
--   statements still work on a partitioned log (the trigger keeps the heads whatever inserts),
--   only at the old cost: restart applications after partitioning their store.
-- * The heads are history's summary, not data anyone writes: nothing is granted on the table,
--   and triggers refuse INSERT, UPDATE and DELETE made outside the log's own trigger
--   (pg_trigger_depth() = 0) and TRUNCATE, with AN010, even to the owner. `annals verify`
--   checks that every head agrees with its stream's last attached event, and the guards.
-- * A migration that changes annals.append_events or annals.set_event_chain must change
--   append_events_partitioned and set_partitioned_chain the same way.
-- * Converting: annals.partition_log (below, 0017's with install_stream_heads in place of its
--   two insert triggers) fills the heads from the events it converts; a log partitioned before
--   this migration is converted by it (below): one pass over its streams' last events under
--   ACCESS EXCLUSIVE on annals.events.

CREATE FUNCTION annals.refuse_head_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'annals.stream_heads is kept by the log''s trigger: % refused', TG_OP
    USING ERRCODE = 'AN010';
END
$$;

-- BEFORE INSERT on a partitioned annals.events, rows without a hash (trigger events_set_chain):
-- set_event_chain (0018) with the head from annals.stream_heads.
CREATE FUNCTION annals.set_partitioned_chain() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_version bigint;
  v_hash    bytea;
  v_deleted boolean;
  v_want    bigint;
  v_data    text;
  v_meta    text;
  v_head_tx xid8;
  v_me      xid8;
BEGIN
  -- The stream's lock (append_events_partitioned takes it too) keeps the head still until this
  -- commits.
  PERFORM pg_advisory_xact_lock(1634627169, hashtext(NEW.stream_id));
  SELECT h.stream_version, h.hash, h.deleted, h.transaction_id
    INTO v_version, v_hash, v_deleted, v_head_tx
    FROM annals.stream_heads h WHERE h.stream_id = NEW.stream_id;
  v_me := annals.current_xid();
  IF v_head_tx > v_me THEN
    RAISE EXCEPTION 'stream % was last appended to by transaction %, younger than this one '
      '(%): retry the append in a new transaction', NEW.stream_id, v_head_tx, v_me
      USING ERRCODE = '40001';
  END IF;
  IF v_deleted THEN
    IF NEW.stream_version < 0 THEN
      RETURN NULL;
    END IF;
    RAISE EXCEPTION 'stream % is deleted (its tombstone is version %)', NEW.stream_id, v_version
      USING ERRCODE = 'AN012';
  END IF;
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
  NEW.transaction_id := v_me;
  NEW.recorded_at := now();
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
REVOKE ALL ON FUNCTION annals.set_partitioned_chain() FROM PUBLIC;

-- AFTER INSERT on a partitioned annals.events, once per statement (trigger events_move_heads),
-- whatever path inserted the rows: claims their ids in annals.event_ids (23505 when stored) and
-- moves each stream's head to its last row. A stream's rows must have consecutive versions that
-- follow its head (an UPDATE that requires the head at the first row's version - 1); a stream
-- without a head gets one (an INSERT, which fails with 23505 when a head exists or a
-- concurrent first append of the stream commits first). Set-based: one statement for all rows.
CREATE FUNCTION annals.move_stream_heads() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_bad text;
BEGIN
  WITH ids AS (
    INSERT INTO annals.event_ids (event_id, global_position)
    SELECT n.event_id, n.global_position FROM new_rows n),
  numbered AS (
    SELECT n.stream_id::text AS stream_id, n.stream_version, n.global_position,
           n.transaction_id, n.hash, n.event_type = '$stream-deleted' AS deleted,
           row_number() OVER w AS rn, count(*) OVER w AS cnt,
           min(n.stream_version) OVER w AS first_version
      FROM new_rows n
    WINDOW w AS (PARTITION BY n.stream_id ORDER BY n.stream_version
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)),
  last AS (SELECT * FROM numbered u WHERE u.rn = u.cnt),
  moved AS (
    UPDATE annals.stream_heads h
       SET stream_version = l.stream_version, global_position = l.global_position,
           transaction_id = l.transaction_id, hash = l.hash, deleted = l.deleted
      FROM last l
     WHERE h.stream_id = l.stream_id AND h.stream_version = l.first_version - 1
    RETURNING h.stream_id),
  created AS (
    INSERT INTO annals.stream_heads (stream_id, stream_version, global_position,
                                     transaction_id, hash, deleted)
    SELECT l.stream_id, l.stream_version, l.global_position, l.transaction_id, l.hash, l.deleted
      FROM last l WHERE l.stream_id NOT IN (SELECT m.stream_id FROM moved m))
  SELECT u.stream_id INTO v_bad FROM numbered u
   WHERE u.stream_version - u.first_version + 1 <> u.rn LIMIT 1;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'stream %: the rows one statement inserts must have consecutive versions',
      v_bad USING ERRCODE = '23505';
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION annals.move_stream_heads() FROM PUBLIC;

-- Creates annals.stream_heads from the events of a partitioned annals.events and puts
-- set_partitioned_chain in place of the insert triggers of 0017. Called by partition_log and
-- by this migration on a log partitioned before it; does nothing when the heads exist.
CREATE FUNCTION annals.install_stream_heads() RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF to_regclass('annals.stream_heads') IS NOT NULL THEN
    RETURN;
  END IF;
  LOCK TABLE annals.events IN ACCESS EXCLUSIVE MODE;
  CREATE TABLE annals.stream_heads (
    stream_id       text PRIMARY KEY,
    stream_version  bigint NOT NULL,
    global_position bigint NOT NULL,
    transaction_id  xid8 NOT NULL,
    hash            bytea NOT NULL,
    deleted         boolean NOT NULL
  ) WITH (fillfactor = 70);  -- room on each page for the updates of a head (HOT)
  INSERT INTO annals.stream_heads (stream_id, stream_version, global_position, transaction_id,
                                   hash, deleted)
  SELECT DISTINCT ON (e.stream_id) e.stream_id, e.stream_version, e.global_position,
         e.transaction_id, e.hash, e.event_type = '$stream-deleted'
    FROM annals.events e
   ORDER BY e.stream_id DESC, e.stream_version DESC;
  CREATE TRIGGER stream_heads_refuse_change BEFORE INSERT OR UPDATE OR DELETE
    ON annals.stream_heads FOR EACH ROW WHEN (pg_trigger_depth() < 1)
    EXECUTE FUNCTION annals.refuse_head_change();
  CREATE TRIGGER stream_heads_refuse_truncate BEFORE TRUNCATE ON annals.stream_heads
    FOR EACH STATEMENT EXECUTE FUNCTION annals.refuse_head_change();
  DROP TRIGGER IF EXISTS events_claim_id ON annals.events;
  DROP TRIGGER IF EXISTS events_set_chain ON annals.events;
  DROP TRIGGER IF EXISTS events_move_heads ON annals.events;
  CREATE TRIGGER events_set_chain BEFORE INSERT ON annals.events
    FOR EACH ROW WHEN (NEW.hash IS NULL) EXECUTE FUNCTION annals.set_partitioned_chain();
  CREATE TRIGGER events_move_heads AFTER INSERT ON annals.events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION annals.move_stream_heads();
END
$$;
REVOKE ALL ON FUNCTION annals.install_stream_heads() FROM PUBLIC;

CREATE FUNCTION annals.append_events_partitioned(
  p_streams text[], p_expected bigint[], p_counts integer[],
  p_event_ids uuid[], p_event_types text[], p_schema_versions integer[],
  p_data jsonb[], p_metadata jsonb[], p_notify boolean DEFAULT true,
  p_reopen boolean[] DEFAULT NULL)
RETURNS TABLE (stream_index integer, outcome smallint, first_version bigint,
               last_version bigint, transaction_id xid8, global_position bigint,
               actual_version bigint)
-- 0018's append_events for a partitioned log: heads from annals.stream_heads, event ids from
-- annals.event_ids (an event found there is fetched by its position: one partition).
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
  v_head_tx  xid8;
  v_me       xid8;
  v_deleted  boolean;
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

  IF EXISTS (SELECT 1 FROM annals.event_ids i WHERE i.event_id = ANY (p_event_ids)) THEN
    -- A re-send is exact when, for every stream, every id is stored in that stream, in
    -- order, at consecutive versions. It returns the original result.
    dup_first := array_fill(NULL::bigint, ARRAY[n_streams]);
    dup_tx := array_fill(NULL::xid8, ARRAY[n_streams]);
    dup_pos := array_fill(NULL::bigint, ARRAY[n_streams]);
    FOR s IN 1 .. n_streams LOOP
      v_ids := p_event_ids[offsets[s] + 1 : offsets[s] + p_counts[s]];
      SELECT e.stream_version INTO v_first
        FROM annals.event_ids i JOIN annals.events e ON e.global_position = i.global_position
       WHERE i.event_id = v_ids[1] AND e.event_id = i.event_id AND e.stream_id = p_streams[s];
      v_found := 0;
      IF FOUND THEN
        SELECT count(*), max(e.transaction_id), max(e.global_position)
          INTO v_found, v_tx, v_last_pos
          FROM unnest(v_ids) WITH ORDINALITY AS u(id, ord)
          JOIN annals.event_ids i ON i.event_id = u.id
          JOIN annals.events e ON e.global_position = i.global_position AND e.event_id = u.id
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
        JOIN annals.event_ids i ON i.event_id = u.id
        JOIN annals.events e ON e.global_position = i.global_position AND e.event_id = u.id
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
  v_me := annals.current_xid();
  FOR s IN 1 .. n_streams LOOP
    -- The stream's head (its last event's version, hash, transaction and whether it is a
    -- tombstone): one probe of annals.stream_heads.
    SELECT h.stream_version, h.hash, h.deleted, h.transaction_id
      INTO v_version, v_hash, v_deleted, v_head_tx
      FROM annals.stream_heads h WHERE h.stream_id = p_streams[s];
    IF FOUND THEN
      -- Readers order the log by transaction id: a stream's next event must not sort before
      -- its last one. A younger transaction appended (and committed) since this one began to
      -- write: retry in a new transaction, whose id is larger.
      IF v_head_tx > v_me THEN
        RAISE EXCEPTION 'stream % was last appended to by transaction %, younger than this one '
          '(%): retry the append in a new transaction', p_streams[s], v_head_tx, v_me
          USING ERRCODE = '40001';
      END IF;
      actuals[s] := v_version;
      hashes[s] := v_hash;
      IF v_deleted AND NOT coalesce(p_reopen[s], false) THEN
        RETURN QUERY SELECT s, 5::smallint, NULL::bigint, NULL::bigint, NULL::xid8,
                            NULL::bigint, v_version;
        RETURN;
      END IF;
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
REVOKE ALL ON FUNCTION annals.append_events_partitioned(text[], bigint[], integer[], uuid[],
  text[], integer[], jsonb[], jsonb[], boolean, boolean[]) FROM PUBLIC;

-- 0017's, with annals.install_stream_heads in place of its two insert triggers.
CREATE OR REPLACE FUNCTION annals.partition_log(p_partition_size bigint) RETURNS text LANGUAGE plpgsql
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
  -- The heads of the converted streams, and the insert trigger that keeps them (0019).
  PERFORM annals.install_stream_heads();

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

-- As 0015 made it, granting append_events_partitioned to the writer and the heads to the
-- auditor.
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

  -- A partitioned log (sql/0019): the writer appends through append_events_partitioned; the
  -- auditor reads the stream heads, which verify compares with the log.
  EXECUTE format('GRANT EXECUTE ON FUNCTION annals.append_events_partitioned(text[], bigint[], '
                 'integer[], uuid[], text[], integer[], jsonb[], jsonb[], boolean, boolean[]) '
                 'TO %I', l.writer_role);
  IF to_regclass('annals.stream_heads') IS NOT NULL THEN
    EXECUTE format('GRANT SELECT ON annals.stream_heads TO %I', l.auditor_role);
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

-- A log partitioned before this migration gets its heads now.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_partitioned_table t
              WHERE t.partrelid = 'annals.events'::regclass) THEN
    PERFORM annals.install_stream_heads();
  END IF;
END
$$;
