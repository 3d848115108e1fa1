#!/usr/bin/env python3
"""Prints the summary of the kontor restore benchmark from one results file per backend.

Each file (written by restore.sh) holds key=value lines; its name is the backend's.
Exit status 0 whatever the figures are.
"""

import os
import statistics
import sys

PLAN_TARGET = 0.5  # plan rows/s ÷ backup rows/s
APPLY_TARGET = 0.6  # apply rows/s ÷ bare UPDATE loop rows/s


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


def ok_runs(d, n, step, what):
    """Values of `step`'s runs that succeeded."""
    vals = runs(d, n, f"{step}_{what}")
    oks = runs(d, n, f"{step}_ok")
    return [v for v, ok in zip(vals, oks) if ok == 1 and v is not None]


def median(vals):
    return statistics.median(vals) if vals else None


def f(v, spec, none="-"):
    return none if v is None else format(v, spec)


def mib(kb):
    return None if kb is None else kb / 1024


def verdict(ratio, target):
    return "" if ratio is None else ("PASS" if ratio >= target else "MISS")


def ratio_txt(ratio, target):
    return "-" if ratio is None else f"{ratio:.2f} {verdict(ratio, target)}"


def label(n):
    n = int(n)
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1e6:g}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def stats_of(d, n):
    N = int(n)
    s = {}
    for step in ("backup", "plan", "apply", "baseline"):
        s[step] = {
            "wall": ok_runs(d, n, step, "s"),
            "rss": ok_runs(d, n, step, "rss_kb"),
            "cpu": ok_runs(d, n, step, "cpu_s"),
            "busy": ok_runs(d, n, step, "busy_pct"),
            "failed": sum(1 for v in runs(d, n, f"{step}_ok") if v != 1),
            "n_runs": len(runs(d, n, f"{step}_ok")),
        }
    s["baseline"]["loop"] = ok_runs(d, n, "baseline", "loop_s")
    s["baselinelog_loop"] = [v for v in runs(d, n, "baselinelog_loop_s") if v is not None]
    s["apply"]["job_ms"] = ok_runs(d, n, "apply", "job_ms")
    changed = ok_runs(d, n, "apply", "changed")
    s["changed"] = median(changed) if changed else None

    def rps(rows, secs):
        return rows / secs if rows and secs else None

    s["backup_rps"] = rps(N, median(s["backup"]["wall"]))
    s["plan_rps"] = rps(N, median(s["plan"]["wall"]))
    s["apply_rps"] = rps(s["changed"], median(s["apply"]["wall"]))
    s["apply_job_rps"] = rps(s["changed"], median(s["apply"]["job_ms"]) / 1000 if s["apply"]["job_ms"] else None)
    s["base_rps"] = rps(N, median(s["baseline"]["loop"]))
    s["baselog_rps"] = rps(N, median(s["baselinelog_loop"])) if s["baselinelog_loop"] else None
    s["plan_ratio"] = s["plan_rps"] / s["backup_rps"] if s["plan_rps"] and s["backup_rps"] else None
    s["apply_ratio"] = s["apply_rps"] / s["base_rps"] if s["apply_rps"] and s["base_rps"] else None
    # An apply stopped at the time limit: its rate was below what it had done by then.
    s["apply_upper"] = None
    over = [v for v in runs(d, n, "apply_timeout") if v is not None]
    limit = num(d.get("step_max_s"))
    if s["apply_rps"] is None and over and limit:
        s["apply_upper"] = max(over) / limit
    return s


def apply_txt(s):
    if s["apply_upper"] is not None:
        return f"< {s['apply_upper']:,.0f} (over the limit)"
    return f(s["apply_rps"], ",.0f")


def apply_ratio_txt(s):
    if s["apply_upper"] is not None and s["base_rps"]:
        return f"< {s['apply_upper'] / s['base_rps']:.2f} MISS"
    return ratio_txt(s["apply_ratio"], APPLY_TARGET)


def cpu_ratio(s, a, b):
    """Speed of a over b judged by the CPU seconds of their processes (same rows)."""
    ca, cb = median(s[a]["cpu"]), median(s[b]["cpu"])
    return cb / ca if ca and cb else None


