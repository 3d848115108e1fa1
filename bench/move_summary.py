"""Figures of bench/move.sh from the client's log and the moves' records.

    python3 move_summary.py CLIENT_LOG MOVES_JSONL BACKUP_RECORDS_PER_S

MOVES_JSONL holds one JSON object per move: {size, records, frozen_ms, total_ms, rss_kb, rows,
copy_ms, began, ended, backup_rate, frozen_keys, frozen_steps} (times in epoch ms; records: the account's records, as the
backup exported them; rows: the rows the copy wrote, of every table; backup_rate: the backup
export's rows/s on the same account just before, the baseline the copy is compared with, size
by size). The freeze a client saw in a move is from its first 477 to its first success after
it; a move in which the client met no 477 was closed for less than the client's period between
requests, and counts as that period.
"""
import json
import statistics
import sys


def client_freeze(lines, began, ended, period_ms):
    start = None
    for t, status in lines:
        if t < began or t > ended + 5000:
            continue
        if status == 477 and start is None:
            start = t
        elif 200 <= status < 300 and start is not None:
            return t - start
    return period_ms


def main():
    log, moves_file, backup_rate = sys.argv[1], sys.argv[2], float(sys.argv[3] or 0)
    period_ms = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    lines = [tuple(int(x) for x in l.split()) for l in open(log) if l.strip()]
    moves = [json.loads(l) for l in open(moves_file) if l.strip()]
    sizes = sorted({m["size"] for m in moves})
    print(f"{'contacts':>10} {'moves':>5} {'client freeze p50':>18} {'max':>8} {'server freeze p50':>18} "
          f"{'copy rows/s':>12} {'÷ export':>9} {'records/s':>10} {'÷ export':>9} {'move p50':>9} "
          f"{'mover RSS':>10}")
    p50 = {}
    for size in sizes:
        ms = [m for m in moves if m["size"] == size]
        seen = [client_freeze(lines, m["began"], m["ended"], period_ms) for m in ms]
        # Rows copied a second, of every table (records, their history, unique values,
        # associations...), against the export's rows (records) a second.
        rate = statistics.median(m["rows"] / max(m["copy_ms"], 1) * 1000 for m in ms)
        # And the stricter figure: the account's records over the copy of all its tables.
        records = statistics.median(m.get("records", size) / max(m["copy_ms"], 1) * 1000 for m in ms)
        baseline = statistics.median(m.get("backup_rate") or backup_rate for m in ms)
        p50[size] = statistics.median(seen)
        print(f"{size:>10} {len(ms):>5} {p50[size]:>16.0f}ms {max(seen):>6.0f}ms "
              f"{statistics.median(m['frozen_ms'] for m in ms):>16.0f}ms {rate:>12.0f} "
              f"{(rate / baseline if baseline else float('nan')):>9.2f} {records:>10.0f} "
              f"{(records / baseline if baseline else float('nan')):>9.2f} "
              f"{statistics.median(m['total_ms'] for m in ms) / 1000:>8.1f}s "
              f"{max(m['rss_kb'] for m in ms) / 1024:>8.1f}MiB")
    # Where the server's freeze went: the keys replayed while frozen, and each step's median.
    steps = ["fence_ms", "catch_up_ms", "files_ms", "switch_ms", "unfence_ms"]
    print(f"{'contacts':>10} {'keys frozen':>12} " + " ".join(f"{s:>12}" for s in steps))
    for size in sizes:
        ms = [m for m in moves if m["size"] == size]
        keys = statistics.median(m.get("frozen_keys", 0) for m in ms)
        cells = [statistics.median(m.get("frozen_steps", {}).get(s, 0) for m in ms) for s in steps]
        print(f"{size:>10} {keys:>12.0f} " + " ".join(f"{c:>10.0f}ms" for c in cells))
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]
        print(f"client freeze p50 at {b} ÷ at {a}: {p50[b] / max(p50[a], 1):.2f} (target ≤ 1.5)")


if __name__ == "__main__":
    main()
