#!/usr/bin/env bash
# kontor upload benchmark: a CSV import of UPLOAD_BENCH_MIB MiB sent to `POST /crm/v3/imports`
# (multipart, as the official clients send it). Prints, per run and as medians: the upload's
# wall time against a baseline (`cp` of the same file into the same folder), and how much the
# server's peak memory grew while the upload was received and checked, as a ratio to the file's
# size (an upload held in memory shows ~1 or more; a streamed one ~0). Memory is read as soon as
# the answer arrives and the server is stopped, so only the request path is measured.
#
# Then the import job: a file of UPLOAD_BENCH_JOB_MIB MiB (default 16; 0 skips it) is uploaded
# and applied to the end. Per run and as medians: the job's wall time against a baseline
# (`sqlite3 .import` of the same file into a fresh database), and how much the server's peak
# memory grew over the upload and the job, as a ratio to the file (a job that reads the file whole shows
# ~1 or more; a streaming one stays near 0 whatever the size).
#
#   bash bench/upload.sh                          # 64 MiB upload, 16 MiB job, 3 runs each
#   UPLOAD_BENCH_MIB=256 UPLOAD_BENCH_JOB_MIB=64 UPLOAD_BENCH_RUNS=5 bash bench/upload.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"
MIB=${UPLOAD_BENCH_MIB:-64}
RUNS=${UPLOAD_BENCH_RUNS:-3}
JOB_MIB=${UPLOAD_BENCH_JOB_MIB:-16}
for v in MIB RUNS; do
    [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} >= 1)) || { echo "upload bench: $v must be >= 1" >&2; exit 2; }
done
[[ $JOB_MIB =~ ^[0-9]+$ ]] || { echo "upload bench: UPLOAD_BENCH_JOB_MIB must be a whole number" >&2; exit 2; }
unset KONTOR_CONFIG KONTOR_DATA_DIR KONTOR_DATABASE_US KONTOR_DATABASE_EU \
    KONTOR_DATABASE_DIRECTORY KONTOR_LISTEN KONTOR_FILES_DIR
export KONTOR_LOG=warn
# The benchmark measures the server, not the API's rate limits: none is met.
export KONTOR_API_LIMITS=off
# Messages go to the original stderr (fd 3), also from inside redirected functions.
exec 3>&2

find_kontor missing -p kontor
WORK=$(mktemp -d /tmp/kontor-upload-bench.XXXXXX)
SERVER_PID=
# The trap (bench/lib.sh) runs this, then deletes WORK.
on_cleanup() { stop_server; }
set_cleanup_trap term
use_private_kontor quiet

make_csv() {
python3 - "$1" "$2" <<'EOF'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("email,firstname\n")
    size, i = 0, 0
    while size < mib << 20:
        line = f"person{i}@example.com,Name {i}\n"
        f.write(line)
        size += len(line)
        i += 1
EOF
}
make_csv "$WORK/upload.csv" "$MIB"
BYTES=$(stat -c %s "$WORK/upload.csv")
REQUEST='{"name":"bench","files":[{"fileName":"upload.csv","fileFormat":"CSV","fileImportPage":{"hasHeader":true,"columnMappings":[{"columnName":"email","propertyName":"email","columnObjectTypeId":"0-1","idColumnType":"HUBSPOT_ALTERNATE_ID"},{"columnName":"firstname","propertyName":"firstname","columnObjectTypeId":"0-1"}]}}]}'

hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# One run's figures from start/end/cstart/cend/before/after and a file of $1 bytes: the
# measured time, the baseline's, their ratio, peak RSS growth (MiB) and growth / file size.
run_row() {
    python3 -c "
u=$end-$start; c=$cend-$cstart; g=($after-$before)/1024
print(f'{u:.3f} {c:.3f} {u/c:.2f} {g:.1f} {g*1048576/$1:.3f}')"
}

# The median of each column of the rows on standard input.
medians() {
    python3 -c "
import sys, statistics as st
rows=[list(map(float,l.split())) for l in sys.stdin if l.strip()]
print(len(rows), *[st.median(c) for c in zip(*rows)])"
}

