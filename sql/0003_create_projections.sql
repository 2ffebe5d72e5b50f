-- 0003: projections: checkpoints with ownership leases, dead letters, rebuild requests and the
-- record of each read model's own table migrations (issue #4).
--
-- Decisions (see docs/schema.md, "Projection tables", and ../shared/ARCHITECTURE.md):
-- * A checkpoint is a Position: the pair (transaction id, global position) of the last event
--   a projection applied, in the read order of the global log (decision 5). It is stored as
--   the pair, not as text, so that lag can be computed in SQL against annals.events with the
--   same row comparison readers use; (0, 0) is the start of the log.
-- * Ownership is a lease in the projection's row: owner, expiry by the database clock (now()),
--   and a fencing token that grows with every takeover, also when the same owner name takes a
--   lapsed lease back (an old incarnation of it may still be running). No session advisory
--   locks: leases must work behind transaction poolers (the scale-out path).
-- * A read-model projection's writes and its checkpoint commit in one transaction. The
--   checkpoint write is one UPDATE that compares the fencing token and the previous
--   checkpoint (decision 7); a stale writer updates no row and rolls back everything.
-- * A dead letter keeps the whole event, so the owner can apply it again without the event
--   store, and so does an operator reading it.
-- * At most one open (requested or running) rebuild request per projection, enforced by a
--   partial unique index, so asking twice returns the same request.

CREATE TABLE annals.projections (
  name                text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,100}$'),
  -- The last applied event's (transaction_id, global_position); (0, 0) = start of the log.
  checkpoint_tx       xid8 NOT NULL DEFAULT '0',
  checkpoint_position bigint NOT NULL DEFAULT 0,
  -- The lease: NULL owner = nobody holds it (never taken, or released).
  owner               text,
  lease_expires_at    timestamptz,
  -- Grows with every takeover; a checkpoint write must carry the current value.
  fencing_token       bigint NOT NULL DEFAULT 0,
  -- What the owner last reported (see ProjectionReport).
  state               text NOT NULL DEFAULT 'starting',
  last_error          text,
  events_applied      bigint NOT NULL DEFAULT 0,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK ((owner IS NULL) = (lease_expires_at IS NULL))
);

CREATE TABLE annals.projection_dead_letters (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  projection      text NOT NULL REFERENCES annals.projections (name) ON DELETE CASCADE,
  -- The event, as read from annals.events.
  event_id        uuid NOT NULL,
  stream_id       text NOT NULL,
  stream_version  bigint NOT NULL,
  transaction_id  xid8 NOT NULL,
  global_position bigint NOT NULL,
  event_type      text NOT NULL,
  schema_version  integer NOT NULL,
  data            jsonb NOT NULL,
  metadata        jsonb NOT NULL,
  recorded_at     timestamptz NOT NULL,
  -- The error of the last attempt and how many attempts were made.
  error           text NOT NULL,
  attempts        integer NOT NULL CHECK (attempts >= 1),
  state           text NOT NULL DEFAULT 'parked'
                  CHECK (state IN ('parked', 'retry-requested', 'resolved', 'skipped')),
  parked_at       timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT projection_dead_letters_event_key UNIQUE (projection, event_id)
);

-- Listing by state (the CLI's default view: what waits for an operator).
CREATE INDEX projection_dead_letters_state_idx ON annals.projection_dead_letters (state, id);

CREATE TABLE annals.projection_rebuilds (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  projection        text NOT NULL REFERENCES annals.projections (name) ON DELETE CASCADE,
  state             text NOT NULL DEFAULT 'requested'
                    CHECK (state IN ('requested', 'running', 'done', 'failed')),
  -- The log head when the owner started, and the checkpoint it last reported (NULL = not yet).
  target_tx         xid8,
  target_position   bigint,
  progress_tx       xid8,
  progress_position bigint,
  message           text,
  requested_at      timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CHECK ((target_tx IS NULL) = (target_position IS NULL)),
  CHECK ((progress_tx IS NULL) = (progress_position IS NULL))
);

-- At most one open request per projection: a second request returns the open one.
CREATE UNIQUE INDEX projection_rebuilds_one_open_idx ON annals.projection_rebuilds (projection)
  WHERE state IN ('requested', 'running');

-- Migrations of read-model projections' own tables (ReadModelProjection::migrations()), applied
-- once per projection and name, in order, under pg_advisory_xact_lock so that two processes
-- preparing the same projection at once apply each migration once. No foreign key: forgetting
-- a projection's row must not make its tables' migrations run again.
CREATE TABLE annals.projection_migrations (
  projection text NOT NULL,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, name)
);
