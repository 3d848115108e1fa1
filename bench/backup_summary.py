#!/usr/bin/env python3
"""Prints the summary of the kontor backup benchmark from one results file per backend.

Each file (written by backup.sh) holds key=value lines; its name is the backend's.
Exit status 0 whatever the figures are.
"""

import os
import statistics
import sys

# backup rows/s ÷ baseline rows/s must be at least this.
SPEED_TARGET = {"sqlite": 1.5, "postgres": 0.9}
RSS_GROWTH_TARGET = 1.2  # peak RSS at the largest size ÷ at the smallest
RSS_LIMIT_MIB = 256


def read(path):
    d = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                d[k] = v
    return d


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def runs(d, n, what):
    """The values of every run, in order."""
    out = []
    r = 1
    while f"n{n}_{what}_{r}" in d:
        out.append(num(d[f"n{n}_{what}_{r}"]))
        r += 1
    return out


def ok_runs(d, n, what):
    """Values of the runs whose backup succeeded (all runs for the baseline)."""
    vals = runs(d, n, what)
    if what.startswith("backup"):
        oks = runs(d, n, "backup_ok")
        vals = [v for v, ok in zip(vals, oks) if ok == 1]
    return [v for v in vals if v is not None]


def median(vals):
    return statistics.median(vals) if vals else None


def f(v, spec, none="-"):
    return none if v is None else format(v, spec)


def mib(kb):
    return None if kb is None else kb / 1024