# Starts a server on a fresh data folder with an account; sets port, token, SERVER_PID.
fresh_server() {
    start_server "$WORK/server.out" "$WORK/server.err" --data-dir "$1"
    port=$PORT
    local account
    account=$("$KONTOR" --data-dir "$1" admin account create --name Bench --region us --tier enterprise)
    token=$("$KONTOR" --data-dir "$1" admin token create --account "$account" --name bench)
}

printf '%-4s %10s %10s %8s %12s %10s\n' run upload_s cp_s ratio rss_grow_MiB grow/file
results=()
for run in $(seq 1 "$RUNS"); do
    data="$WORK/data-$run"
    fresh_server "$data"
    before=$(hwm_kib "$SERVER_PID")
    start=$(date +%s.%N)
    code=$(curl -s -o "$WORK/answer.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
        -F "importRequest=$REQUEST" -F "files=@$WORK/upload.csv" "http://127.0.0.1:$port/crm/v3/imports")
    end=$(date +%s.%N)
    after=$(hwm_kib "$SERVER_PID")
    [ "$code" = 200 ] || { echo "upload answered $code: $(cat "$WORK/answer.json")" >&2; exit 1; }
    # Stop before the job has read much: only the request path is measured.
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    cstart=$(date +%s.%N); cp "$WORK/upload.csv" "$data/copy.csv"; sync "$data/copy.csv"; cend=$(date +%s.%N)
    row=$(run_row "$BYTES")
    results+=("$row")
    printf '%-4s %10s %10s %8s %12s %10s\n' "$run" $row
    rm -rf "$data"
done
read -r n m0 m1 m2 m3 m4 <<<"$(printf '%s\n' "${results[@]}" | medians)"
python3 -c "print(f'median ($n runs, {$BYTES/1048576:.0f} MiB): upload {$m0:.3f} s ({$BYTES/1048576/$m0:.0f} MiB/s), cp {$m1:.3f} s, upload/cp {$m2:.2f}; peak RSS grew {$m3:.1f} MiB = {$m4:.3f} x the file')"

((JOB_MIB > 0)) || exit 0
make_csv "$WORK/job.csv" "$JOB_MIB"
JOB_BYTES=$(stat -c %s "$WORK/job.csv")
JOB_ROWS=$(($(wc -l <"$WORK/job.csv") - 1))
echo
printf '%-4s %10s %10s %8s %12s %10s\n' run job_s sqlite3_s ratio rss_grow_MiB grow/file
results=()
for run in $(seq 1 "$RUNS"); do
    data="$WORK/data-job-$run"
    fresh_server "$data"
    # Memory from before the upload (the job may take the file up at once); time from the
    # accepted upload to the job's end.
    before=$(hwm_kib "$SERVER_PID")
    code=$(curl -s -o "$WORK/answer.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
        -F "importRequest=$REQUEST" -F "files=@$WORK/job.csv" "http://127.0.0.1:$port/crm/v3/imports")
    [ "$code" = 200 ] || { echo "upload answered $code: $(cat "$WORK/answer.json")" >&2; exit 1; }
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/answer.json")
    start=$(date +%s.%N)
    while :; do
        state=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/crm/v3/imports/$id" |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
        case $state in DONE) break ;; FAILED|CANCELED) echo "import $id: $state" >&2; exit 1 ;; esac
        sleep 0.1
    done
    end=$(date +%s.%N)
    after=$(hwm_kib "$SERVER_PID")
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    cstart=$(date +%s.%N)
    sqlite3 "$data/baseline.db" 'CREATE TABLE contacts(email TEXT PRIMARY KEY, firstname TEXT)' \
        ".import --csv --skip 1 $WORK/job.csv contacts"
    cend=$(date +%s.%N)
    row=$(run_row "$JOB_BYTES")
    results+=("$row")
    printf '%-4s %10s %10s %8s %12s %10s\n' "$run" $row
    rm -rf "$data"
done
read -r n m0 m1 m2 m3 m4 <<<"$(printf '%s\n' "${results[@]}" | medians)"
python3 -c "print(f'median ($n runs, {$JOB_BYTES/1048576:.0f} MiB, $JOB_ROWS rows): job {$m0:.2f} s ({$JOB_ROWS/$m0:.0f} rows/s), sqlite3 .import {$m1:.2f} s, job/sqlite3 {$m2:.1f}; peak RSS grew {$m3:.1f} MiB = {$m4:.3f} x the file')"
