#!/usr/bin/env bash
# tests/integration/tls/run_tls_test.sh WORKDIR TEST_BINARY [GTEST_ARGS...]
#
# ctest's `tls_test` (labels tls, pg): makes certificates with openssl, starts a private
# PostgreSQL cluster of its own that serves TLS only (scripts/pg start --tls, on a free port,
# data in WORKDIR/pg), runs TEST_BINARY (tls_test.cpp) against it and stops the cluster on
# exit, also on failure or interruption. The cluster of scripts/test is not touched, and
# ANNALS_DATABASE_URL is ignored.
#
# WORKDIR/certs, made anew on every run (EC P-256 keys, valid for 2 days):
#   ca.crt, ca.key              the CA the tests trust (sslrootcert)
#   server.crt, server.key      signed by it; CN=localhost, subjectAltName DNS:localhost,
#                               IP:127.0.0.1 (verify-full checks the host name against these)
#   other-ca.crt, other-ca.key  an unrelated CA: the "wrong CA" of the tests
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 WORKDIR TEST_BINARY [GTEST_ARGS...]" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
mkdir -p "$1"
work=$(cd "$1" && pwd)
binary=$2
shift 2

export ANNALS_PG_DIR=$work/pg
pg() { env -u ANNALS_DATABASE_URL "$root/scripts/pg" "$@"; }

say() { echo "run_tls_test: $*"; }

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }

# A self-signed CA: $1 file prefix, $2 common name.
make_ca() {
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days 2 -set_serial 1 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$1.crt"
}

make_certs() {
  local dir=$1
  make_ca "$dir/ca" "annals TLS test CA"
  make_ca "$dir/other-ca" "annals TLS test unrelated CA"
  key "$dir/server.key"
  openssl req -new -key "$dir/server.key" -subj "/CN=localhost" -out "$dir/server.csr"
  cat >"$dir/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial 2 \
    -days 2 -sha256 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
  openssl verify -CAfile "$dir/ca.crt" "$dir/server.crt" >/dev/null
}

# A cluster left running by an interrupted run is stopped before its folder is replaced.
pg stop >/dev/null 2>&1 || true
rm -rf "$work/pg" "$work/certs"
mkdir -p "$work/certs"

cleanup() {
  local rc=$?
  pg stop >/dev/null 2>&1 || { echo "run_tls_test: could not stop the TLS cluster in $work/pg" >&2; rc=1; }
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

make_certs "$work/certs"
say "certificates in $work/certs"
pg start --tls "$work/certs"

ANNALS_TLS_PORT=$(cat "$work/pg/port") ANNALS_TLS_CERTS=$work/certs \
  env -u ANNALS_DATABASE_URL "$binary" "$@"
