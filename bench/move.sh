#!/usr/bin/env bash
# kontor benchmark: data moves between regions. For each size, an account of N contacts, N/10
# companies and N contact-to-company associations is loaded, a client writes to it 100 times a
# second, and the account is moved back and forth between the two regions' cells with
# `kontor migration run`. Prints, per size: the freeze as the client saw it (first 477 to first
# success after it; p50 and max), the freeze the server recorded, the copy's rows/s against
# the backup export's on the same data, the move's time and the mover's peak memory; and the
# ratio of the freezes between the largest and the smallest size. See bench/README.md.
#
#   bash bench/move.sh                                            # 100,000 and 1,000,000 contacts
#   MOVE_BENCH_SIZES="20000 200000" MOVE_BENCH_MOVES=3 bash bench/move.sh   # a quick run
#   MOVE_BENCH_BACKEND=postgres bash bench/move.sh                # two PostgreSQL databases
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"
SIZES=${MOVE_BENCH_SIZES:-"100000 1000000"}
MOVES=${MOVE_BENCH_MOVES:-5}
EXPORTS=${MOVE_BENCH_EXPORTS:-3}
RATE=${MOVE_BENCH_RATE:-100}
BACKEND=${MOVE_BENCH_BACKEND:-sqlite}
[[ $BACKEND == sqlite || $BACKEND == postgres ]] || { echo "MOVE_BENCH_BACKEND: sqlite or postgres" >&2; exit 2; }

unset KONTOR_CONFIG KONTOR_DATA_DIR KONTOR_DATABASE_US KONTOR_DATABASE_EU KONTOR_DATABASE_DIRECTORY KONTOR_LISTEN
export KONTOR_LOG=${BENCH_KONTOR_LOG:-warn}
# The benchmark measures the server, not the API's rate limits: none is met.
export KONTOR_API_LIMITS=off
# Messages go to the original stderr (fd 3), also from inside redirected functions.
exec 3>&2

find_kontor missing
WORK=$(mktemp -d /tmp/kontor-move-bench.XXXXXX)
SERVER_PID=
CLIENT_PID=
# The trap (bench/lib.sh) runs this, then deletes WORK.
on_cleanup() {
    [[ -n $CLIENT_PID ]] && kill "$CLIENT_PID" 2>/dev/null
    stop_server
    stop_pg_throwaway
}
set_cleanup_trap term
# A private copy: a rebuild during the run does not change what is measured.
use_private_kontor quiet
if [[ $BACKEND == postgres ]]; then
    # shellcheck source=../scripts/pg-throwaway.sh
    source "$ROOT/scripts/pg-throwaway.sh"
fi

# Runs a command; prints "<wall ms> <peak RSS KiB>" of it (its children included).
measure() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
ms = (time.monotonic() - t) * 1000
print(f"{ms:.0f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.exit(rc)
PY
}

