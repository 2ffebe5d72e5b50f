-- 0007: CHECK constraints on annals.events that match the client's validation of appends.
--
-- Decisions (see docs/schema.md, "Column rules", and ../shared/ARCHITECTURE.md decision 12):
-- * Every rule the client enforces on an append (StreamId, encode_events in
--   eventstore/src/encoded_event.cpp) is also a constraint, so that a row no client could have
--   written cannot be stored through any path (a plain INSERT, a restore, another client), and
--   every reader can decode what is stored (issue #11).
-- * Lengths are in bytes, as the client counts them (octet_length, not length). Control
--   characters are U+0001-U+001F and U+007F-U+009F, as in the client (U+0000 cannot occur in
--   text). PostgreSQL's regular expressions compare bracket ranges by code point, whatever the
--   collation. That the text is valid UTF-8 is PostgreSQL's own guarantee in a UTF8 database,
--   the encoding the store requires (docs/schema.md).
-- * The limits on the size of data and metadata are options of each store
--   (AppendLimits), not of the schema, so they are not constraints here.
-- * A plain ADD CONSTRAINT, not NOT VALID: the rows already stored are checked too, and the
--   migration fails (and is rolled back) when one breaks a rule. It scans annals.events once
--   under an ACCESS EXCLUSIVE lock.

ALTER TABLE annals.events
  ADD CONSTRAINT events_stream_id_check
    CHECK (octet_length(stream_id) BETWEEN 1 AND 512
           AND stream_id !~ '[\x01-\x1f\x7f-\x9f]'),
  ADD CONSTRAINT events_event_type_check
    CHECK (octet_length(event_type) BETWEEN 1 AND 256
           AND event_type !~ '[\x01-\x1f\x7f-\x9f]'),
  ADD CONSTRAINT events_event_id_check
    CHECK (event_id <> '00000000-0000-0000-0000-000000000000'),
  ADD CONSTRAINT events_metadata_check
    CHECK (jsonb_typeof(metadata) = 'object');
