#!/usr/bin/env bash
# kontor Salesforce sync benchmark: per backend (SQLite, PostgreSQL), against the fake
# Salesforce (tests/salesforce/fake): the initial import of 100,000 contacts, 10,000 accounts
# and 20,000 opportunities, and incremental rounds of 1,000 changes each way: seconds,
# records/s and Salesforce API calls per 1,000 records, with a baseline (the same rows read
# raw through the same query API by a plain client). See bench/README.md.
#
#   bash bench/salesforce.sh
#   SF_BENCH_CONTACTS=10000 SF_BENCH_ACCOUNTS=1000 SF_BENCH_OPPORTUNITIES=2000 BENCH_BACKENDS=sqlite bash bench/salesforce.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

CONTACTS=${SF_BENCH_CONTACTS:-100000}
ACCOUNTS=${SF_BENCH_ACCOUNTS:-10000}
OPPORTUNITIES=${SF_BENCH_OPPORTUNITIES:-20000}
CHANGES=${SF_BENCH_CHANGES:-1000}
REPEATS=${BENCH_REPEATS:-3}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
BACKENDS=${BACKENDS//,/ }
for v in CONTACTS ACCOUNTS OPPORTUNITIES CHANGES REPEATS; do
    [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} >= 1)) || { echo "salesforce bench: $v must be a whole number >= 1" >&2; exit 2; }
done
((CHANGES * REPEATS <= CONTACTS)) || { echo "salesforce bench: CHANGES x REPEATS must not exceed CONTACTS" >&2; exit 2; }

unset KONTOR_CONFIG KONTOR_DATA_DIR KONTOR_DATABASE_US KONTOR_DATABASE_EU KONTOR_DATABASE_DIRECTORY \
    KONTOR_LISTEN KONTOR_JOB_WORKERS
export KONTOR_LOG=${BENCH_KONTOR_LOG:-warn}
export KONTOR_API_LIMITS=off
exec 3>&2

WORK=
SERVER_PID=
FAKE_PID=
CHILD_PID=
stop_fake() { stop_pid "$FAKE_PID"; FAKE_PID=; }
on_cleanup() {
    stop_server
    stop_fake
    stop_pg_throwaway
}
set_cleanup_trap pid

ensure_apt_package curl curl
ensure_apt_package python3 python3
python3 -c 'import trustme' 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check -r "$ROOT/tests/salesforce/python/requirements.txt"
find_kontor missing
WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/kontor-salesforce-bench.XXXXXX")
chmod 711 "$WORK"
RESULTS=$WORK/results.jsonl
use_private_kontor

run_backend() {
    BACKEND=$1
    local data=$WORK/$BACKEND-data
    mkdir -p "$data"
    GARGS=(--data-dir "$data")
    if [[ $BACKEND == postgres ]]; then
        # shellcheck source=../scripts/pg-throwaway.sh
        source "$ROOT/scripts/pg-throwaway.sh"
        local url
        url=$(pg_throwaway_createdb kontor_salesforce) || die "createdb failed"
        GARGS+=(--database-us "$url" --database-eu "$url" --database-directory "$url")
    fi
    python3 "$ROOT/tests/salesforce/fake/server.py" --host 127.0.0.1 >"$WORK/fake.out" 2>"$WORK/fake.err" 3>&- &
    FAKE_PID=$!
    for _ in $(seq 300); do [[ -s $WORK/fake.out ]] && break; sleep 0.1; done
    local fake
    fake=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$WORK/fake.out") ||
        die "the fake Salesforce did not start: $(cat "$WORK/fake.err")"
    log "=== $BACKEND: loading the fake at $fake ==="
    python3 "$BENCH_DIR/salesforce_bench.py" load --fake "$fake" --accounts "$ACCOUNTS" \
        --contacts "$CONTACTS" --opportunities "$OPPORTUNITIES" >&3 || die "loading the fake failed"
    local account token password
    account=$("$KONTOR" "${GARGS[@]}" admin account create --name bench --region us --tier enterprise) || die "account create failed"
    token=$("$KONTOR" "${GARGS[@]}" admin token create --account "$account" --name bench) || die "token create failed"
    password=$("$KONTOR" "${GARGS[@]}" admin user create --account "$account" --email admin@bench.test \
        --role admin --generate-password | sed -n 2p) || die "user create failed"
    KONTOR_SALESFORCE_CLIENT_ID=kontor-test-client KONTOR_SALESFORCE_CLIENT_SECRET=kontor-test-secret \
        KONTOR_SALESFORCE_LOGIN_URL=$fake KONTOR_SALESFORCE_INTERVAL_SECONDS=86400 \
        start_server "$WORK/$BACKEND-server.out" "$WORK/$BACKEND-server.err" "${GARGS[@]}"
    log "server pid $SERVER_PID on port $PORT; load average $(loadavg)"
    run_child python3 "$BENCH_DIR/salesforce_bench.py" run --fake "$fake" --port "$PORT" --token "$token" \
        --email admin@bench.test --password "$password" --backend "$BACKEND" --results "$RESULTS" \
        --accounts "$ACCOUNTS" --contacts "$CONTACTS" --opportunities "$OPPORTUNITIES" \
        --changes "$CHANGES" --repeats "$REPEATS" >&3 ||
        { tail -20 "$WORK/$BACKEND-server.err" >&2; die "the run on $BACKEND failed"; }
    stop_server
    stop_fake
    [[ $BACKEND == postgres ]] && stop_pg_throwaway
    rm -rf "$data"
}

log "kontor Salesforce sync benchmark: $CONTACTS contacts, $ACCOUNTS accounts, $OPPORTUNITIES opportunities; $CHANGES changes x $REPEATS; backends: $BACKENDS; $(nproc) CPUs"
for b in $BACKENDS; do
    run_backend "$b"
done
python3 "$BENCH_DIR/salesforce_bench.py" summary --results "$RESULTS"