def verdict(ok):
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def label(n):
    n = int(n)
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1e6:g}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def backend_table(name, d):
    sizes = d.get("sizes", "").split()
    target = SPEED_TARGET[name]
    lines = []
    rows = []  # (label, [cells])

    def row(title, fn):
        rows.append((title, [fn(n) for n in sizes]))

    stats = {}
    for n in sizes:
        N = int(n)
        base = ok_runs(d, n, "baseline_s")
        back = ok_runs(d, n, "backup_s")
        rss = ok_runs(d, n, "backup_rss_kb")
        s = {
            "base": base,
            "back": back,
            "base_med": median(base),
            "back_med": median(back),
            "rss": rss,
            "rss_med": median(rss),
            "rss_all": [v for v in runs(d, n, "backup_rss_kb") if v is not None],
            "base_rss_med": median(ok_runs(d, n, "baseline_rss_kb")),
            "failed": sum(1 for v in runs(d, n, "backup_ok") if v != 1),
            "n_runs": len(runs(d, n, "backup_ok")),
        }
        s["base_rps"] = N / s["base_med"] if s["base_med"] else None
        s["back_rps"] = N / s["back_med"] if s["back_med"] else None
        s["ratio"] = s["back_rps"] / s["base_rps"] if s["back_rps"] and s["base_rps"] else None
        csv, zipb = num(d.get(f"n{n}_csv_bytes")), num(d.get(f"n{n}_zip_bytes"))
        s["csv"], s["zip"] = csv, zipb
        s["compress"] = csv / zipb if csv and zipb else None
        stats[n] = s

    def runs_txt(vals):
        return "/".join(f(v, ".2f") for v in vals)

    row("contacts", lambda n: f"{int(n):,}")
    row("loaded in this step (records/s)",
        lambda n: f"{int(num(d.get(f'n{n}_load_added')) or 0):,} ({f(num(d.get(f'n{n}_load_rps')), '.0f')})")
    row("database size on disk MiB", lambda n: f(mib(num(d.get(f"n{n}_db_bytes")) / 1024 if d.get(f"n{n}_db_bytes") else None), ".0f"))
    row("baseline wall s, median", lambda n: f(stats[n]["base_med"], ".2f"))
    row("  runs", lambda n: runs_txt(stats[n]["base"]))
    row("backup wall s, median", lambda n: f(stats[n]["back_med"], ".2f"))
    row("  runs", lambda n: runs_txt(stats[n]["back"]))
    row("  failed runs", lambda n: f"{stats[n]['failed']} of {stats[n]['n_runs']}")
    row("baseline rows/s", lambda n: f(stats[n]["base_rps"], ",.0f"))
    row("backup rows/s", lambda n: f(stats[n]["back_rps"], ",.0f"))
    row(f"backup ÷ baseline rows/s (≥ {target:g})",
        lambda n: f"{f(stats[n]['ratio'], '.2f')} {verdict(None if stats[n]['ratio'] is None else stats[n]['ratio'] >= target)}")
    row("backup peak RSS MiB, median", lambda n: f(mib(stats[n]["rss_med"]), ".1f"))
    row("  runs", lambda n: "/".join(f(mib(v), ".1f") for v in stats[n]["rss_all"]))
    row("baseline client peak RSS MiB", lambda n: f(mib(stats[n]["base_rss_med"]), ".1f"))
    row("baseline CSV MiB", lambda n: f(mib(stats[n]["csv"] / 1024) if stats[n]["csv"] else None, ".1f"))
    row("backup zip MiB", lambda n: f(mib(stats[n]["zip"] / 1024) if stats[n]["zip"] else None, ".1f"))
    row("CSV bytes ÷ zip bytes", lambda n: f(stats[n]["compress"], ".2f"))
    row("verify (last archive)",
        lambda n: ("ok " if d.get(f"n{n}_verify_ok") == "1" else "FAILED ")
        + f"{d.get(f'n{n}_verify_rows', '-')} rows, {f(num(d.get(f'n{n}_verify_s')), '.1f')} s")
    row("machine busy % (base / backup)",
        lambda n: f"{f(median(ok_runs(d, n, 'baseline_busy_pct')), '.0f')} / {f(median(ok_runs(d, n, 'backup_busy_pct')), '.0f')}")
    row("CPU s, median (baseline client / backup)",
        lambda n: f"{f(median(ok_runs(d, n, 'baseline_cpu_s')), '.2f')} / {f(median(ok_runs(d, n, 'backup_cpu_s')), '.2f')}")
    row("load average (start -> end)",
        lambda n: f"{d.get(f'n{n}_loadavg_start', '-').split()[0]} -> {d.get(f'n{n}_loadavg_end', '-').split()[0]}")

    w0 = max(len(t) for t, _ in rows)
    widths = [max(len(label(n)), *(len(c[i]) for _, c in rows)) for i, n in enumerate(sizes)]
    lines.append(f"== {name}: {d.get('db', '')}")
    lines.append(f"{'':<{w0}}  " + "  ".join(f"{label(n):>{w}}" for n, w in zip(sizes, widths)))
    for t, cells in rows:
        lines.append(f"{t:<{w0}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))

    # Memory: growth with size and the absolute limit.
    small, large = sizes[0], sizes[-1]
    growth = None
    if len(sizes) > 1 and stats[small]["rss_med"] and stats[large]["rss_med"]:
        growth = stats[large]["rss_med"] / stats[small]["rss_med"]
        lines.append(f"peak RSS {label(large)} ÷ {label(small)} (medians): {growth:.2f} "
                     f"(target ≤ {RSS_GROWTH_TARGET:g}) {verdict(growth <= RSS_GROWTH_TARGET)}")
    else:
        lines.append("peak RSS growth: - (one size only)")
    peaks = [v for n in sizes for v in stats[n]["rss_all"]]
    if peaks:
        top = max(peaks)
        lines.append(f"all backup peaks under {RSS_LIMIT_MIB} MiB: highest {mib(top):.1f} MiB "
                     f"{verdict(mib(top) < RSS_LIMIT_MIB)}")
    return lines, stats


def main(paths):
    out = []
    for p in paths:
        name = os.path.basename(p).rsplit(".", 1)[0]
        d = read(p)
        if not d.get("sizes"):
            continue
        lines, _ = backend_table(name, d)
        out.extend(lines)
        out.append("")
    print("kontor backup benchmark: `kontor backup create --wait` (job in the CLI process, server stopped)")
    print("vs. a CSV dump of the same rows (SELECT id, props ... ORDER BY id) by the database's client;")
    print("wall seconds and peak RSS from /usr/bin/time; medians over the runs.")
    print()
    print("\n".join(out).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
