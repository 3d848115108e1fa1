#!/usr/bin/env bash
# kontor benchmark: bulk load, GET by id, search by e-mail and /healthz, on SQLite and
# PostgreSQL. Prints figures and ratios; see bench/README.md.
#
#   bash bench/run.sh                          # 1,000,000 contacts, both backends
#   BENCH_CONTACTS=20000 bash bench/run.sh     # quick run
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

# ---------------------------------------------------------------- settings
CONTACTS=${BENCH_CONTACTS:-1000000}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
BATCH=100
LOAD_CONNECTIONS=${BENCH_LOAD_CONNECTIONS:-4}
LOAD_MAX_SECONDS=${BENCH_LOAD_MAX_SECONDS:-1800}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
WRK_CONNECTIONS=${BENCH_WRK_CONNECTIONS:-16}
WRK_DURATION=${BENCH_WRK_DURATION:-15}
WRK_WARMUP=${BENCH_WRK_WARMUP:-3}
PG_SHARED_BUFFERS=${BENCH_PG_SHARED_BUFFERS:-512MB}
OUT_DIR=${BENCH_OUT:-}
WRK_DURATION=${WRK_DURATION%s}
WRK_WARMUP=${WRK_WARMUP%s}

for v in CONTACTS LOAD_CONNECTIONS LOAD_MAX_SECONDS WRK_THREADS WRK_CONNECTIONS WRK_DURATION WRK_WARMUP; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench: $v must be a whole number, got '${!v}'" >&2; exit 2; }
done
((CONTACTS >= 1)) || { echo "bench: BENCH_CONTACTS must be at least 1" >&2; exit 2; }
for b in $BACKENDS; do
    [[ $b == sqlite || $b == postgres ]] || { echo "bench: unknown backend '$b' (sqlite, postgres)" >&2; exit 2; }
done

# The benchmark chooses its own databases and address: ignore the caller's kontor settings.
unset KONTOR_CONFIG KONTOR_DATA_DIR KONTOR_DATABASE_US KONTOR_DATABASE_EU \
    KONTOR_DATABASE_DIRECTORY KONTOR_LISTEN
export KONTOR_LOG=${BENCH_KONTOR_LOG:-warn}
# The benchmark measures the server, not the API's rate limits: none is met.
export KONTOR_API_LIMITS=off

# Messages go to the original stderr (fd 3), also from inside redirected functions.
exec 3>&2

# ---------------------------------------------------------------- cleanup
WORK=
SERVER_PID=
CHILD_PID=
PG_BIN=
PG_DATA=
PG_STARTED=

