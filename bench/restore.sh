#!/usr/bin/env bash
# kontor restore benchmark: loads contacts through the API, takes backups with the CLI, changes
# firstname, lastname and city on every contact, then times `kontor restore plan` and
# `kontor restore apply` (run in the CLI process, server stopped) against baselines run in the
# same script on the same data: the backup's own export rate (for the plan) and a bare UPDATE
# loop writing the same documents (for the apply). Prints figures, ratios and PASS/MISS
# against the targets; see bench/README.md.
#
#   bash bench/restore.sh                                        # 1M contacts, SQLite and PostgreSQL
#   RESTORE_BENCH_SIZES=20000 RESTORE_BENCH_RUNS=2 bash bench/restore.sh      # quick run
#   RESTORE_BENCH_BACKENDS=sqlite bash bench/restore.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- settings
SIZES=${RESTORE_BENCH_SIZES:-1000000}
PG_SIZES=${RESTORE_BENCH_PG_SIZES:-$SIZES}
RUNS=${RESTORE_BENCH_RUNS:-3}
BACKENDS=${RESTORE_BENCH_BACKENDS:-sqlite postgres}
BACKENDS=${BACKENDS//,/ }
LOAD_CONNECTIONS=${RESTORE_BENCH_LOAD_CONNECTIONS:-4}
LOAD_MAX_SECONDS=${RESTORE_BENCH_LOAD_MAX_SECONDS:-3600}
BASELINE_BATCH=${RESTORE_BENCH_BASELINE_BATCH:-10000}
STEP_MAX_SECONDS=${RESTORE_BENCH_STEP_MAX_SECONDS:-900}
OUT_DIR=${RESTORE_BENCH_OUT:-}
PERF_DIR=${RESTORE_BENCH_PERF_DIR:-}
PROPERTIES=firstname,lastname,city
BATCH=100

die_early() { echo "restore bench: $*" >&2; exit 2; }
for v in RUNS LOAD_CONNECTIONS LOAD_MAX_SECONDS BASELINE_BATCH STEP_MAX_SECONDS; do
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
check_sizes RESTORE_BENCH_SIZES "$SIZES"
check_sizes RESTORE_BENCH_PG_SIZES "$PG_SIZES"
for b in $BACKENDS; do
    [[ $b == sqlite || $b == postgres ]] || die_early "unknown backend '$b' (sqlite, postgres)"
done

# The benchmark chooses its own databases and address: ignore the caller's kontor settings.
unset KONTOR_CONFIG KONTOR_DATA_DIR KONTOR_DATABASE_US KONTOR_DATABASE_EU \
    KONTOR_DATABASE_DIRECTORY KONTOR_LISTEN KONTOR_FILES_DIR
export KONTOR_LOG=${RESTORE_BENCH_KONTOR_LOG:-warn}
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
ensure_apt_package sqlite3 sqlite3
[[ -n $PERF_DIR ]] && ensure_apt_package perf linux-perf

# The baselines' Python: the one on PATH, or Debian's when only that one has psycopg (the
# PostgreSQL baseline needs it; Debian's package is python3-psycopg).
PY=python3
if [[ $BACKENDS == *postgres* ]] && ! python3 -c 'import psycopg' 2>/dev/null; then
    if ! /usr/bin/python3 -c 'import psycopg' 2>/dev/null; then
        apt_install psycopg python3-psycopg
        /usr/bin/python3 -c 'import psycopg' || die "python3-psycopg is installed but /usr/bin/python3 cannot import it"
    fi
    PY=/usr/bin/python3
fi

# Always build (unless KONTOR_BIN is given): a stale binary would measure old code.
find_kontor always

WORK=$(mktemp -d "${RESTORE_BENCH_TMPDIR:-/tmp}/kontor-restore-bench.XXXXXX")
chmod 711 "$WORK"
RESULTS=$WORK/results
mkdir -p "$RESULTS"
use_private_kontor

# (timed, cpu_ticks, loadavg and put are in bench/lib.sh.)
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}'; }