def backend_table(name, d):
    sizes = d.get("sizes", "").split()
    rows = []
    stats = {n: stats_of(d, n) for n in sizes}

    def row(title, fn):
        rows.append((title, [fn(n) for n in sizes]))

    def runs_txt(vals, spec=".2f"):
        return "/".join(f(v, spec) for v in vals)

    def fails(step):
        return lambda n: f"{stats[n][step]['failed']} of {stats[n][step]['n_runs']}"

    row("contacts", lambda n: f"{int(n):,}")
    row("loaded in this step (records/s)",
        lambda n: f"{int(num(d.get(f'n{n}_load_added')) or 0):,} ({f(num(d.get(f'n{n}_load_rps')), '.0f')})")
    row("database size on disk MiB",
        lambda n: f(mib(num(d.get(f"n{n}_db_bytes")) / 1024 if d.get(f"n{n}_db_bytes") else None), ".0f"))
    row("backup create wall s, median", lambda n: f(median(stats[n]["backup"]["wall"]), ".2f"))
    row("  runs", lambda n: runs_txt(stats[n]["backup"]["wall"]))
    row("  failed runs", fails("backup"))
    row("restore plan wall s, median", lambda n: f(median(stats[n]["plan"]["wall"]), ".2f"))
    row("  runs", lambda n: runs_txt(stats[n]["plan"]["wall"]))
    row("  failed runs", fails("plan"))
    row("restore apply wall s, median", lambda n: f(median(stats[n]["apply"]["wall"]), ".2f"))
    row("  runs", lambda n: runs_txt(stats[n]["apply"]["wall"]))
    row("  job span s (import created -> finished)",
        lambda n: runs_txt([v / 1000 for v in stats[n]["apply"]["job_ms"]]))
    row("  failed runs", fails("apply"))
    row("  records changed", lambda n: f(stats[n]["changed"], ",.0f"))
    row("baseline UPDATE loop s, median", lambda n: f(median(stats[n]["baseline"]["loop"]), ".2f"))
    row("  runs", lambda n: runs_txt(stats[n]["baseline"]["loop"]))
    row("  failed runs", fails("baseline"))
    row("backup rows/s", lambda n: f(stats[n]["backup_rps"], ",.0f"))
    row("plan rows/s", lambda n: f(stats[n]["plan_rps"], ",.0f"))
    row(f"plan ÷ backup rows/s (≥ {PLAN_TARGET:g})",
        lambda n: ratio_txt(stats[n]['plan_ratio'], PLAN_TARGET))
    row("  by the processes' CPU s (informative)",
        lambda n: f(cpu_ratio(stats[n], "plan", "backup"), ".2f"))
    row("apply rows/s", lambda n: apply_txt(stats[n]))
    row("  in the job span", lambda n: f(stats[n]["apply_job_rps"], ",.0f"))
    row("baseline rows/s", lambda n: f(stats[n]["base_rps"], ",.0f"))
    row(f"apply ÷ baseline rows/s (≥ {APPLY_TARGET:g})",
        lambda n: apply_ratio_txt(stats[n]))
    row("baseline + change-log INSERT rows/s (informative)", lambda n: f(stats[n]["baselog_rps"], ",.0f"))
    row("  apply ÷ that",
        lambda n: f(stats[n]["apply_rps"] / stats[n]["baselog_rps"]
                    if stats[n]["apply_rps"] and stats[n]["baselog_rps"] else None, ".2f"))
    for step in ("backup", "plan", "apply", "baseline"):
        row(f"{step} peak RSS MiB, median", lambda n, s=step: f(mib(median(stats[n][s]["rss"])), ".1f"))
    row("CPU s, median (backup/plan/apply/baseline)",
        lambda n: " / ".join(f(median(stats[n][s]["cpu"]), ".1f") for s in ("backup", "plan", "apply", "baseline")))
    row("machine busy % (backup/plan/apply/baseline)",
        lambda n: " / ".join(f(median(stats[n][s]["busy"]), ".0f") for s in ("backup", "plan", "apply", "baseline")))
    row("load average (start -> end)",
        lambda n: f"{d.get(f'n{n}_loadavg_start', '-').split()[0]} -> {d.get(f'n{n}_loadavg_end', '-').split()[0]}")

    w0 = max(len(t) for t, _ in rows)
    widths = [max(len(label(n)), *(len(c[i]) for _, c in rows)) for i, n in enumerate(sizes)]
    lines = [f"== {name}: {d.get('db', '')}"]
    clients = {d.get(f"n{n}_baseline_client") for n in sizes} - {None}
    if clients:
        lines.append(f"   baseline client: {', '.join(sorted(clients))}")
    lines.append(f"{'':<{w0}}  " + "  ".join(f"{label(n):>{w}}" for n, w in zip(sizes, widths)))
    for t, cells in rows:
        lines.append(f"{t:<{w0}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    return lines, stats


def main(paths):
    out = []
    short = []
    for p in paths:
        name = os.path.basename(p).rsplit(".", 1)[0]
        d = read(p)
        if not d.get("sizes"):
            continue
        lines, stats = backend_table(name, d)
        out.extend(lines)
        out.append("")
        for n in d["sizes"].split():
            s = stats[n]
            short.append([
                name, label(n),
                f(s["backup_rps"], ",.0f"), f(s["plan_rps"], ",.0f"),
                ratio_txt(s["plan_ratio"], PLAN_TARGET),
                apply_txt(s), f(s["base_rps"], ",.0f"),
                apply_ratio_txt(s),
                f(mib(median(s["plan"]["rss"])), ".0f"), f(mib(median(s["apply"]["rss"])), ".0f"),
            ])
    print("kontor restore benchmark: restore firstname, lastname and city of every contact from a backup.")
    print("`kontor restore plan` and `kontor restore apply` (job in the CLI process, server stopped) vs.")
    print("`kontor backup create` (its export rate) and a bare UPDATE loop writing the same documents;")
    print("wall seconds and peak RSS from /usr/bin/time (the baseline: its timed loop), medians over the runs.")
    print()
    head = ["backend", "N", "backup r/s", "plan r/s", f"plan/backup (≥{PLAN_TARGET:g})",
            "apply r/s", "baseline r/s", f"apply/base (≥{APPLY_TARGET:g})", "plan RSS MiB", "apply RSS MiB"]
    if short:
        w = [max(len(h), *(len(r[i]) for r in short)) for i, h in enumerate(head)]
        print("  ".join(f"{h:>{x}}" for h, x in zip(head, w)))
        for r in short:
            print("  ".join(f"{c:>{x}}" for c, x in zip(r, w)))
        print()
    print("\n".join(out).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
