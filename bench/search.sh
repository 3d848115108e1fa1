#!/usr/bin/env bash
# kontor benchmark: indexed search. Per backend, contacts are loaded in steps up to each size;
# after each step the script waits for the search index to catch up with the change log, then
# times GET by id and each search shape on one keep-alive connection (search_bench.py). Prints
# per size each shape's p50 and p99 as multiples of GET by id's, p50 at the largest size over
# p50 at the smallest, the load rate (beside a baseline binary's on the same data when one is
# given), how long the index took to catch up, and the database's size per contact.
# See bench/README.md, "Search benchmark".
#
#   bash bench/search.sh                                   # 100,000 and 1,000,000; SQLite, PostgreSQL
#   SEARCH_BENCH_SIZES="20000 100000" SEARCH_BENCH_BACKENDS=sqlite bash bench/search.sh   # quick
#   SEARCH_BENCH_BASELINE_BIN=/path/to/old/kontor bash bench/search.sh   # also the old load rate
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"
SIZES=${SEARCH_BENCH_SIZES:-"100000 1000000"}
BACKENDS=${SEARCH_BENCH_BACKENDS:-"sqlite postgres"}
REQUESTS=${SEARCH_BENCH_REQUESTS:-300}
BASELINE=${SEARCH_BENCH_BASELINE_BIN:-}
CATCH_UP_MAX=${SEARCH_BENCH_CATCH_UP_SECONDS:-3600}
for b in $BACKENDS; do
    [[ $b == sqlite || $b == postgres ]] || { echo "SEARCH_BENCH_BACKENDS: sqlite, postgres" >&2; exit 2; }
done

unset KONTOR_CONFIG KONTOR_DATA_DIR KONTOR_DATABASE_US KONTOR_DATABASE_EU KONTOR_DATABASE_DIRECTORY KONTOR_LISTEN
export KONTOR_LOG=${BENCH_KONTOR_LOG:-warn}
# The benchmark measures the server, not the API's rate limits: none is met.
export KONTOR_API_LIMITS=off
exec 3>&2

find_kontor missing
ensure_apt_package sqlite3 sqlite3
WORK=$(mktemp -d /tmp/kontor-search-bench.XXXXXX)
SERVER_PID=
on_cleanup() {
    stop_server
    stop_pg_throwaway
}
set_cleanup_trap term
use_private_kontor
NEW=$KONTOR
if [[ -n $BASELINE ]]; then
    cp "$BASELINE" "$WORK/baseline"
    log "baseline binary: $BASELINE ($("$WORK/baseline" --version))"
fi
if [[ $BACKENDS == *postgres* ]]; then
    # shellcheck source=../scripts/pg-throwaway.sh
    source "$ROOT/scripts/pg-throwaway.sh"
fi
OUT=$WORK/results.jsonl
: >"$OUT"
emit() { echo "$1" >>"$OUT"; }

# Sets up a fresh database for `$1` (a name) on the backend; exports KONTOR_* for it.
fresh_db() {
    local data=$WORK/data-$BACKEND-$1
    mkdir -p "$data"
    export KONTOR_DATA_DIR=$data
    if [[ $BACKEND == postgres ]]; then
        export KONTOR_DATABASE_US KONTOR_DATABASE_EU KONTOR_DATABASE_DIRECTORY
        KONTOR_DATABASE_US=$(pg_throwaway_createdb "${1//-/_}")
        KONTOR_DATABASE_EU=$KONTOR_DATABASE_US
        KONTOR_DATABASE_DIRECTORY=$KONTOR_DATABASE_US
    else
        unset KONTOR_DATABASE_US KONTOR_DATABASE_EU KONTOR_DATABASE_DIRECTORY
    fi
}

# SQL on the cell's database.
db_q() {
    if [[ $BACKEND == postgres ]]; then
        "$PG_BIN/psql" -X -q -At "$KONTOR_DATABASE_US" -c "$1"
    else
        sqlite3 "$KONTOR_DATA_DIR/regions/us/kontor.db" "$1"
    fi
}

# How many change-log entries the account's index is behind.
index_lag() {
    db_q "SELECT c.value - COALESCE((SELECT seq FROM index_cursors i WHERE i.account_id = c.account_id), 0) FROM counters c WHERE c.account_id = $ACCOUNT AND c.name = 'change'"
}

db_bytes() {
    if [[ $BACKEND == postgres ]]; then
        db_q "SELECT pg_database_size(current_database())"
    else
        du -cb "$KONTOR_DATA_DIR"/regions/us/kontor.db* | tail -1 | cut -f1
    fi
}

# Starts `$KONTOR` on the current database with a new account; sets ACCOUNT, TOKEN, PORT.
start_with_account() {
    ACCOUNT=$("$KONTOR" admin account create --name "bench" --region us --tier enterprise)
    TOKEN=$("$KONTOR" admin token create --account "$ACCOUNT" --name bench)
    start_server "$WORK/serve.out" "$WORK/serve.log"
}

# Loads contacts from..to-1; prints the load's records/s.
load() {
    python3 "$BENCH_DIR/load.py" --port "$PORT" --token "$TOKEN" --start "$1" --count "$(($2 - $1))" \
        >"$WORK/load.txt" 2>>"$WORK/load.log" || { cat "$WORK/load.log" >&2; die "the load failed"; }
    sed -n 's/^load_records_per_s=//p' "$WORK/load.txt"
}

for BACKEND in $BACKENDS; do
    first=${SIZES%% *}
    if [[ -n $BASELINE ]]; then
        fresh_db baseline
        KONTOR=$WORK/baseline
        start_with_account
        log "$BACKEND: baseline binary, loading $first contacts"
        rate=$(load 0 "$first")
        log "$BACKEND: baseline load $rate records/s"
        emit "{\"backend\": \"$BACKEND\", \"baseline_load_per_s\": $rate, \"contacts\": $first}"
        stop_server
        KONTOR=$NEW
    fi
    fresh_db new
    start_with_account
    loaded=0
    for size in $SIZES; do
        log "$BACKEND: loading contacts $loaded..$size"
        rate=$(load "$loaded" "$size")
        loaded=$size
        t0=$(date +%s%3N)
        lag=$(index_lag)
        log "$BACKEND: $size contacts at $rate records/s; the index is $lag entries behind"
        while (($(index_lag) > 0)); do
            (($(date +%s%3N) - t0 < CATCH_UP_MAX * 1000)) || die "the index did not catch up in $CATCH_UP_MAX s"
            sleep 1
        done
        catch_up=$(($(date +%s%3N) - t0))
        [[ $BACKEND == postgres ]] && db_q "VACUUM ANALYZE" >/dev/null
        bytes=$(db_bytes)
        log "$BACKEND: index level after $catch_up ms; $((bytes / size)) bytes per contact; timing searches"
        emit "{\"backend\": \"$BACKEND\", \"contacts\": $size, \"load_per_s\": $rate, \"lag_after_load\": $lag, \"catch_up_ms\": $catch_up, \"db_bytes\": $bytes}"
        python3 "$BENCH_DIR/search_bench.py" --port "$PORT" --token "$TOKEN" --count "$size" \
            --requests "$REQUESTS" | while read -r line; do
            emit "{\"backend\": \"$BACKEND\", \"contacts\": $size, \"timing\": $line}"
        done
    done
    stop_server
done
python3 "$BENCH_DIR/search_summary.py" "$OUT"
[[ -n ${BENCH_OUT:-} ]] && mkdir -p "$BENCH_OUT" && cp "$OUT" "$BENCH_OUT/search.jsonl"
exit 0