# ---------------------------------------------------------------- databases
# One SQL statement (or psql meta-command) on the benchmark's database; prints rows, `|`-separated.
sql() {
    case $BACKEND in
        sqlite) sqlite3 -cmd '.timeout 10000' "$DB" "$1" ;;
        postgres) "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$KURL" -c "$1" ;;
    esac
}

# One statement on PostgreSQL's maintenance database (to copy or drop the benchmark's).
pg_admin() { PGOPTIONS='-c client_min_messages=warning' "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$PG_URL" -c "$1"; }

CONTACTS_WHERE=
# Contacts of the account that are not archived, straight from the database.
count_contacts() { sql "SELECT count(*) FROM records WHERE $CONTACTS_WHERE"; }

# Contacts that still hold a value the set-up wrote (see change_properties).
count_changed() {
    sql "SELECT count(*) FROM records WHERE $CONTACTS_WHERE AND (props LIKE '%rbfirst%' OR props LIKE '%rblast%' OR props LIKE '%rbcity%')"
}

# The set-up's change of the three properties on every contact: a direct SQL UPDATE, much
# faster than the API. The change log does not see it; that is fine for this measure: a plan is
# pinned to the change log's sequence, but it compares each record's current values with the
# backup's, so every contact differs from the backup in all three properties and the plan and
# the apply do the full work (N records to change).
change_properties() {
    case $BACKEND in
        sqlite)
            sql "UPDATE records SET props = json_set(props, '\$.firstname', 'rbfirst' || (id % 1000), '\$.lastname', 'rblast' || (id % 997), '\$.city', 'rbcity' || (id % 101)) WHERE $CONTACTS_WHERE" ;;
        postgres)
            # jsonb's text has spaces and its own key order; the document is rebuilt as kontor
            # writes it (compact, keys in byte order), as a change through the API would leave it.
            sql "UPDATE records SET props = (SELECT '{' || string_agg(to_json(key)::text || ':' || value::text, ',' ORDER BY key COLLATE \"C\") || '}' FROM jsonb_each(props::jsonb || jsonb_build_object('firstname', 'rbfirst' || (id % 1000), 'lastname', 'rblast' || (id % 997), 'city', 'rbcity' || (id % 101)))) WHERE $CONTACTS_WHERE" ;;
    esac
}

# Saved states of the databases: SQLite copies the files (after a checkpoint, so that the
# WAL is empty); PostgreSQL copies the database with CREATE DATABASE ... TEMPLATE.
PG_STRATEGY=
save_state() { # name
    case $BACKEND in
        sqlite)
            local f
            mkdir -p "$WORK/state-$1"
            for f in "$DB" "$DIR_DB"; do
                sqlite3 -cmd '.timeout 10000' "$f" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null || die "checkpoint of $f failed"
                cp "$f" "$WORK/state-$1/$(basename "$(dirname "$f")")-$(basename "$f")"
            done
            ;;
        postgres)
            pg_admin "DROP DATABASE IF EXISTS kontor_$1" || die "could not drop kontor_$1"
            pg_admin "CREATE DATABASE kontor_$1 TEMPLATE kontor $PG_STRATEGY" || die "could not save the state $1"
            ;;
    esac
}

restore_state() { # name
    case $BACKEND in
        sqlite)
            local f
            for f in "$DB" "$DIR_DB"; do
                rm -f "$f-wal" "$f-shm"
                cp "$WORK/state-$1/$(basename "$(dirname "$f")")-$(basename "$f")" "$f"
            done
            ;;
        postgres)
            pg_admin "DROP DATABASE IF EXISTS kontor WITH (FORCE)" || die "could not drop kontor"
            pg_admin "CREATE DATABASE kontor TEMPLATE kontor_$1 $PG_STRATEGY" || die "could not restore the state $1"
            ;;
    esac
}

