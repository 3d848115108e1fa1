#!/usr/bin/env bash
# kontor webhook benchmark: per backend (SQLite, PostgreSQL), what an app subscribed to
# contact.creation and contact.propertyChange (email) costs the writes, how fast and how late
# its events reach a receiver while contacts are loaded, how fast a backlog is sent, and a
# baseline: the same events POSTed straight to the same receiver by a Python client with the
# same concurrency. Prints figures and ratios (medians over repeats); see bench/README.md.
#
#   bash bench/webhooks.sh                                         # 20,000 contacts, both backends
#   BENCH_CONTACTS=5000 BENCH_BACKENDS=sqlite bash bench/webhooks.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- settings
CONTACTS=${BENCH_CONTACTS:-20000}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
BACKENDS=${BACKENDS//,/ }
REPEATS=${BENCH_REPEATS:-3}
LOAD_CONNECTIONS=${BENCH_LOAD_CONNECTIONS:-4}
CONCURRENCY=${BENCH_WEBHOOKS_CONCURRENCY:-10}
MAX_WAIT=${BENCH_WEBHOOKS_MAX_WAIT:-600}
STALL=${BENCH_WEBHOOKS_STALL:-90}
OUT_DIR=${BENCH_OUT:-}

die_early() { echo "webhooks bench: $*" >&2; exit 2; }
for v in CONTACTS REPEATS LOAD_CONNECTIONS CONCURRENCY MAX_WAIT STALL; do
    [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} >= 1)) || die_early "$v must be a whole number >= 1, got '${!v}'"
