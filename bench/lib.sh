# Set-up shared by the benchmark scripts in bench/: messages, the clean-up trap, child
# processes, Debian packages, the kontor binary and starting a server. Functions only (sourcing
# it changes nothing); written for `set -euo pipefail`.
#
#   BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   . "$BENCH_DIR/lib.sh"
#
# log and die write to fd 3, which the script opens on its stderr (`exec 3>&2`), so that
# messages reach the terminal also from inside functions whose output is redirected. The
# functions use these globals of the script: ROOT (the repository), WORK (its temporary
# folder), KONTOR (the binary), SERVER_PID, CHILD_PID; RESULTS and BACKEND for put.

# ---------------------------------------------------------------- messages
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&3; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- processes
# Stops a process we started: TERM, then KILL after `seconds` (default 20); reaps it.
stop_pid() { # pid [seconds]
    local pid=$1
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq $((${2:-20} * 5))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Stops the kontor server (SERVER_PID) as stop_pid does.
stop_server() { # [seconds]
    stop_pid "${SERVER_PID:-}" "${1:-20}"
    SERVER_PID=
}

# All descendants of a process, deepest first.
descendants() {
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        descendants "$c"
        echo "$c"
    done
}

# Stops a process we started and everything it started (e.g. /usr/bin/time and its command).
kill_tree() {
    local pid=$1 p pids
    kill -0 "$pid" 2>/dev/null || return 0
    pids=$(descendants "$pid")
    for p in $pids "$pid"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=
        for p in $pids "$pid"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [[ -n $alive ]] || break
        sleep 0.2
    done
    for p in $pids "$pid"; do kill -KILL "$p" 2>/dev/null || true; done
}

# Runs a command in the background and waits for it, so that Ctrl-C reaches the trap at
# once and the trap can stop the command.
run_child() {
    "$@" 3>&- &
    CHILD_PID=$!
    local rc=0
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=
    return "$rc"
}

# Stops the command run_child is waiting for, if any: `term` sends it TERM and waits; `pid`
# stops it as stop_pid does; `tree` stops it and its descendants (kill_tree) and waits.
stop_child() { # term|pid|tree
    [[ -n ${CHILD_PID:-} ]] || return 0
    case $1 in
        term) kill -TERM "$CHILD_PID" 2>/dev/null; wait "$CHILD_PID" 2>/dev/null ;;
        pid) stop_pid "$CHILD_PID" ;;
        tree) kill_tree "$CHILD_PID"; wait "$CHILD_PID" 2>/dev/null ;;
    esac
    return 0
}

# Stops the server of scripts/pg-throwaway.sh, if it was sourced, and removes its folder.
stop_pg_throwaway() {
    declare -F pg_throwaway_stop >/dev/null && pg_throwaway_stop
    unset -f pg_throwaway_stop 2>/dev/null || true
    [[ -n ${PG_DIR:-} && -d $PG_DIR ]] && rm -rf "$PG_DIR"
    PG_DIR=
}

# ---------------------------------------------------------------- clean-up
# On exit, error, Ctrl-C or SIGTERM: stops the running child (stop_child with `how`), calls
# the script's on_cleanup, if it defines one (its servers, PostgreSQL), deletes WORK and exits
# with the script's status (130 after a signal).
set_cleanup_trap() { # how: term|pid|tree
    # shellcheck disable=SC2064 # `how` is fixed now
    trap "cleanup $1" EXIT
    trap 'log "interrupted; cleaning up"; exit 130' INT TERM HUP
}