drop_state() { # name
    case $BACKEND in
        sqlite) rm -rf "$WORK/state-$1" ;;
        postgres) pg_admin "DROP DATABASE IF EXISTS kontor_$1" || true ;;
    esac
}

# ---------------------------------------------------------------- server and load
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
# Puts the figures of the last timed command under n<size>_<what>_<key>_<run>.
put_timed() { # size what run
    put "n$1_$2_s_$3" "$T_WALL"
    put "n$1_$2_rss_kb_$3" "$T_RSS"
    put "n$1_$2_cpu_s_$3" "$T_CPU"
    put "n$1_$2_busy_pct_$3" "$T_BUSY"
}

fail() { # message
    FAILURES=$((FAILURES + 1))
    log "  FAILED: $*"
}

# A kontor CLI command under /usr/bin/time, stdout and stderr to files, stopped after
# STEP_MAX_SECONDS (exit status 124).
kontor_timed() { # out err args...
    local out=$1 err=$2
    shift 2
    timed "$WORK/time.txt" sh -c 'exec "$@" >"$0"' "$out" \
        timeout -k 10 "$STEP_MAX_SECONDS" "$KONTOR" "${GARGS[@]}" "$@" 2>"$err"
}

# The bare UPDATE loop (bench/restore_baseline.py) on the changed state; its own clock.
run_baseline() { # size run
    local n=$1 r=$2 out=$WORK/$BACKEND-baseline-$1-$2.txt src
    case $BACKEND in
        sqlite) src=(sqlite --source "$WORK/state-s0/us-kontor.db" --db "$DB") ;;
        postgres) src=(postgres --source "${KURL%/*}/kontor_s0" --url "$KURL") ;;
    esac
    if ! timed "$WORK/time.txt" "$PY" "$BENCH_DIR/restore_baseline.py" "${src[@]}" \
        --account "$ACCOUNT" --batch "$BASELINE_BATCH" >"$out" 2>"$out.err"; then
        put "n${n}_baseline_ok_$r" 0
        fail "run $r baseline: $(tail -3 "$out.err" | tr '\n' ' ')"
        return
    fi
    local secs changed left
    secs=$(sed -n 's/^baseline_s=//p' "$out")
    changed=$(sed -n 's/^baseline_changed=//p' "$out")
    put "n${n}_baseline_client" "$(sed -n 's/^baseline_client=//p' "$out")"
    put "n${n}_baseline_loop_s_$r" "$secs"
    put "n${n}_baseline_rows_$r" "$changed"
    put_timed "$n" baseline "$r"
    left=$(count_changed)
    if [[ $changed == "$n" && $left == 0 ]]; then
        put "n${n}_baseline_ok_$r" 1
    else
        put "n${n}_baseline_ok_$r" 0
        fail "run $r baseline: $changed rows updated, $left contacts still changed (expected $n and 0)"
    fi
    log "  run $r baseline: $changed rows in $secs s (loop), process $T_WALL s, peak RSS $((T_RSS / 1024)) MiB, CPU $T_CPU s, machine busy $T_BUSY %"
    # For information: the same UPDATE plus one change-log row per record (what a restore must
    # write at the least), right after; it writes the same documents again.
    if "$PY" "$BENCH_DIR/restore_baseline.py" "${src[@]}" --account "$ACCOUNT" \
        --batch "$BASELINE_BATCH" --with-change-log >"$out.log" 2>"$out.log.err"; then
        secs=$(sed -n 's/^baseline_s=//p' "$out.log")
        put "n${n}_baselinelog_loop_s_$r" "$secs"
        log "  run $r baseline with change log: $secs s (loop)"
    else
        log "  run $r baseline with change log failed: $(tail -3 "$out.log.err" | tr '\n' ' ')"
    fi
}

