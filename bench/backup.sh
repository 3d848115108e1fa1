#!/usr/bin/env bash
# kontor backup benchmark: loads contacts through the API, then times `kontor backup create
# --wait` (run in the CLI process, server stopped) against a plain CSV dump of the same rows
# with the database's own client, on SQLite and PostgreSQL. Prints figures, ratios and
# PASS/FAIL against the targets; see bench/README.md.
#
#   bash bench/backup.sh                                     # 300k/1M/3M on SQLite, 1M on PostgreSQL
#   BACKUP_BENCH_SIZES="20000 50000" BACKUP_BENCH_PG_SIZES=20000 bash bench/backup.sh   # quick run
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- settings
SIZES=${BACKUP_BENCH_SIZES:-300000 1000000 3000000}
PG_SIZES=${BACKUP_BENCH_PG_SIZES:-1000000}
RUNS=${BACKUP_BENCH_RUNS:-3}
BACKENDS=${BACKUP_BENCH_BACKENDS:-sqlite postgres}
LOAD_CONNECTIONS=${BACKUP_BENCH_LOAD_CONNECTIONS:-4}
LOAD_MAX_SECONDS=${BACKUP_BENCH_LOAD_MAX_SECONDS:-3600}
OUT_DIR=${BACKUP_BENCH_OUT:-}
BATCH=100

die_early() { echo "backup bench: $*" >&2; exit 2; }
for v in RUNS LOAD_CONNECTIONS LOAD_MAX_SECONDS; do
    [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} >= 1)) || die_early "$v must be a whole number >= 1, got '${!v}'"
done
check_sizes() { # name list: ascending whole numbers (each is the total after that step)
    local prev=0 s
    [[ -n ${2// /} ]] || die_early "$1 is empty"
    for s in $2; do
        [[ $s =~ ^[0-9]+$ ]] && ((s > prev)) || die_early "$1 must be ascending whole numbers (totals), got '$2'"
        prev=$s
    done
}
check_sizes BACKUP_BENCH_SIZES "$SIZES"
check_sizes BACKUP_BENCH_PG_SIZES "$PG_SIZES"
for b in $BACKENDS; do
    [[ $b == sqlite || $b == postgres ]] || die_early "unknown backend '$b' (sqlite, postgres)"
done

# The benchmark chooses its own databases and address: ignore the caller's kontor settings.
unset KONTOR_CONFIG KONTOR_DATA_DIR KONTOR_DATABASE_US KONTOR_DATABASE_EU \
    KONTOR_DATABASE_DIRECTORY KONTOR_LISTEN
export KONTOR_LOG=${BACKUP_BENCH_KONTOR_LOG:-warn}
# The benchmark measures the server, not the API's rate limits: none is met.
export KONTOR_API_LIMITS=off

# Messages go to the original stderr (fd 3), also from inside redirected functions.
exec 3>&2

# ---------------------------------------------------------------- cleanup
WORK=
SERVER_PID=
CHILD_PID=
PG_DIR=
FAILURES=0

# The trap (bench/lib.sh) stops the child and what it started, then this, then deletes WORK.
on_cleanup() {
    stop_server
    stop_pg_throwaway
}
set_cleanup_trap tree

# ---------------------------------------------------------------- tools
ensure_apt_package curl curl
ensure_apt_package python3 python3
[[ -x /usr/bin/time ]] || { ensure_apt_package /usr/bin/time time; }
[[ $BACKENDS == *sqlite* ]] && ensure_apt_package sqlite3 sqlite3

# Always build (unless KONTOR_BIN is given): a stale binary would measure old code.
find_kontor always

WORK=$(mktemp -d "${BACKUP_BENCH_TMPDIR:-/tmp}/kontor-backup-bench.XXXXXX")
chmod 711 "$WORK"
RESULTS=$WORK/results
mkdir -p "$RESULTS"
use_private_kontor

# ---------------------------------------------------------------- server and load
# Contacts of the account that are not archived, straight from the database.
count_contacts() {
    local q="SELECT count(*) FROM records WHERE account_id=$ACCOUNT AND object_type='0-1' AND archived=0"
    case $BACKEND in
        sqlite) sqlite3 "$DB" "$q" ;;
        postgres) "$PG_BIN/psql" -X -q -At "$PG_URL" -c "$q" ;;
    esac
}

load_to() { # total: loads contacts LOADED..total-1
    local total=$1 add=$(($1 - LOADED)) out=$WORK/$BACKEND-load-$1.txt
    log "$BACKEND: loading $add contacts ($LOADED -> $total) through the API"
    start_server "$WORK/$BACKEND-server.out" "$WORK/$BACKEND-server.err" "${GARGS[@]}"
    run_child python3 "$BENCH_DIR/load.py" --port "$PORT" --token "$TOKEN" --start "$LOADED" \
        --count "$add" --batch "$BATCH" --connections "$LOAD_CONNECTIONS" --max-seconds "$LOAD_MAX_SECONDS" \
        >"$out" || { cat "$out" >&2; tail -20 "$WORK/$BACKEND-server.err" >&2; die "the load failed"; }
    stop_server
    [[ $(sed -n 's/^load_partial=//p' "$out") == 0 ]] || die "the load stopped at the $LOAD_MAX_SECONDS s limit"
    local secs rps
    secs=$(sed -n 's/^load_seconds=//p' "$out")
    rps=$(sed -n 's/^load_records_per_s=//p' "$out")
    put "n${total}_load_added" "$add"
    put "n${total}_load_s" "$secs"
    put "n${total}_load_rps" "$rps"
    log "$BACKEND: loaded $add contacts in $secs s ($rps records/s); server stopped"
    local have
    have=$(count_contacts) || die "could not count the contacts"
    [[ $have == "$total" ]] || die "the database holds $have contacts of account $ACCOUNT, expected $total"
    LOADED=$total
}

# ---------------------------------------------------------------- measurements
# (timed, cpu_ticks, loadavg and put are in bench/lib.sh.)
baseline() { # csv-file
    local q="SELECT id, props FROM records WHERE account_id=$ACCOUNT AND object_type='0-1' AND archived=0 ORDER BY id"
    case $BACKEND in
        sqlite) timed "$WORK/time.txt" sh -c 'exec sqlite3 -csv "$1" "$2" >"$3"' sh "$DB" "$q" "$1" ;;
        postgres) timed "$WORK/time.txt" "$PG_BIN/psql" -X -q "$PG_URL" -c "\\copy ($q) TO '$1' (FORMAT csv)" ;;
    esac
}

