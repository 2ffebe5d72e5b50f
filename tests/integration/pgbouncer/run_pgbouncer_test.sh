#!/usr/bin/env bash
# tests/integration/pgbouncer/run_pgbouncer_test.sh WORKDIR TEST_BINARY [GTEST_ARGS...]
#
# ctest's `pgbouncer_test` (labels pgbouncer, pg): starts a private PgBouncer in transaction
# pooling mode (config in WORKDIR, listening on 127.0.0.1 on a free port) in front of the
# server of ANNALS_DATABASE_URL (every database, trust authentication for the user annals,
# which is how scripts/pg's cluster authenticates), runs TEST_BINARY (pgbouncer_test.cpp) with
# ANNALS_PGBOUNCER_PORT set to that port, and stops PgBouncer on exit, also on failure or
# interruption. PgBouncer refuses to run as root: as root it runs as annals-pg (the user
# scripts/pg creates). Needs the `pgbouncer` package (scripts/bootstrap).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 WORKDIR TEST_BINARY [GTEST_ARGS...]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
mkdir -p "$1"
work=$(cd "$1" && pwd)
binary=$2
shift 2

die() { echo "run_pgbouncer_test: $*" >&2; exit 1; }
command -v pgbouncer >/dev/null || die "pgbouncer not found (run scripts/bootstrap)"
url=$("$root/scripts/pg" url)
psql_bin=$(ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | head -1)
[ -n "$psql_bin" ] || psql_bin=psql
server_port=$("$psql_bin" "$url" -tAc "SHOW port") || die "cannot reach the server at $url"

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    id annals-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin annals-pg
    runuser -u annals-pg -- "$@"
  else
    "$@"
  fi
}

stop_bouncer() {
  local pid
  if [ -f "$work/pgbouncer.pid" ]; then
    pid=$(cat "$work/pgbouncer.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    rm -f "$work/pgbouncer.pid"
  fi
}
stop_bouncer  # one left running by an interrupted run

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/userlist.txt" <<USERS
"annals" ""
USERS
cat >"$work/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$server_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $work/userlist.txt
admin_users = annals
pool_mode = transaction
max_client_conn = 200
default_pool_size = 8
ignore_startup_parameters = extra_float_digits,options
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
INI
if [ "$(id -u)" -eq 0 ]; then
  as_owner true
  chown -R annals-pg "$work"
  p=$work
  while [ "$p" != "/" ]; do chmod o+x "$p" 2>/dev/null || true; p=$(dirname "$p"); done
fi

cleanup() {
  local rc=$?
  stop_bouncer
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -f "$work/pgbouncer.log"
as_owner pgbouncer -d "$work/pgbouncer.ini" || { cat "$work/pgbouncer.log" >&2 || true; die "pgbouncer did not start"; }
ready=""
for _ in $(seq 1 100); do
  if "$psql_bin" -h 127.0.0.1 -p "$port" -U annals -d postgres -tAc "SELECT 1" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || { cat "$work/pgbouncer.log" >&2 || true; die "pgbouncer does not accept connections on port $port"; }
echo "run_pgbouncer_test: pgbouncer (transaction pooling) on 127.0.0.1:$port in front of port $server_port"

ANNALS_PGBOUNCER_PORT=$port "$binary" "$@"