# `kontor restore plan` then `kontor restore apply` on the changed state.
run_restore() { # size run [perf-dir]
    local n=$1 r=$2 perf=${3:-} out err plan to_change
    local pre=()
    [[ -n $perf ]] && pre=(perf record -q -F 499 -g -o)
    out=$WORK/$BACKEND-plan-$n-$r.out
    err=$WORK/$BACKEND-plan-$n-$r.err
    local prc=0
    kontor_timed "$out" "$err" restore plan --backup "$BACKUP_ID" --object contacts \
        --properties "$PROPERTIES" --account "$ACCOUNT" || prc=$?
    if ((prc != 0)); then
        [[ -n $perf ]] || { put "n${n}_plan_ok_$r" 0; put_timed "$n" plan "$r"; }
        ((prc == 124)) && OVER_LIMIT=1
        fail "run $r plan (exit status $prc$( ((prc == 124)) && echo ": over the ${STEP_MAX_SECONDS} s limit")): $(tail -3 "$err" | tr '\n' ' ')"
        return
    fi
    plan=$(tail -1 "$out")
    to_change=$(sed -n 's/^  records: [0-9]* in the backup, \([0-9]*\) to change,.*/\1/p' "$err" | head -1)
    if [[ -z $perf ]]; then
        put_timed "$n" plan "$r"
        put "n${n}_plan_to_change_$r" "${to_change:--}"
        if [[ $plan =~ ^[0-9]+$ && $to_change == "$n" ]]; then
            put "n${n}_plan_ok_$r" 1
        else
            put "n${n}_plan_ok_$r" 0
            fail "run $r plan: plan '$plan', ${to_change:-?} records to change (expected $n)"
        fi
        log "  run $r plan:     $T_WALL s, peak RSS $((T_RSS / 1024)) MiB, CPU $T_CPU s, machine busy $T_BUSY % (plan $plan: ${to_change:-?} to change)"
    fi
    [[ $plan =~ ^[0-9]+$ ]] || return 0

    out=$WORK/$BACKEND-apply-$n-$r.out
    err=$WORK/$BACKEND-apply-$n-$r.err
    local rc=0
    if [[ -n $perf ]]; then
        # Profile the apply only (the plan ran above, unprofiled).
        timed "$WORK/time.txt" sh -c 'exec "$@" >"$0"' "$out" "${pre[@]}" "$perf/$BACKEND-apply-$n.perf.data" \
            "$KONTOR" "${GARGS[@]}" restore apply "$plan" --account "$ACCOUNT" --yes 2>"$err" || rc=$?
        log "  profiled apply: $T_WALL s (exit $rc); perf data in $perf/$BACKEND-apply-$n.perf.data"
        restore_state s1
        timed "$WORK/time.txt" sh -c 'exec "$@" >"$0"' "$out" "${pre[@]}" "$perf/$BACKEND-plan-$n.perf.data" \
            "$KONTOR" "${GARGS[@]}" restore plan --backup "$BACKUP_ID" --object contacts \
            --properties "$PROPERTIES" --account "$ACCOUNT" 2>"$err" || rc=$?
        log "  profiled plan: $T_WALL s (exit $rc); perf data in $perf/$BACKEND-plan-$n.perf.data"
        return 0
    fi
    kontor_timed "$out" "$err" restore apply "$plan" --account "$ACCOUNT" --yes || rc=$?
    put_timed "$n" apply "$r"
    local imp changed left job_ms done_rows
    if ((rc == 124)); then
        # Over the limit: what it had done by then, from its last progress line.
        done_rows=$(sed -n 's|.*(\([0-9]*\)/[0-9]* records)$|\1|p' "$err" | tail -1)
        put "n${n}_apply_ok_$r" 0
        put "n${n}_apply_timeout_$r" "${done_rows:-0}"
        OVER_LIMIT=1
        fail "run $r apply: stopped at the ${STEP_MAX_SECONDS} s limit (RESTORE_BENCH_STEP_MAX_SECONDS) after ${done_rows:-?} of $n records ($(awk -v d="${done_rows:-0}" -v t="$STEP_MAX_SECONDS" 'BEGIN {printf "%.0f", d / t}') records/s); the other runs of this size are skipped"
        return 0
    fi
    imp=$(tail -1 "$out")
    changed=$(sed -n 's/.*: \([0-9]*\) records changed, .*/\1/p' "$err" | tail -1)
    put "n${n}_apply_changed_$r" "${changed:--}"
    if [[ $imp =~ ^[0-9]+$ ]]; then
        # The job's own span, from the import's creation to its end (in the database).
        job_ms=$(sql "SELECT finished_at - created_at FROM imports WHERE account_id = $ACCOUNT AND id = $imp") || job_ms=
        put "n${n}_apply_job_ms_$r" "${job_ms:--}"
    fi
    left=$(count_changed)
    if ((rc == 0)) && [[ $changed == "$n" && $left == 0 ]]; then
        put "n${n}_apply_ok_$r" 1
    else
        put "n${n}_apply_ok_$r" 0
        fail "run $r apply (exit $rc): ${changed:-?} records changed, $left contacts still changed (expected $n and 0): $(tail -3 "$err" | tr '\n' ' ')"
    fi
    log "  run $r apply:    $T_WALL s, peak RSS $((T_RSS / 1024)) MiB, CPU $T_CPU s, machine busy $T_BUSY % (restore $imp: ${changed:-?} changed, job ${job_ms:-?} ms)"
}