measure() { # size
    local n=$1 r csv=$WORK/$BACKEND-baseline.csv last_zip= out err
    log "$BACKEND: measuring at $n contacts, $RUNS runs each (load average $(loadavg))"
    put "n${n}_loadavg_start" "$(loadavg)"
    for r in $(seq "$RUNS"); do
        rm -f "$csv"
        baseline "$csv" || die "the baseline dump failed (exit $?)"
        put "n${n}_baseline_s_$r" "$T_WALL"
        put "n${n}_baseline_rss_kb_$r" "$T_RSS"
        put "n${n}_baseline_cpu_s_$r" "$T_CPU"
        put "n${n}_baseline_busy_pct_$r" "$T_BUSY"
        log "  run $r baseline: $T_WALL s, peak RSS $((T_RSS / 1024)) MiB, CPU $T_CPU s, machine busy $T_BUSY %"

        out=$WORK/$BACKEND-backup-$n-$r.out
        err=$WORK/$BACKEND-backup-$n-$r.err
        if timed "$WORK/time.txt" sh -c 'exec "$@" >"$0"' "$out" \
            "$KONTOR" "${GARGS[@]}" backup create --account "$ACCOUNT" --wait --ignore-interval 2>"$err"; then
            local zip
            zip=$(tail -1 "$out")
            if [[ -f $zip ]]; then
                last_zip=$zip
                put "n${n}_backup_ok_$r" 1
                put "n${n}_zip_bytes_$r" "$(stat -c %s "$zip")"
            else
                put "n${n}_backup_ok_$r" 0
                FAILURES=$((FAILURES + 1))
                log "  run $r backup: FAILED: exit 0 but no archive at '$zip'"
            fi
        else
            put "n${n}_backup_ok_$r" 0
            FAILURES=$((FAILURES + 1))
            log "  run $r backup: FAILED (exit status non-zero): $(tail -3 "$err" | tr '\n' ' ')"
        fi
        put "n${n}_backup_s_$r" "$T_WALL"
        put "n${n}_backup_rss_kb_$r" "$T_RSS"
        put "n${n}_backup_cpu_s_$r" "$T_CPU"
        put "n${n}_backup_busy_pct_$r" "$T_BUSY"
        log "  run $r backup:   $T_WALL s, peak RSS $((T_RSS / 1024)) MiB, CPU $T_CPU s, machine busy $T_BUSY % ($(head -1 "$out" | sed 's/^/id /'))"
    done
    put "n${n}_loadavg_end" "$(loadavg)"

    local csv_bytes csv_rows
    csv_bytes=$(stat -c %s "$csv")
    csv_rows=$(wc -l <"$csv")
    put "n${n}_csv_bytes" "$csv_bytes"
    put "n${n}_csv_rows" "$csv_rows"
    [[ $csv_rows == "$n" ]] || log "  WARNING: the baseline CSV has $csv_rows lines, expected $n"
    rm -f "$csv"

    if [[ -z $last_zip ]]; then
        put "n${n}_verify_ok" 0
        FAILURES=$((FAILURES + 1))
        log "  verify: no archive to verify"
        return
    fi
    local vout=$WORK/$BACKEND-verify-$n.txt vrc=0 vrows
    timed "$WORK/time.txt" sh -c 'exec "$@" >"$0" 2>&1' "$vout" "$KONTOR" backup verify "$last_zip" || vrc=$?
    vrows=$(sed -n 's/^ok: .*, \([0-9]*\) records as of .*/\1/p' "$vout" | head -1)
    put "n${n}_verify_s" "$T_WALL"
    put "n${n}_verify_rss_kb" "$T_RSS"
    put "n${n}_verify_rows" "${vrows:--}"
    put "n${n}_zip_bytes" "$(stat -c %s "$last_zip")"
    if ((vrc == 0)) && [[ $vrows == "$n" ]]; then
        put "n${n}_verify_ok" 1
        log "  verify: ok, $vrows records ($T_WALL s); archive $(stat -c %s "$last_zip") bytes, baseline CSV $csv_bytes bytes"
    else
        put "n${n}_verify_ok" 0
        FAILURES=$((FAILURES + 1))
        log "  verify: FAILED (exit $vrc, ${vrows:-no} records, expected $n): $(head -5 "$vout" | tr '\n' ' ')"
    fi
    sed 's/^/    /' "$vout" >&3
}

