-- 0018: a stream's events in version order for every reader of the log (decision 5).
--
-- Readers order the log by (transaction id, position). A transaction takes its id when it
-- first writes, so one that wrote elsewhere first (a group commit of several appends, a
-- multi-stream append, an inline append) and then appended to a stream after a younger
-- transaction had appended to it and committed, stored its event with a smaller transaction id
-- than the stream's previous event: readers got the stream's events out of version order
-- (found by InlineProjectionTest.ConcurrentInlineWritersWithARunner; reproduced with two
-- sessions by PostgresStoreTest.AStreamIsNeverAppendedToBehindAYoungerTransaction).
--
-- Decision: both insert paths already read the stream's last event under the stream's lock
-- (annals.append_events) or its unique index (the single-event statement and its trigger);
-- they now also compare its transaction id with their own and refuse with SQLSTATE 40001
-- (serialization_failure) when it is younger. The store retries 40001 in a new transaction,
-- whose id is larger, so the caller sees no error; only the rare interleaving pays a retry.
-- The functions are 0014's with that check added (same signatures: grants stay).

CREATE OR REPLACE FUNCTION annals.append_events(
  p_streams text[], p_expected bigint[], p_counts integer[],
  p_event_ids uuid[], p_event_types text[], p_schema_versions integer[],
  p_data jsonb[], p_metadata jsonb[], p_notify boolean DEFAULT true,
  p_reopen boolean[] DEFAULT NULL)
RETURNS TABLE (stream_index integer, outcome smallint, first_version bigint,
               last_version bigint, transaction_id xid8, global_position bigint,
               actual_version bigint)
-- As migration 0005 made it: it writes the columns the writer role may not, with its owner's
-- rights, and pins search_path (docs/security.md). As 0014 made it, plus the order check.
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
  v_type     text;
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
  v_me := annals.current_xid();
  FOR s IN 1 .. n_streams LOOP
    -- The stream's last event, which the append needs anyway (its version and hash): its type
    -- says whether the stream is deleted, at no extra cost.
    SELECT e.stream_version, e.hash, e.event_type, e.transaction_id
      INTO v_version, v_hash, v_type, v_head_tx
      FROM annals.events e WHERE e.stream_id = p_streams[s]
     ORDER BY e.stream_version DESC LIMIT 1;
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
      IF v_type = '$stream-deleted' AND NOT coalesce(p_reopen[s], false) THEN
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

CREATE OR REPLACE FUNCTION annals.set_event_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_version bigint;
  v_hash    bytea;
  v_type    text;
  v_want    bigint;
  v_data    text;
  v_meta    text;
  v_head_tx xid8;
BEGIN
  SELECT e.stream_version, e.hash, e.event_type, e.transaction_id
    INTO v_version, v_hash, v_type, v_head_tx
    FROM annals.events e WHERE e.stream_id = NEW.stream_id
   ORDER BY e.stream_version DESC LIMIT 1;
  -- As in annals.append_events (0018): never after an event of a younger transaction.
  IF v_head_tx > annals.current_xid() THEN
    RAISE EXCEPTION 'stream % was last appended to by transaction %, younger than this one '
      '(%): retry the append in a new transaction', NEW.stream_id, v_head_tx,
      annals.current_xid() USING ERRCODE = '40001';
  END IF;
  -- A deleted stream (its last event is a tombstone) takes no rows through this path: the
  -- client's expectation (a negative version) is skipped like a mismatch, and the client asks
  -- annals.append_events, which reports the deletion; any other insert is refused.
  IF v_type = '$stream-deleted' THEN
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
