#!/usr/bin/env bash
# The whole test suite, the README's test command (CI runs it through .ci/run): formatting,
# lints, the Rust tests (store conformance, backup consistency, API and backup tests through the
# real server, each on SQLite and on a throwaway PostgreSQL; mail through a real SMTP server), the compatibility suites with HubSpot's official Python
# and Node clients, and the console in headless Chromium. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

# Reuse a build directory outside the clone when there is one (it is created otherwise).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/kontor-target}"
mkdir -p "$CARGO_TARGET_DIR"
export CARGO_TERM_COLOR=never
KONTOR_BIN="$CARGO_TARGET_DIR/release/kontor"
export KONTOR_BIN

step() { printf '\n== %s ==\n' "$*"; }
SUITES_PASSED=0

step "system packages"
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v node >/dev/null || need_apt+=(nodejs npm)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
# A real SMTP server process for the mail tests (aiosmtpd); Debian's package where pip may
# not install into the system Python.
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check aiosmtpd 2>/dev/null || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd
    }
fi
# The fake Salesforce (its TLS listener needs trustme) serves the Rust tests of the integration
# and the client suites below.
python3 -m pip install -q --disable-pip-version-check -r tests/salesforce/python/requirements.txt
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi

step "throwaway PostgreSQL"
# shellcheck source=pg-throwaway.sh
source scripts/pg-throwaway.sh
set -euo pipefail
trap pg_throwaway_stop EXIT
echo "PostgreSQL on port $PG_PORT"

step "format and lints"
cargo fmt --all --check
cargo clippy --release --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --release --locked --workspace --all-targets

step "Rust tests: unit, store conformance (SQLite + PostgreSQL), API on SQLite"
KONTOR_TEST_POSTGRES_URL="$(pg_throwaway_createdb conformance)" KONTOR_TEST_POSTGRES_TLS_ROOT="$PG_TLS_ROOT" \
    cargo nextest run --release --locked --workspace --no-fail-fast
SUITES_PASSED=$((SUITES_PASSED + 1))

step "API, backup, restore, permission and form tests and the short fault campaign on PostgreSQL"
PG_API="$(pg_throwaway_createdb api)"
KONTOR_DATABASE_US="$PG_API" KONTOR_DATABASE_EU="$PG_API" KONTOR_DATABASE_DIRECTORY="$PG_API" \
    cargo nextest run --release --locked --workspace -E '(binary(api) | binary(search) | binary(engagements) | binary(backups) | binary(restores) | binary(permissions) | binary(sign_in) | binary(recovery) | binary(http) | binary(private_files) | binary(keys) | binary(faults) | binary(forms) | binary(merge_erase) | (binary(moves) & test(during::))) - test(/_survives_repeated_kill_9$/) - test(an_index_build_shows_its_progress_until_it_ends)' --no-fail-fast
# Alone, one at a time: every server sharing the database is a node that may take a job. A
# kill must land on the node that holds the backup's or the restore's job (whose short lease
# other nodes' statements would outlast), and an index build must wait for the one node that
# is started without job workers.
KONTOR_DATABASE_US="$PG_API" KONTOR_DATABASE_EU="$PG_API" KONTOR_DATABASE_DIRECTORY="$PG_API" \
    cargo nextest run --release --locked -p kontor --test backups --test restores --test search -E 'test(/_survives_repeated_kill_9$/) | test(an_index_build_shows_its_progress_until_it_ends)' --test-threads 1 --no-fail-fast
SUITES_PASSED=$((SUITES_PASSED + 1))

step "the Salesforce integration on PostgreSQL, against the fake Salesforce"
# Every server of this run is a node of one deployment (one key, one database), so its tests
# go one at a time, each with its own fake.
PG_SF="$(pg_throwaway_createdb salesforce)"
KONTOR_DATABASE_US="$PG_SF" KONTOR_DATABASE_EU="$PG_SF" KONTOR_DATABASE_DIRECTORY="$PG_SF" \
    cargo nextest run --release --locked -p kontor -E 'binary(salesforce) | binary(salesforce_uninstall)' -j 1 --no-fail-fast
SUITES_PASSED=$((SUITES_PASSED + 1))

step "data moves under kills: PostgreSQL to PostgreSQL, and SQLite to PostgreSQL"
PG_MOVE_US="$(pg_throwaway_createdb move_us)"
PG_MOVE_EU="$(pg_throwaway_createdb move_eu)"
KONTOR_DATABASE_US="$PG_MOVE_US" KONTOR_DATABASE_EU="$PG_MOVE_EU" KONTOR_DATABASE_DIRECTORY="$PG_MOVE_US" \
    cargo nextest run --release --locked -p kontor --test moves --no-fail-fast
KONTOR_DATABASE_EU="$(pg_throwaway_createdb move_eu_from_sqlite)" KONTOR_MOVE_KILLS=8 \
    cargo nextest run --release --locked -p kontor --test moves -E 'test(under_kills)' --no-fail-fast
SUITES_PASSED=$((SUITES_PASSED + 1))

step "compatibility: official Python client"
python3 -m pip install -q --disable-pip-version-check -r tests/compat/python/requirements.txt
python3 -m pytest -q tests/compat/python
SUITES_PASSED=$((SUITES_PASSED + 1))

step "compatibility: official Python client on PostgreSQL"
CRASH_MID_DELIVERY=tests/compat/python/test_webhooks_delivery.py::test_a_crash_mid_delivery_loses_nothing
PG_PY="$(pg_throwaway_createdb compat_python)"
KONTOR_DATABASE_US="$PG_PY" KONTOR_DATABASE_EU="$PG_PY" KONTOR_DATABASE_DIRECTORY="$PG_PY" \
    python3 -m pytest -q tests/compat/python --deselect "$CRASH_MID_DELIVERY"
# Alone: every server sharing the database (the session's server too) is a node that may
# deliver the webhooks, and the kill must land on the node that holds the delivery.
KONTOR_DATABASE_US="$PG_PY" KONTOR_DATABASE_EU="$PG_PY" KONTOR_DATABASE_DIRECTORY="$PG_PY" \
    python3 -m pytest -q "$CRASH_MID_DELIVERY"
SUITES_PASSED=$((SUITES_PASSED + 1))

step "compatibility: official Node client"
(cd tests/compat/node && npm ci --no-audit --no-fund --loglevel=error && npm test)
SUITES_PASSED=$((SUITES_PASSED + 1))

step "compatibility: official Node client on PostgreSQL"
PG_NODE="$(pg_throwaway_createdb compat_node)"
(cd tests/compat/node && KONTOR_DATABASE_US="$PG_NODE" KONTOR_DATABASE_EU="$PG_NODE" KONTOR_DATABASE_DIRECTORY="$PG_NODE" npm test)
SUITES_PASSED=$((SUITES_PASSED + 1))

step "Salesforce fake: simple-salesforce"
python3 -m pytest -q tests/salesforce/python
SUITES_PASSED=$((SUITES_PASSED + 1))

step "Salesforce fake: jsforce"
(cd tests/salesforce/node && npm ci --no-audit --no-fund --loglevel=error && npm test)
SUITES_PASSED=$((SUITES_PASSED + 1))

step "web console in headless Chromium"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm test)
SUITES_PASSED=$((SUITES_PASSED + 1))

step "single sign-on through a real OpenID provider"
(cd tests/sso && npm ci --no-audit --no-fund --loglevel=error && npm test)
SUITES_PASSED=$((SUITES_PASSED + 1))

cd "$ROOT"
step "summary"
echo "suites: $SUITES_PASSED passed, 0 failed"
