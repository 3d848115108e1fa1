#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for tests and benchmarks.
#   source scripts/pg-throwaway.sh   -> exports PG_URL, PG_DIR, PG_PORT; call pg_throwaway_stop to stop
# Installs Debian's postgresql package when no server binaries are present.
# The caller's shell options are restored at the end (this file is sourced).
_pg_caller_opts="set +euo pipefail"
case $- in *e*) _pg_caller_opts="$_pg_caller_opts; set -e" ;; esac
case $- in *u*) _pg_caller_opts="$_pg_caller_opts; set -u" ;; esac
if [[ -o pipefail ]]; then _pg_caller_opts="$_pg_caller_opts; set -o pipefail"; fi
set -euo pipefail

pg_bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

if [ -z "$(pg_bin_dir)" ]; then
    echo "installing postgresql (apt-get)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql openssl >&2
elif ! command -v openssl >/dev/null; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >&2
fi
PG_BIN="$(pg_bin_dir)"

PG_DIR="$(mktemp -d /tmp/kontor-pg.XXXXXX)"
PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RUN_AS=()
if [ "$(id -u)" = "0" ]; then
    chown postgres:postgres "$PG_DIR"
    RUN_AS=(runuser -u postgres --)
fi
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U kontor --auth=trust -E UTF8 >/dev/null
# TLS on, with a certificate for 127.0.0.1 signed by a throwaway CA: clients that ask for TLS
# (`sslmode=require`, or `verify-full` with `sslrootcert=$PG_TLS_ROOT`) get it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kontor test CA" \
    -keyout "$PG_DIR/root.key" -out "$PG_DIR/root.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$PG_DIR/data/server.key" -out "$PG_DIR/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$PG_DIR/server.ext"
openssl x509 -req -in "$PG_DIR/server.csr" -CA "$PG_DIR/root.crt" -CAkey "$PG_DIR/root.key" \
    -CAcreateserial -days 2 -extfile "$PG_DIR/server.ext" -out "$PG_DIR/data/server.crt" 2>/dev/null
chmod 0600 "$PG_DIR/data/server.key"
if [ "$(id -u)" = "0" ]; then chown -R postgres:postgres "$PG_DIR/data"; fi
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DIR -c fsync=off -c synchronous_commit=off -c max_connections=200 -c ssl=on" start >/dev/null
PG_URL="postgres://kontor@127.0.0.1:$PG_PORT/postgres"
PG_TLS_ROOT="$PG_DIR/root.crt"
export PG_DIR PG_PORT PG_URL PG_BIN PG_TLS_ROOT

pg_throwaway_createdb() {
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U kontor "$1"
    echo "postgres://kontor@127.0.0.1:$PG_PORT/$1"
}

pg_throwaway_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
        "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
eval "$_pg_caller_opts"
unset _pg_caller_opts
