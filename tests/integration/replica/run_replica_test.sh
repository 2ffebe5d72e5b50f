#!/usr/bin/env bash
# tests/integration/replica/run_replica_test.sh WORKDIR TEST_BINARY [GTEST_ARGS...]
#
# ctest's `replica_test` (labels replica, pg): starts a private PostgreSQL cluster of its own
# (scripts/pg start, data in WORKDIR/pg) and a hot standby streaming from it (scripts/pg
# replica start, data in WORKDIR/replica), runs TEST_BINARY (standby_test.cpp) with
# ANNALS_DATABASE_URL set to the primary and ANNALS_STANDBY_PORT to the standby's port, and
# stops both on exit, also on failure or interruption. A cluster of its own, not the shared one
# of scripts/test: the standby then replays only this test's writes, and no other test's open
# transaction holds back the horizon the tests assert on. Nothing to install beyond the
# PostgreSQL server that scripts/bootstrap installs.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 WORKDIR TEST_BINARY [GTEST_ARGS...]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
mkdir -p "$1"
work=$(cd "$1" && pwd)
binary=$2
shift 2

export ANNALS_PG_DIR=$work/pg
export ANNALS_PG_REPLICA_DIR=$work/replica
pg() { env -u ANNALS_DATABASE_URL "$root/scripts/pg" "$@"; }

# Servers left running by an interrupted run are stopped before their folders are replaced.
pg replica stop >/dev/null 2>&1 || true
pg stop >/dev/null 2>&1 || true
rm -rf "$work/pg" "$work/replica"

cleanup() {
  local rc=$?
  pg replica stop >/dev/null 2>&1 || { echo "run_replica_test: could not stop the standby" >&2; rc=1; }
  pg stop >/dev/null 2>&1 || { echo "run_replica_test: could not stop the primary" >&2; rc=1; }
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pg start
pg replica start

ANNALS_DATABASE_URL=$(pg url) ANNALS_STANDBY_PORT=$(cat "$work/replica/port") "$binary" "$@"
