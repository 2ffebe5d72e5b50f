-- 0010: the same rules and the same chain, for less server work per single-event append.
--
-- Measured with callgrind on a single-user backend (docs/performance.md, "Server work per
-- single-event append"), a single-event append under 0009 cost about 624,000 instructions of
-- server work, 27 % more than before the trust work of 0005-0009. Two causes, both removed here:
--
-- * CHECK constraints of a table are read back from their stored node text (stringToNode) and
--   prepared for every statement that inserts. For a statement that inserts one row, the four
--   column rules of 0007 cost about 130,000 instructions of parsing alone. The rules move, with
--   their names and expressions unchanged, to domains, whose constraints PostgreSQL parses once
--   per session and caches (typcache). They still hold on every path that stores a row (INSERT,
--   COPY, a restore, annals.append_events): a domain's constraint is checked wherever a value
--   becomes the column's type, and a violation is still SQLSTATE 23514 naming the constraint.
--   The columns change type without a rewrite (a domain over the column's own type is binary
--   compatible, so the indexes are kept); the constraints are then added to the domains,
--   which checks every stored row in one scan, as 0007 did.
--
-- * The single-event statement (sql.hpp, kAppendOne) looked up the stream's last event to check
--   the expected version and then the trigger looked it up again for the previous hash. The
--   trigger now also does the statement's part when asked to: a negative stream_version on
--   INSERT is an expectation, not a version (-1 any, -2 no stream, -3 stream exists, -4 - n
--   exactly n). The trigger assigns the next version when the stream meets the expectation and
--   otherwise skips the row (RETURN NULL: no error, so an append grouped with others in one
--   transaction does not abort them; the statement then returns no row, as before, and the
--   client finds out why). A positive stream_version is checked exactly as under 0005.
--
-- What the database vouches for is unchanged: transaction_id, recorded_at and hash are set by
-- this trigger (or by annals.append_events) on every insert path, and the writer role still
-- cannot choose them (security.md).

-- The column rules of 0007, as domains. Created empty first, so that changing the columns'
-- types needs neither a rewrite nor a check; the constraints follow once the columns use them.
CREATE DOMAIN annals.stream_id AS text;
CREATE DOMAIN annals.event_type AS text;
CREATE DOMAIN annals.event_id AS uuid;
CREATE DOMAIN annals.event_metadata AS jsonb;

-- The streams view depends on the columns' types; it is recreated as it was (0001).
DROP VIEW annals.streams;

ALTER TABLE annals.events
  DROP CONSTRAINT events_stream_id_check,
  DROP CONSTRAINT events_event_type_check,
  DROP CONSTRAINT events_event_id_check,
  DROP CONSTRAINT events_metadata_check,
  ALTER COLUMN stream_id TYPE annals.stream_id,
  ALTER COLUMN event_type TYPE annals.event_type,
  ALTER COLUMN event_id TYPE annals.event_id,
  ALTER COLUMN metadata TYPE annals.event_metadata;

-- Checks every stored row (one scan per domain) and fails the migration when one breaks a rule.
ALTER DOMAIN annals.stream_id ADD CONSTRAINT events_stream_id_check
  CHECK (octet_length(VALUE) BETWEEN 1 AND 512 AND VALUE !~ '[\x01-\x1f\x7f-\x9f]');
ALTER DOMAIN annals.event_type ADD CONSTRAINT events_event_type_check
  CHECK (octet_length(VALUE) BETWEEN 1 AND 256 AND VALUE !~ '[\x01-\x1f\x7f-\x9f]');
ALTER DOMAIN annals.event_id ADD CONSTRAINT events_event_id_check
  CHECK (VALUE <> '00000000-0000-0000-0000-000000000000');
ALTER DOMAIN annals.event_metadata ADD CONSTRAINT events_metadata_check
  CHECK (jsonb_typeof(VALUE) = 'object');

CREATE VIEW annals.streams AS
  SELECT stream_id, max(stream_version) AS version, count(*) AS event_count,
         min(recorded_at) AS created_at, max(recorded_at) AS updated_at
    FROM annals.events GROUP BY stream_id;

-- Sets the stream version (when asked to), transaction_id, recorded_at and hash of a row
-- inserted without a hash. See the header for the meaning of a negative stream_version.
CREATE OR REPLACE FUNCTION annals.set_event_chain() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  v_version bigint;
  v_hash    bytea;
  v_want    bigint;
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
  NEW.transaction_id := pg_current_xact_id();
  NEW.recorded_at := now();
  NEW.hash := annals.event_hash(coalesce(v_hash, '\x'::bytea), NEW.event_id, NEW.stream_id,
                                NEW.stream_version, NEW.event_type, NEW.schema_version,
                                NEW.data, NEW.metadata, NEW.recorded_at);
  RETURN NEW;
END
$$;