cleanup() { # how
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    stop_child "$1"
    declare -F on_cleanup >/dev/null && on_cleanup
    [[ -n ${WORK:-} && -d $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}

# ---------------------------------------------------------------- tools
# Installs a Debian package (as root; otherwise dies saying that `what` is missing), with an
# `apt-get update` when the first try fails.
apt_install() { # what package
    ((EUID == 0)) || die "$1 is missing: install the Debian package $2"
    log "installing $2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; } ||
        die "could not install $2"
}

ensure_apt_package() { # command package
    command -v "$1" >/dev/null 2>&1 && return 0
    apt_install "$1" "$2"
}

# ---------------------------------------------------------------- the kontor binary
# Sets KONTOR to the binary to measure: KONTOR_BIN, else $CARGO_TARGET_DIR/release/kontor
# (ROOT/target by default; a relative CARGO_TARGET_DIR is taken from ROOT). Without KONTOR_BIN
# it is built with `cargo build --release [cargo args]`: only when it is missing (`missing`),
# or every time (`always`: a stale binary would measure old code).
find_kontor() { # missing|always [cargo args...]
    local when=$1 target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    shift
    [[ $target_dir == /* ]] || target_dir=$ROOT/$target_dir
    KONTOR=${KONTOR_BIN:-$target_dir/release/kontor}
    if [[ $when == always && -z ${KONTOR_BIN:-} ]] || [[ $when == missing && ! -x $KONTOR ]]; then
        log "building $KONTOR (cargo build --release)"
        (cd "$ROOT" && CARGO_TARGET_DIR=$target_dir cargo build --release "$@") || die "cargo build failed"
    fi
    [[ -x $KONTOR ]] || die "$KONTOR was not built"
}

# Runs a private copy in WORK, so that a rebuild of the target folder during the run changes
# nothing: copies KONTOR there and points KONTOR at the copy. Logs which binary it is, unless
# told `quiet`.
use_private_kontor() { # [quiet]
    cp "$KONTOR" "$WORK/kontor"
    [[ ${1:-} == quiet ]] || log "binary: $KONTOR ($("$KONTOR" --version))"
    KONTOR=$WORK/kontor
}

# ---------------------------------------------------------------- the server
# Starts `$KONTOR [global args] serve --listen 127.0.0.1:0` in the background, its stdout to
# `out` and its stderr appended to `err`; waits up to 30 s for the address it prints, then
# checks that /healthz answers 200. Sets SERVER_PID, SERVER_ADDR (host:port) and PORT.
start_server() { # out err [global args...]
    local out=$1 err=$2
    shift 2
    "$KONTOR" "$@" serve --listen 127.0.0.1:0 >"$out" 2>>"$err" 3>&- &
    SERVER_PID=$!
    SERVER_ADDR=
    for _ in $(seq 300); do
        SERVER_ADDR=$(sed -n 's|^kontor is running at http://||p' "$out" | head -1)
        [[ -n $SERVER_ADDR ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$err" >&2; die "the server exited"; }
        sleep 0.1
    done
    [[ -n $SERVER_ADDR ]] || die "the server did not start within 30 s"
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$SERVER_ADDR/healthz") == 200 ]] ||
        die "/healthz is not 200"
    PORT=${SERVER_ADDR##*:}
}

# ---------------------------------------------------------------- measurements
# Puts one result line into the current backend's file.
put() { echo "$1=$2" >>"$RESULTS/$BACKEND.env"; }

# Busy and total ticks of the whole machine (all CPUs), from /proc/stat.
cpu_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t}' /proc/stat; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Runs a command under /usr/bin/time; sets T_WALL (s), T_RSS (KB), T_CPU (s), T_BUSY (% of
# the machine's cores busy meanwhile, everything included) and returns its exit status.
timed() { # tfile cmd...
    local tfile=$1 rc=0 b0 b1
    shift
    read -r -a b0 < <(cpu_ticks)
    run_child /usr/bin/time -f '%e %M %U %S' -o "$tfile" "$@" || rc=$?
    read -r -a b1 < <(cpu_ticks)
    T_WALL=$(awk 'END {print $1}' "$tfile")
    T_RSS=$(awk 'END {print $2}' "$tfile")
    T_CPU=$(awk 'END {printf "%.2f", $3 + $4}' "$tfile")
    T_BUSY=$(awk -v b="$((b1[0] - b0[0]))" -v t="$((b1[1] - b0[1]))" -v n="$(nproc)" \
        'BEGIN {printf "%.0f", t ? 100 * n * b / t : 0}')
    return "$rc"
}