as_postgres() {
    if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_postgres() {
    [[ -n $PG_STARTED ]] || return 0
    local pid=
    [[ -f $PG_DATA/postmaster.pid ]] && pid=$(head -1 "$PG_DATA/postmaster.pid")
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -QUIT "$pid" 2>/dev/null || true
        sleep 1
        kill -KILL "$pid" 2>/dev/null || true
    fi
    PG_STARTED=
}

# The trap (bench/lib.sh) stops the child with TERM, then this, then deletes WORK.
on_cleanup() {
    stop_server 10
    stop_postgres
}
set_cleanup_trap term

# ---------------------------------------------------------------- tools
ensure_apt_package wrk wrk
ensure_apt_package curl curl
ensure_apt_package jq jq
ensure_apt_package python3 python3
if [[ $BACKENDS == *postgres* ]]; then
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_install PostgreSQL postgresql
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

find_kontor missing

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/kontor-bench.XXXXXX")
chmod 711 "$WORK"
RESULTS=$WORK/results
use_private_kontor
mkdir -p "$RESULTS"
CLK_TCK=$(getconf CLK_TCK)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU time (clock ticks) of processes, their reaped children included.
proc_ticks() {
    local total=0 p t
    for p in "$@"; do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
# CPU ticks of the kontor server.
server_ticks() { proc_ticks "$SERVER_PID"; }
# CPU ticks of the PostgreSQL cluster (postmaster and its processes), 0 on SQLite.
db_ticks() {
    [[ -n $PG_STARTED && -f $PG_DATA/postmaster.pid ]] || { echo 0; return; }
    local pm
    pm=$(head -1 "$PG_DATA/postmaster.pid")
    # shellcheck disable=SC2046
    proc_ticks "$pm" $(ps -o pid= --ppid "$pm")
}

# ---------------------------------------------------------------- backends
start_postgres() {
    local dir=$WORK/postgres
    mkdir -p "$dir"
    chown postgres: "$dir" 2>/dev/null || true
    PG_DATA=$dir/data
    PG_PORT=$(free_port)
    log "postgres: initdb in $PG_DATA ($("$PG_BIN/postgres" --version))"
    as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    PG_STARTED=1
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$dir/server.log" -w -t 60 \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $dir -c shared_buffers=$PG_SHARED_BUFFERS -c max_wal_size=4GB" \
        start >/dev/null || { cat "$dir/server.log" >&2; die "postgres did not start"; }
    PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    log "postgres: listening on 127.0.0.1:$PG_PORT (shared_buffers=$PG_SHARED_BUFFERS)"
}

psql_q() {
    "$PG_BIN/psql" -X -q -At "$PG_URL" -c "$1"
}

api() { # method path [body] -> prints "STATUS BODY"
    local out code
    out=$(curl -sS --max-time 30 -X "$1" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' ${3:+--data "$3"} \
        -w '\n%{http_code}' "$BASE$2") || return 1
    code=${out##*$'\n'}
    printf '%s %s\n' "$code" "${out%$'\n'*}"
}

email_of() { echo "contact$1@example$(($1 % 100)).com"; }

search_body() {
    printf '{"filterGroups":[{"filters":[{"propertyName":"email","operator":"EQ","value":"%s"}]}]}' "$(email_of "$1")"
}

# Checks that ids 1..N exist (and N+1 does not), and that e-mails of contacts 0..N-1 are found.
verify_loaded() {
    local n=$1 r code body i
    for i in 1 "$n" $(for _ in $(seq 10); do echo $(((RANDOM * 32768 + RANDOM) % n + 1)); done); do
        ((i > n)) && i=$n
        r=$(api GET "/crm/v3/objects/contacts/$i") || die "GET contact $i failed"
        code=${r%% *}
        body=${r#* }
        [[ $code == 200 ]] || die "GET contact $i: HTTP $code: ${body:0:300}"
        [[ $(jq -r .id <<<"$body") == "$i" ]] || die "GET contact $i returned another record: ${body:0:300}"
        [[ $(jq -r .properties.email <<<"$body") == contact*@example*.com ]] ||
            die "GET contact $i has no e-mail of the loader: ${body:0:300}"
    done
    r=$(api GET "/crm/v3/objects/contacts/$((n + 1))") || die "GET contact $((n + 1)) failed"
    [[ ${r%% *} == 404 ]] || die "contact $((n + 1)) exists (HTTP ${r%% *}): ids are not 1..$n"
    for i in 0 $((n - 1)) $(for _ in $(seq 10); do echo $(((RANDOM * 32768 + RANDOM) % n)); done); do
        r=$(api POST /crm/v3/objects/contacts/search "$(search_body "$i")") || die "search failed"
        code=${r%% *}
        body=${r#* }
        [[ $code == 200 ]] || die "search for $(email_of "$i"): HTTP $code: ${body:0:300}"
        [[ $(jq -r .total <<<"$body") == 1 && $(jq -r '.results[0].properties.email' <<<"$body") == "$(email_of "$i")" ]] ||
            die "search for $(email_of "$i") did not find exactly that contact: ${body:0:300}"
    done
    log "verified: ids 1..$n exist, id $((n + 1)) does not, e-mails are found by search"
}

run_wrk() { # name mode
    local name=$1 mode=$2 out=$WORK/$BACKEND-wrk-$1.txt line kv
    local args=(-t "$WRK_THREADS" -c "$WRK_CONNECTIONS" --timeout 10s
        -H "Authorization: Bearer $TOKEN" -s "$BENCH_DIR/wrk.lua" "$BASE")
    if ((WRK_WARMUP > 0)); then
        run_child timeout $((WRK_WARMUP + 60)) wrk -d "${WRK_WARMUP}s" "${args[@]}" -- "$mode" "$N" \
            >"$out.warmup" 2>&1 || die "wrk warm-up of $name failed: $(cat "$out.warmup")"
    fi
    run_child timeout $((WRK_DURATION + 60)) wrk -d "${WRK_DURATION}s" "${args[@]}" -- "$mode" "$N" \
        >"$out" 2>&1 || die "wrk $name failed: $(cat "$out")"
    line=$(grep '^BENCH ' "$out") || die "wrk $name printed no result: $(cat "$out")"
    for kv in ${line#BENCH }; do put "${name}_${kv%%=*}" "${kv#*=}"; done
    local errors
    errors=$(awk '{for (i = 2; i <= NF; i++) if ($i ~ /^errors_/) {split($i, a, "="); s += a[2]}} END {print s + 0}' <<<"$line")
    log "$name: $(awk '{for (i = 2; i <= NF; i++) {split($i, a, "=");
        if (a[1] == "rps") r = a[2]; if (a[1] == "p50_us") p = a[2]; if (a[1] == "p99_us") q = a[2]}}
        END {printf "%.0f req/s, p50 %.2f ms, p99 %.2f ms", r, p / 1000, q / 1000}' <<<"$line"), $errors errors"
}

run_backend() {
    BACKEND=$1
    : >"$RESULTS/$BACKEND.env"
    local data=$WORK/$BACKEND-data gargs
    mkdir -p "$data"
    log "=== $BACKEND: $CONTACTS contacts ==="
    case $BACKEND in
        sqlite)
            gargs=(--data-dir "$data")
            put db "SQLite (WAL, synchronous=NORMAL)"
            ;;
        postgres)
            start_postgres
            gargs=(--data-dir "$data" --database-us "$PG_URL" --database-eu "$PG_URL" --database-directory "$PG_URL")
            put db "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') (shared_buffers=$PG_SHARED_BUFFERS)"
            ;;
    esac

    local account
    account=$("$KONTOR" "${gargs[@]}" admin account create --name "bench-$BACKEND" --region us --tier enterprise) ||
        die "account create failed"
    TOKEN=$("$KONTOR" "${gargs[@]}" admin token create --account "$account" --name bench) || die "token create failed"
    [[ -n $TOKEN ]] || die "token create printed nothing"

    start_server "$WORK/$BACKEND-server.out" "$WORK/$BACKEND-server.err" "${gargs[@]}"
    BASE=http://$SERVER_ADDR
    log "server pid $SERVER_PID at $BASE, account $account"

    # ---- load
    local t0 d0 loadout=$WORK/$BACKEND-load.txt
    t0=$(server_ticks)
    d0=$(db_ticks)
    run_child python3 "$BENCH_DIR/load.py" --port "$PORT" --token "$TOKEN" --count "$CONTACTS" \
        --batch "$BATCH" --connections "$LOAD_CONNECTIONS" --max-seconds "$LOAD_MAX_SECONDS" \
        >"$loadout" || { cat "$loadout" >&2; tail -20 "$WORK/$BACKEND-server.err" >&2; die "the load failed"; }
    local t1 d1
    t1=$(server_ticks)
    d1=$(db_ticks)
    local kv
    while IFS= read -r kv; do put "${kv%%=*}" "${kv#*=}"; done <"$loadout"
    local load_seconds load_records
    load_seconds=$(sed -n 's/^load_seconds=//p' "$loadout")
    load_records=$(sed -n 's/^load_records=//p' "$loadout")
    put server_load_cpu_pct "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v s="$load_seconds" 'BEGIN {printf "%.1f", 100 * t / hz / s}')"
    put db_load_cpu_pct "$(awk -v t=$((d1 - d0)) -v hz="$CLK_TCK" -v s="$load_seconds" 'BEGIN {printf "%.1f", 100 * t / hz / s}')"
    log "loaded $load_records contacts in $load_seconds s ($(sed -n 's/^load_records_per_s=//p' "$loadout") records/s)"
    N=$load_records
    ((N > 0)) || die "nothing was loaded"
    put contacts "$N"

    verify_loaded "$N"

    if [[ $BACKEND == postgres ]]; then
        local v0=$SECONDS
        psql_q "VACUUM ANALYZE" >/dev/null || die "VACUUM ANALYZE failed"
        put vacuum_seconds $((SECONDS - v0))
        put db_bytes "$(psql_q "SELECT pg_database_size('postgres')")"
    else
        put db_bytes "$(du -sb "$data" | cut -f1)"
    fi

    # ---- reads
    run_wrk healthz healthz
    run_wrk get get
    run_wrk search search

    put server_peak_rss_kb "$(awk '/^VmHWM/ {print $2}' "/proc/$SERVER_PID/status")"
    put server_rss_kb "$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status")"
    log "server peak RSS (VmHWM): $(awk '/^VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$SERVER_PID/status")"
    stop_server 10
    stop_postgres
    python3 "$BENCH_DIR/summary.py" "$RESULTS/$BACKEND.env"
    if [[ -n $OUT_DIR ]]; then
        mkdir -p "$OUT_DIR"
        cp "$RESULTS/$BACKEND.env" "$WORK/$BACKEND"-*.txt "$WORK/$BACKEND-server.err" "$OUT_DIR/" 2>/dev/null || true
    fi
    rm -rf "$data" "$WORK/postgres"
}

log "kontor benchmark: $CONTACTS contacts, backends: $BACKENDS; $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
log "load: batches of $BATCH, $LOAD_CONNECTIONS connections, at most $LOAD_MAX_SECONDS s; wrk: -t$WRK_THREADS -c$WRK_CONNECTIONS -d${WRK_DURATION}s (after ${WRK_WARMUP}s warm-up)"
for b in $BACKENDS; do
    run_backend "$b"
done
files=()
for b in $BACKENDS; do files+=("$RESULTS/$b.env"); done
echo
python3 "$BENCH_DIR/summary.py" "${files[@]}"