: >"$WORK/moves.jsonl"
: >"$WORK/client.log"
BACKUP_RATES=()
for size in $SIZES; do
    data=$WORK/data-$size
    mkdir -p "$data"
    export KONTOR_DATA_DIR=$data
    if [[ $BACKEND == postgres ]]; then
        export KONTOR_DATABASE_US KONTOR_DATABASE_EU KONTOR_DATABASE_DIRECTORY
        KONTOR_DATABASE_US=$(pg_throwaway_createdb "us_$size")
        KONTOR_DATABASE_EU=$(pg_throwaway_createdb "eu_$size")
        KONTOR_DATABASE_DIRECTORY=$KONTOR_DATABASE_US
    fi
    account=$("$KONTOR" admin account create --name "bench $size" --region us --tier enterprise)
    token=$("$KONTOR" admin token create --account "$account" --name bench)
    # A node that serves requests only: the moves run in `kontor migration run`, whose memory
    # is measured.
    KONTOR_JOB_WORKERS=0 start_server "$WORK/serve-$size.out" "$WORK/serve-$size.log"
    port=$PORT
    log "$size contacts, $((size / 10)) companies, $size associations: loading"
    python3 "$BENCH_DIR/load.py" --port "$port" --token "$token" --count "$size" \
        --ids-out "$WORK/contacts-$size.ids" >"$WORK/load-$size.log"
    python3 "$BENCH_DIR/load.py" --port "$port" --token "$token" --count "$((size / 10))" \
        --object companies --ids-out "$WORK/companies-$size.ids" >>"$WORK/load-$size.log"
    python3 "$BENCH_DIR/load.py" --port "$port" --token "$token" --count "$size" \
        --associate "$WORK/contacts-$size.ids" "$WORK/companies-$size.ids" >>"$WORK/load-$size.log"
    # The export's rate varies from run to run more than the copy's, and the first after the
    # load is slower (a cold cache): one to warm up, not counted, then the median of three.
    log "$size contacts: backup export (the baseline), 1 + $EXPORTS times"
    "$KONTOR" backup create --account "$account" --wait --ignore-interval >/dev/null
    export_ms=()
    for _ in $(seq "$EXPORTS"); do
        read -r ms _ < <(measure "$KONTOR" backup create --account "$account" --wait --ignore-interval)
        export_ms+=("$ms")
    done
    backup_rows=$("$KONTOR" backup list --account "$account" | awk 'NR == 1' | cut -f7)
    backup_rate=$(python3 -c "import statistics, sys; print($backup_rows / statistics.median(float(x) for x in sys.argv[1:]) * 1000)" "${export_ms[@]}")
    BACKUP_RATES+=("$backup_rate")
    log "$size contacts: $MOVES moves with a client writing $RATE times a second"
    rm -f "$WORK/stop"
    python3 "$BENCH_DIR/move_client.py" --port "$port" --token "$token" --id 1 --rate "$RATE" \
        --out "$WORK/client-$size.log" --stop "$WORK/stop" &
    CLIENT_PID=$!
    sleep 2
    to=eu
    for i in $(seq "$MOVES"); do
        began=$(date +%s%3N)
        read -r ms rss < <(measure "$KONTOR" migration run --account "$account" --to "$to")
        ended=$(date +%s%3N)
        id=$("$KONTOR" migration list --account "$account" | awk 'NR == 1' | cut -f1)
        frozen=$("$KONTOR" migration list --account "$account" | awk 'NR == 1' | cut -f8)
        progress=$("$KONTOR" migration show "$id" | sed -n 's/^progress: *//p')
        python3 -c "
import json, sys
p = json.loads(sys.argv[1])
print(json.dumps({'size': $size, 'records': $backup_rows, 'frozen_ms': $frozen, 'total_ms': $ms, 'rss_kb': $rss,
                  'rows': p.get('total', 0), 'copy_ms': p.get('copy_ms', 0),
                  'began': $began, 'ended': $ended, 'backup_rate': $backup_rate,
                  'frozen_keys': p.get('frozen_keys', 0), 'frozen_steps': p.get('frozen_steps', {})}))" "$progress" >>"$WORK/moves.jsonl"
        log "  move $i to $to: ${ms} ms, frozen ${frozen} ms (server), mover peak RSS $((rss / 1024)) MiB"
        [[ $to == eu ]] && to=us || to=eu
        sleep 2
    done
    touch "$WORK/stop"
    wait "$CLIENT_PID" || true
    CLIENT_PID=
    cat "$WORK/client-$size.log" >>"$WORK/client.log"
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
done

echo
echo "data moves on $BACKEND ($(nproc) cores): $MOVES moves per size, a client writing $RATE times a second"
python3 "$BENCH_DIR/move_summary.py" "$WORK/client.log" "$WORK/moves.jsonl" \
    "$(python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "${BACKUP_RATES[@]}")" \
    "$(python3 -c "print(1000 / $RATE)")"
echo "backup export rows/s per size: ${BACKUP_RATES[*]}"
