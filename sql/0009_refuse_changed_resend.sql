-- 0009: a re-send of stored event ids with different content is refused (issue 11).
--
-- annals.append_events (0001) treated any append whose event ids were all stored, in order, in
-- the named streams as an exact re-send and returned the original result, whatever the events
-- carried. A retry that changed an event's data, type, schema version or metadata was thus
-- told it had succeeded while the store kept the old content. This replaces the function with
-- the same signature and result columns, adding outcome 4 (ids stored with different content)
-- to its re-send check; everything else is unchanged, and an append stays one round trip
-- (decision 2). The single-event statement (sql.hpp, kAppendOne) writes nothing when its id
-- is stored and falls back to this function, so it is covered too.

-- Appends events to one or more streams atomically.
--
-- Streams are given in p_streams with their expected versions (p_expected: -1 any,
-- -2 no stream, -3 stream exists, n >= 0 exactly n) and event counts (p_counts); the event
-- arrays hold every stream's events one after the other, in the order of p_streams.
--
-- Returns one row per stream, in p_streams order, when every stream was written (outcome 0)
-- or every stream was an exact re-send of stored events (outcome 1, with the original
-- versions and position). Otherwise it writes nothing and returns one row for the first
-- stream that failed: outcome 2 = expected version mismatch (actual_version = the stream's
-- version, NULL when it has no events); outcome 3 = some event ids are already stored
-- elsewhere or only part of the events are; outcome 4 = every id is stored as this append
-- would have stored it, but some event's content differs (a re-send with changed content is
-- not idempotent, issue 11). For outcome 4 the row names the first differing event, in
-- p_streams order and then event order: stream_index = its stream, first_version = its stored
-- version, last_version = its 1-based place among that stream's events in this call, and
-- actual_version = which parts differ, as a sum: 1 event type, 2 schema version, 4 data,
-- 8 metadata (data and metadata compared as jsonb, so key order and spacing do not count).
--
-- Concurrency: writers of a stream are serialized by pg_advisory_xact_lock(1634627169,
-- hashtext(stream_id)), taken in lock-key order so multi-stream appends cannot deadlock.
-- Every statement after the lock sees the previous writer's commit (read committed takes a
-- new snapshot per statement). Should another writer bypass the lock, the primary key refuses
-- the duplicate version (SQLSTATE 23505) and the client calls again.
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

  -- Phase 2: chain the hashes, insert, notify.
  v_tx := pg_current_xact_id();
  ev_hashes := array_fill(NULL::bytea, ARRAY[v_off]);
  FOR s IN 1 .. n_streams LOOP
    v_version := coalesce(actuals[s], 0);
    v_hash := coalesce(hashes[s], '\x'::bytea);
    FOR k IN offsets[s] + 1 .. offsets[s] + p_counts[s] LOOP
      v_hash := annals.event_hash(v_hash, p_event_ids[k], p_streams[s],
                                  v_version + k - offsets[s], p_event_types[k],
                                  p_schema_versions[k], p_data[k], p_metadata[k], v_now);
      ev_hashes[k] := v_hash;
    END LOOP;

    WITH ins AS (
      INSERT INTO annals.events AS ev (transaction_id, stream_id, stream_version, event_id,
                                       event_type, schema_version, data, metadata, recorded_at,
                                       hash)
      SELECT v_tx, p_streams[s], v_version + u.k, u.id, u.typ, u.sv, u.dat, u.meta, v_now, u.h
        FROM unnest(p_event_ids[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    p_event_types[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    p_schema_versions[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    p_data[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    p_metadata[offsets[s] + 1 : offsets[s] + p_counts[s]],
                    ev_hashes[offsets[s] + 1 : offsets[s] + p_counts[s]])
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
