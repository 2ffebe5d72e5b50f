-- 0011: a lease names the database session of its owner, so that a dead owner's lease can be
-- taken over as soon as its session ends instead of when the lease expires.
--
-- Decisions (see docs/projections.md, "Ownership and takeover", and docs/operations.md,
-- "Takeover"):
-- * Each PostgreSQL projection store keeps one dedicated "presence" connection that holds a
--   session-level advisory lock on a random 64-bit key (pg_try_advisory_lock(bigint)). The
--   lease row records that key in owner_session. A session-level lock is released by the
--   server when the session ends, however it ends (the process was killed, the connection was
--   terminated, the server noticed a lost peer through TCP keepalives).
-- * try_acquire treats a lease as free when it expired, was released, or records a key whose
--   lock nobody holds any more in this database (pg_locks, which every role may read). The
--   check runs in the same UPDATE that takes the row, under its row lock. Every takeover still
--   increases the fencing token, so a live process whose presence connection was cut is fenced
--   exactly like a paused one.
-- * NULL owner_session = no session to watch (a store behind a transaction pooler, a presence
--   connection that is down, an older client): only the expiry applies, as before 0011.
-- * The column is covered by the writer role's table-level UPDATE grant (0005); no new grant.

ALTER TABLE annals.projections ADD COLUMN owner_session bigint;