done
((CONCURRENCY <= 100)) || die_early "BENCH_WEBHOOKS_CONCURRENCY must be 1..100 (HubSpot's maxConcurrentRequests)"
[[ -n ${BACKENDS// /} ]] || die_early "BENCH_BACKENDS is empty"
for b in $BACKENDS; do
    [[ $b == sqlite || $b == postgres ]] || die_early "unknown backend '$b' (sqlite, postgres)"
done

# The benchmark chooses its own databases, address and webhook policy: ignore the caller's.
unset KONTOR_CONFIG KONTOR_DATA_DIR KONTOR_DATABASE_US KONTOR_DATABASE_EU \
    KONTOR_DATABASE_DIRECTORY KONTOR_LISTEN KONTOR_JOB_WORKERS \
    KONTOR_WEBHOOKS_RETRY_BASE_MS KONTOR_WEBHOOKS_TIMEOUT_SECONDS KONTOR_WEBHOOKS_CLAIM_SECONDS
export KONTOR_LOG=${BENCH_KONTOR_LOG:-warn}
# The benchmark measures the server, not the API's rate limits: none is met.
export KONTOR_API_LIMITS=off
# The receiver listens on 127.0.0.1, which targets may not name unless the operator allows it.
export KONTOR_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1

# Messages go to the original stderr (fd 3), also from inside redirected functions.
exec 3>&2

# ---------------------------------------------------------------- cleanup
WORK=
SERVER_PID=
RECEIVER_PID=
CHILD_PID=
FAILURES=0

stop_receiver() { stop_pid "$RECEIVER_PID"; RECEIVER_PID=; }

# The trap (bench/lib.sh) stops the child (stop_pid), then this, then deletes WORK.
on_cleanup() {
    stop_server
    stop_receiver
    stop_pg_throwaway
}
set_cleanup_trap pid

# ---------------------------------------------------------------- tools and binary
ensure_apt_package curl curl
ensure_apt_package python3 python3

find_kontor missing

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/kontor-webhooks-bench.XXXXXX")
chmod 711 "$WORK"
RESULTS=$WORK/results
mkdir -p "$RESULTS"
use_private_kontor

# ---------------------------------------------------------------- one backend
start_receiver() {
    local dir=$WORK/$BACKEND-received
    mkdir -p "$dir"
    rm -f "$WORK/receiver.port"
    python3 "$BENCH_DIR/webhooks_bench.py" receive --port-file "$WORK/receiver.port" --dir "$dir" \
        >"$WORK/$BACKEND-receiver.log" 2>&1 3>&- &
    RECEIVER_PID=$!
    for _ in $(seq 100); do
        [[ -s $WORK/receiver.port ]] && break
        kill -0 "$RECEIVER_PID" 2>/dev/null || { cat "$WORK/$BACKEND-receiver.log" >&2; die "the receiver exited"; }
        sleep 0.1
    done
    [[ -s $WORK/receiver.port ]] || die "the receiver did not start within 10 s"
    RECEIVER_PORT=$(cat "$WORK/receiver.port")
    RECEIVED=$dir
}

new_token() { # name: a fresh account (us, enterprise) and an operator's token of it
    local account token
    account=$("$KONTOR" "${GARGS[@]}" admin account create --name "$1" --region us --tier enterprise) ||
        die "account create failed"
    token=$("$KONTOR" "${GARGS[@]}" admin token create --account "$account" --name bench) || die "token create failed"
    [[ -n $token ]] || die "token create printed nothing"
    echo "$token"
}

run_backend() {
    BACKEND=$1
    local data=$WORK/$BACKEND-data pidfile=
    mkdir -p "$data"
    GARGS=(--data-dir "$data")
    log "=== $BACKEND: $REPEATS repeats of 3 loads of $CONTACTS contacts ==="
    if [[ $BACKEND == postgres ]]; then
        # shellcheck source=../scripts/pg-throwaway.sh
        source "$ROOT/scripts/pg-throwaway.sh"
        local url
        url=$(pg_throwaway_createdb kontor_webhooks) || die "createdb failed"
        GARGS+=(--database-us "$url" --database-eu "$url" --database-directory "$url")
        pidfile=$PG_DIR/data/postmaster.pid
        log "postgres: $("$PG_BIN/postgres" --version) at 127.0.0.1:$PG_PORT (scripts/pg-throwaway.sh: fsync=off, synchronous_commit=off)"
    fi
    # Three fresh accounts per repeat (no app; an app with a target; an app without one yet).
    local tokens=() r t1 t2 t3
    for r in $(seq "$REPEATS"); do
        t1=$(new_token "plain-$r")
        t2=$(new_token "hooked-$r")
        t3=$(new_token "backlog-$r")
        tokens+=("$t1,$t2,$t3")
    done
    WARMUP_TOKEN=$(new_token warmup)
    start_receiver
    start_server "$WORK/$BACKEND-server.out" "$WORK/$BACKEND-server.err" "${GARGS[@]}"
    log "server pid $SERVER_PID on port $PORT, receiver pid $RECEIVER_PID on port $RECEIVER_PORT"
    local rc
    for r in $(seq "$REPEATS"); do
        log "$BACKEND repeat $r/$REPEATS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
        rc=0
        run_child python3 "$BENCH_DIR/webhooks_bench.py" repeat --port "$PORT" --tokens "${tokens[r - 1]}" \
            --receiver-port "$RECEIVER_PORT" --receiver-pid "$RECEIVER_PID" --server-pid "$SERVER_PID" \
            --pg-pidfile "$pidfile" --dir "$RECEIVED" --backend "$BACKEND" --repeat "$r" \
            --contacts "$CONTACTS" --connections "$LOAD_CONNECTIONS" --concurrency "$CONCURRENCY" \
            --max-wait "$MAX_WAIT" --stall-seconds "$STALL" --results "$RESULTS/$BACKEND.jsonl" \
            --warmup-token "$( ((r == 1)) && echo "$WARMUP_TOKEN")" || rc=$?
        case $rc in
            0) ;;
            3) FAILURES=$((FAILURES + 1)) ;; # figures recorded, but events were missing
            *) tail -20 "$WORK/$BACKEND-server.err" >&2; die "repeat $r on $BACKEND could not run (exit $rc)" ;;
        esac
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited: $(tail -5 "$WORK/$BACKEND-server.err")"
    done
    grep -iE 'error|panic' "$WORK/$BACKEND-server.err" | head -5 >&3 || true
    stop_server
    stop_receiver
    [[ $BACKEND == postgres ]] && stop_pg_throwaway
    python3 "$BENCH_DIR/webhooks_summary.py" "$RESULTS/$BACKEND.jsonl"
    if [[ -n $OUT_DIR ]]; then
        mkdir -p "$OUT_DIR"
        cp "$RESULTS/$BACKEND.jsonl" "$WORK/$BACKEND-server.err" "$OUT_DIR/" 2>/dev/null || true
        cp -r "$RECEIVED" "$OUT_DIR/" 2>/dev/null || true
    fi
    rm -rf "$data" "$RECEIVED"
}

log "kontor webhook benchmark: $CONTACTS contacts per load, $REPEATS repeats, backends: $BACKENDS; $(nproc) CPUs"
log "loads: batches of 100 over $LOAD_CONNECTIONS connections; webhooks: maxConcurrentRequests $CONCURRENCY; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for b in $BACKENDS; do
    run_backend "$b"
done
files=()
for b in $BACKENDS; do files+=("$RESULTS/$b.jsonl"); done
if ((${#files[@]} > 1)); then
    echo
    python3 "$BENCH_DIR/webhooks_summary.py" "${files[@]}"
fi
if ((FAILURES > 0)); then
    log "ERROR: events were missing, unexpected or wrongly signed in $FAILURES repeat(s): see CHECK and BACKLOG above"
    exit 1
fi
