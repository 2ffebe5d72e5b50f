-- 0008: anchors the store produced (`annals anchor --record`), so that verifying a newer
-- anchor can resume from an older one instead of re-hashing the log from its start
-- (docs/auditing.md, "Anchors"). An anchor commits to the settled global log up to its
-- position: d0 = 32 zero bytes, d = sha256(d || be64(transaction_id) || be64(global_position)
-- || hash) for each event in log order. The rows only let verify recognise an anchor an
-- auditor hands back; the proof is the auditor's own copy, kept outside the database.

CREATE TABLE annals.anchors (
  transaction_id  xid8 NOT NULL,
  global_position bigint NOT NULL,
  events          bigint NOT NULL CHECK (events >= 0),
  digest          bytea NOT NULL CHECK (octet_length(digest) = 32),
  taken_at        timestamptz NOT NULL,
  CONSTRAINT anchors_pkey PRIMARY KEY (transaction_id, global_position, digest)
);