# ---------------------------------------------------------------- backends
run_backend() {
    BACKEND=$1
    local sizes
    : >"$RESULTS/$BACKEND.env"
    local data=$WORK/$BACKEND-data
    mkdir -p "$data"
    case $BACKEND in
        sqlite)
            sizes=$SIZES
            GARGS=(--data-dir "$data")
            put db "SQLite $(sqlite3 --version | awk '{print $1}') (kontor: WAL, synchronous=NORMAL); baseline: sqlite3 -csv"
            ;;
        postgres)
            sizes=$PG_SIZES
            log "postgres: starting a throwaway server (scripts/pg-throwaway.sh)"
            # shellcheck source=../scripts/pg-throwaway.sh
            source "$ROOT/scripts/pg-throwaway.sh"
            set -euo pipefail # the script turns these off at its end
            GARGS=(--data-dir "$data" --database-us "$PG_URL" --database-directory "$PG_URL")
            put db "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') (scripts/pg-throwaway.sh: fsync=off); baseline: psql \\copy"
            log "postgres: $PG_URL"
            ;;
    esac
    put sizes "$sizes"
    log "=== $BACKEND: sizes $sizes, $RUNS runs each ==="

    ACCOUNT=$("$KONTOR" "${GARGS[@]}" admin account create --name "backup-bench-$BACKEND" --tier enterprise) ||
        die "account create failed"
    TOKEN=$("$KONTOR" "${GARGS[@]}" admin token create --account "$ACCOUNT" --name bench) || die "token create failed"
    [[ -n $TOKEN ]] || die "token create printed nothing"
    put account "$ACCOUNT"
    DB=$data/regions/us/kontor.db
    LOADED=0

    local n
    for n in $sizes; do
        load_to "$n"
        if [[ $BACKEND == sqlite ]]; then
            # Move the WAL into the database file, so that both readers start from the same state.
            sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null || die "checkpoint failed"
            put "n${n}_db_bytes" "$(stat -c %s "$DB")"
        else
            local v0=$EPOCHREALTIME
            "$PG_BIN/psql" -X -q "$PG_URL" -c "VACUUM ANALYZE" || die "VACUUM ANALYZE failed"
            log "postgres: VACUUM ANALYZE took $(awk -v a="$v0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}') s"
            put "n${n}_db_bytes" "$("$PG_BIN/psql" -X -q -At "$PG_URL" -c "SELECT pg_total_relation_size('records')")"
        fi
        measure "$n"
    done
    stop_pg_throwaway
    if [[ -n $OUT_DIR ]]; then
        mkdir -p "$OUT_DIR"
        cp "$RESULTS/$BACKEND.env" "$WORK/$BACKEND"-*.txt "$WORK/$BACKEND"-*.err "$WORK/$BACKEND"-*.out "$OUT_DIR/" 2>/dev/null || true
    fi
    rm -rf "$data"
}

log "kontor backup benchmark: backends $BACKENDS; SQLite sizes $SIZES; PostgreSQL sizes $PG_SIZES; $RUNS runs"
log "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); load average at start: $(loadavg)"
for b in $BACKENDS; do
    run_backend "$b"
done
log "load average at the end: $(loadavg)"
files=()
for b in $BACKENDS; do files+=("$RESULTS/$b.env"); done
echo
python3 "$BENCH_DIR/backup_summary.py" "${files[@]}"
if ((FAILURES > 0)); then
    log "$FAILURES backup or verify failure(s): see above"
    exit 1
fi
