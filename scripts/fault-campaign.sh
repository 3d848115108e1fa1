#!/usr/bin/env bash
# The fault campaign at full size: backups, imports and restores while the server is killed
# with `kill -9` at random moments, then random bit flips and truncations of the archives it
# wrote (crates/kontor/tests/faults.rs; CI runs a short version). Prints one summary per
# database and fails if anything was lost, applied twice, stuck, or damage went unnoticed.
#
#   bash scripts/fault-campaign.sh             SQLite, then a throwaway PostgreSQL
#   KONTOR_FAULT_DATABASES=sqlite bash ...      only SQLite (or only postgresql)
#
# Sizes: KONTOR_FAULT_KILLS (200), KONTOR_FAULT_FLIPS (1000); KONTOR_FAULT_SEED replays a
# campaign (each run prints its seed).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/kontor-target}"
export CARGO_TERM_COLOR=never
export KONTOR_FAULT_KILLS="${KONTOR_FAULT_KILLS:-200}"
export KONTOR_FAULT_FLIPS="${KONTOR_FAULT_FLIPS:-1000}"
DATABASES="${KONTOR_FAULT_DATABASES:-sqlite postgresql}"

if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi

# Runs the campaign, showing its output; prints its summary line on stdout.
run() {
    cargo nextest run --release --locked -p kontor --test faults --no-capture 2>&1 \
        | tee /dev/stderr | grep '^fault campaign (seed'
}

summaries=()
for db in $DATABASES; do
    printf '\n== fault campaign on %s: %s kills, %s damaged copies ==\n' "$db" "$KONTOR_FAULT_KILLS" "$KONTOR_FAULT_FLIPS"
    start=$SECONDS
    case "$db" in
        sqlite) line="$(run)" ;;
        postgresql)
            # shellcheck source=pg-throwaway.sh
            source scripts/pg-throwaway.sh
            set -euo pipefail
            trap pg_throwaway_stop EXIT
            PG_FAULTS="$(pg_throwaway_createdb faults)"
            line="$(KONTOR_DATABASE_US="$PG_FAULTS" KONTOR_DATABASE_EU="$PG_FAULTS" \
                KONTOR_DATABASE_DIRECTORY="$PG_FAULTS" run)"
            pg_throwaway_stop
            trap - EXIT
            ;;
        *) echo "unknown database $db (sqlite or postgresql)" >&2; exit 2 ;;
    esac
    summaries+=("$line [wall clock $((SECONDS - start)) s]")
done

printf '\n== summary ==\n'
printf '%s\n' "${summaries[@]}"
