#!/usr/bin/env bash
# The server-side cost of an append on a partitioned log beside a plain one (docs/scaling.md,
# "Partitioned log"): pgbench, one client, the store's own statements, on stores of 100,000
# events in 1,000 streams: plain, 10 partitions (10,000 positions each), 100 partitions (1,000).
#
#   bench/partitioned_append_cost.sh URL ANNALS [SECONDS]
#
# URL: any database of the server (databases annals_part_cost_* are created beside it and
# dropped at the end); ANNALS: the annals CLI (build/<preset>/tools/annals/annals).
# Figures: transactions per second of
#   single: the single-event statement of the store (sql.hpp kAppendOne), a random stream;
#   batch:  annals.append_events with 10 events to one random stream.
# On a partitioned log with stream heads (sql/0019) the statements are the ones the store sends
# there (kAppendOnePartitioned, annals.append_events_partitioned); with an annals built before
# 0019 the same runs measure the statements of then (the "before" figures of docs/scaling.md).
set -euo pipefail
url=${1:?usage: partitioned_append_cost.sh URL ANNALS [SECONDS]}
annals=${2:?usage: partitioned_append_cost.sh URL ANNALS [SECONDS]}
seconds=${3:-5}
base=${url%/*}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/single.sql" <<'SQL'
\set s random(1, 1000)
WITH id AS (SELECT gen_random_uuid() AS v) INSERT INTO annals.events AS ev (stream_id, stream_version, event_id, event_type, schema_version, data, metadata) SELECT 'acct-' || :s, -1, id.v, 'Deposited', 1, '{"amount": 1}', '{}' FROM id WHERE NOT EXISTS (SELECT 1 FROM annals.events e WHERE e.event_id = id.v) RETURNING ev.transaction_id::text, ev.global_position, ev.stream_version;
SQL
cat > "$work/batch.sql" <<'SQL'
\set s random(1, 1000)
SELECT count(*) FROM annals.append_events(ARRAY['acct-' || :s], ARRAY[-1]::bigint[], ARRAY[10], ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 10)), array_fill('Deposited'::text, ARRAY[10]), array_fill(1, ARRAY[10]), array_fill('{"amount": 1}'::jsonb, ARRAY[10]), array_fill('{}'::jsonb, ARRAY[10]));
SQL
# The partitioned log's statements (sql/0019): no NOT EXISTS, heads in annals.stream_heads.
cat > "$work/single_heads.sql" <<'SQL'
\set s random(1, 1000)
INSERT INTO annals.events AS ev (stream_id, stream_version, event_id, event_type, schema_version, data, metadata) VALUES ('acct-' || :s, -1, gen_random_uuid(), 'Deposited', 1, '{"amount": 1}', '{}') RETURNING ev.transaction_id::text, ev.global_position, ev.stream_version;
SQL
cat > "$work/batch_heads.sql" <<'SQL'
\set s random(1, 1000)
SELECT count(*) FROM annals.append_events_partitioned(ARRAY['acct-' || :s], ARRAY[-1]::bigint[], ARRAY[10], ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 10)), array_fill('Deposited'::text, ARRAY[10]), array_fill(1, ARRAY[10]), array_fill('{"amount": 1}'::jsonb, ARRAY[10]), array_fill('{}'::jsonb, ARRAY[10]));
SQL

run() {  # name, migrate flags...
  local name=$1; shift
  local db="annals_part_cost_$name"
  psql -qX "$url" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
  "$annals" --db "$base/$db" migrate "$@" >/dev/null
  psql -qX "$base/$db" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
UPDATE annals.log_partitioning SET ahead = 120;
SELECT annals.ensure_log_partitions();
DO $$
BEGIN
  FOR s IN 1 .. 1000 LOOP
    PERFORM count(*) FROM annals.append_events(ARRAY['acct-' || s], ARRAY[-1]::bigint[],
      ARRAY[100], ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 100)),
      array_fill('Deposited'::text, ARRAY[100]), array_fill(1, ARRAY[100]),
      array_fill('{"amount": 1}'::jsonb, ARRAY[100]), array_fill('{}'::jsonb, ARRAY[100]),
      false);
  END LOOP;
END $$;
VACUUM ANALYZE;
SQL
  local parts suffix=""
  parts=$(psql -qXtA "$base/$db" -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'annals.events'::regclass")
  if [ "$(psql -qXtA "$base/$db" -c "SELECT to_regclass('annals.stream_heads') IS NOT NULL")" = t ]; then
    suffix=_heads
  fi
  for script in single batch; do
    local tps
    tps=$(pgbench -n -c 1 -T "$seconds" -f "$work/$script$suffix.sql" "$base/$db" 2>/dev/null |
            sed -n 's/^tps = \([0-9.]*\).*/\1/p')
    echo "$name partitions=$parts $script tps=$tps us_per_call=$(awk -v t="$tps" 'BEGIN{printf "%.0f", 1e6/t}')"
  done
  psql -qX "$url" -c "DROP DATABASE $db" >/dev/null
}

run plain
run p1 --partitioned-log --partition-size 1000000
run p10 --partitioned-log --partition-size 10000
run p100 --partitioned-log --partition-size 1000