measure() { # size
    local n=$1 r out err t0
    log "$BACKEND: measuring at $n contacts, $RUNS runs each (load average $(loadavg))"
    put "n${n}_loadavg_start" "$(loadavg)"

    # 1. Backups of the loaded state; the last one is restored from.
    BACKUP_ID=
    for r in $(seq "$RUNS"); do
        out=$WORK/$BACKEND-backup-$n-$r.out
        err=$WORK/$BACKEND-backup-$n-$r.err
        if kontor_timed "$out" "$err" backup create --account "$ACCOUNT" --wait --ignore-interval &&
            [[ -f $(tail -1 "$out") ]]; then
            put "n${n}_backup_ok_$r" 1
            BACKUP_ID=$(head -1 "$out")
        else
            put "n${n}_backup_ok_$r" 0
            fail "run $r backup: $(tail -3 "$err" | tr '\n' ' ')"
        fi
        put_timed "$n" backup "$r"
        log "  run $r backup:   $T_WALL s, peak RSS $((T_RSS / 1024)) MiB, CPU $T_CPU s, machine busy $T_BUSY % (backup $(head -1 "$out"))"
    done
    [[ $BACKUP_ID =~ ^[0-9]+$ ]] || die "no backup to restore from"
    put "n${n}_backup_id" "$BACKUP_ID"

    # 2. The states: s0 as backed up (the baseline's documents come from there), s1 with the
    #    three properties changed on every contact.
    t0=$EPOCHREALTIME
    save_state s0
    change_properties || die "changing the properties failed"
    [[ $BACKEND == postgres ]] && { sql "VACUUM ANALYZE records" || die "VACUUM ANALYZE failed"; }
    local changed
    changed=$(count_changed)
    [[ $changed == "$n" ]] || die "$changed contacts hold the changed values, expected $n"
    save_state s1
    log "  set-up: firstname, lastname and city changed on $changed contacts by SQL; states saved ($(secs_since "$t0") s)"

    # 3. Runs, each from the same changed state: the baseline, then plan and apply.
    OVER_LIMIT=
    for r in $(seq "$RUNS"); do
        restore_state s1
        run_baseline "$n" "$r"
        restore_state s1
        run_restore "$n" "$r"
        [[ -z $OVER_LIMIT ]] || break
    done
    if [[ -n $PERF_DIR && -z $OVER_LIMIT ]]; then
        mkdir -p "$PERF_DIR"
        restore_state s1
        log "  profiling one more plan and apply with perf (not counted)"
        run_restore "$n" perf "$PERF_DIR"
    fi
    put "n${n}_loadavg_end" "$(loadavg)"

    # Back to the loaded state, so that a larger size continues from it.
    restore_state s0
    drop_state s1
    drop_state s0
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
            DB=$data/regions/us/kontor.db
            DIR_DB=$data/directory.db
            put db "SQLite (kontor: WAL, synchronous=NORMAL); baseline: executemany of a prepared UPDATE, 10k rows a transaction"
            ;;
        postgres)
            sizes=$PG_SIZES
            log "postgres: starting a throwaway server (scripts/pg-throwaway.sh)"
            # shellcheck source=../scripts/pg-throwaway.sh
            source "$ROOT/scripts/pg-throwaway.sh"
            set -euo pipefail # the script turns these off at its end
            # kontor gets a database of its own, so that it can be copied and replaced.
            KURL=$(pg_throwaway_createdb kontor) || die "createdb failed"
            local major
            major=$("$PG_BIN/postgres" --version | awk '{print $3}' | cut -d. -f1)
            ((major >= 15)) && PG_STRATEGY="STRATEGY FILE_COPY"
            GARGS=(--data-dir "$data" --database-us "$KURL" --database-directory "$KURL")
            put db "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') (scripts/pg-throwaway.sh: fsync=off); baseline: UPDATE ... FROM unnest(\$1::bigint[], \$2::text[]), 10k rows a batch"
            log "postgres: $KURL"
            ;;
    esac
    put sizes "$sizes"
    put step_max_s "$STEP_MAX_SECONDS"
    log "=== $BACKEND: sizes $sizes, $RUNS runs each ==="

    ACCOUNT=$("$KONTOR" "${GARGS[@]}" admin account create --name "restore-bench-$BACKEND" --tier enterprise) ||
        die "account create failed"
    TOKEN=$("$KONTOR" "${GARGS[@]}" admin token create --account "$ACCOUNT" --name bench) || die "token create failed"
    [[ -n $TOKEN ]] || die "token create printed nothing"
    [[ $ACCOUNT =~ ^[0-9]+$ ]] || die "account create printed '$ACCOUNT'"
    put account "$ACCOUNT"
    CONTACTS_WHERE="account_id = $ACCOUNT AND object_type = '0-1' AND archived = 0"
    LOADED=0

    local n
    for n in $sizes; do
        load_to "$n"
        if [[ $BACKEND == sqlite ]]; then
            sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null || die "checkpoint failed"
            put "n${n}_db_bytes" "$(stat -c %s "$DB")"
        else
            local v0=$EPOCHREALTIME
            sql "VACUUM ANALYZE" || die "VACUUM ANALYZE failed"
            log "postgres: VACUUM ANALYZE took $(secs_since "$v0") s"
            put "n${n}_db_bytes" "$(sql "SELECT pg_total_relation_size('records')")"
        fi
        measure "$n"
    done
    if [[ -n $OUT_DIR ]]; then
        mkdir -p "$OUT_DIR"
        cp "$RESULTS/$BACKEND.env" "$WORK/$BACKEND"-*.txt "$WORK/$BACKEND"-*.err "$WORK/$BACKEND"-*.out "$OUT_DIR/" 2>/dev/null || true
    fi
    stop_pg_throwaway
    rm -rf "$data"
}

log "kontor restore benchmark: backends $BACKENDS; SQLite sizes $SIZES; PostgreSQL sizes $PG_SIZES; $RUNS runs"
log "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); load average at start: $(loadavg)"
for b in $BACKENDS; do
    run_backend "$b"
done
log "load average at the end: $(loadavg)"
files=()
for b in $BACKENDS; do files+=("$RESULTS/$b.env"); done
echo
python3 "$BENCH_DIR/restore_summary.py" "${files[@]}"
if ((FAILURES > 0)); then
    log "$FAILURES failure(s): see above"
    exit 1
fi
