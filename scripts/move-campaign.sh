#!/usr/bin/env bash
# The lost-write checker of data moves at full size: an account moved back and forth between
# the two regions' cells while writers record every answer and the CLI and the server are
# killed with `kill -9` at random moments (crates/kontor/tests/moves.rs; CI runs it with 20
# kills on PostgreSQL and 8 from SQLite to PostgreSQL). Fails if an acknowledged write was
# lost, something was there that was never attempted, a 477 came outside a freeze, the old cell
# kept anything of the account, or an e-mail was lost or sent twice.
#
#   bash scripts/move-campaign.sh --kills 200          every pair of engines, 200 kills each
#   KONTOR_MOVE_PAIRS="sqlite-postgresql" bash ...       one pair (sqlite-sqlite,
#                                                        postgresql-postgresql, sqlite-postgresql)
#
# KONTOR_MOVE_SEED replays a campaign's random choices (each run prints its seed).
set -euo pipefail
cd "$(dirname "$0")/.."

kills=100
while [ $# -gt 0 ]; do
    case "$1" in
        --kills) kills="$2"; shift 2 ;;
        --kills=*) kills="${1#--kills=}"; shift ;;
        *) echo "usage: $0 [--kills N]" >&2; exit 2 ;;
    esac
done
case "$kills" in ''|*[!0-9]*) echo "--kills takes a number, not ${kills:-nothing}" >&2; exit 2 ;; esac

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/kontor-target}"
export CARGO_TERM_COLOR=never
export KONTOR_MOVE_KILLS="$kills"
PAIRS="${KONTOR_MOVE_PAIRS:-sqlite-sqlite postgresql-postgresql sqlite-postgresql}"

if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi
cargo build --release --locked -p kontor --tests

# Runs the checker, showing its output; prints its summary line on stdout.
run() {
    cargo nextest run --release --locked -p kontor --test moves -E 'test(under_kills)' \
        --no-capture 2>&1 | tee /dev/stderr | grep -E '^moves: ([0-9]+ moves|seed)' | tr '\n' ' '
}

pg_started=""
summaries=()
for pair in $PAIRS; do
    printf '\n== data moves %s: %s kills ==\n' "$pair" "$kills"
    start=$SECONDS
    if [[ "$pair" == *postgresql* ]] && [ -z "$pg_started" ]; then
        # shellcheck source=pg-throwaway.sh
        source scripts/pg-throwaway.sh
        set -euo pipefail
        trap pg_throwaway_stop EXIT
        pg_started=1
    fi
    n=$((${#summaries[@]} + 1))
    case "$pair" in
        sqlite-sqlite) line="$(run)" ;;
        postgresql-postgresql)
            us="$(pg_throwaway_createdb "campaign_us_$n")"
            line="$(KONTOR_DATABASE_US="$us" KONTOR_DATABASE_EU="$(pg_throwaway_createdb "campaign_eu_$n")" \
                KONTOR_DATABASE_DIRECTORY="$us" run)"
            ;;
        sqlite-postgresql)
            line="$(KONTOR_DATABASE_EU="$(pg_throwaway_createdb "campaign_eu_$n")" run)"
            ;;
        *) echo "unknown pair $pair" >&2; exit 2 ;;
    esac
    summaries+=("$pair: $line[wall clock $((SECONDS - start)) s]")
done

printf '\n== summary ==\n'
printf '%s\n' "${summaries[@]}"
