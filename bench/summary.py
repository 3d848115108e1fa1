#!/usr/bin/env python3
"""Prints the kontor benchmark's summary table from one results file per backend.

Each file (written by run.sh) holds key=value lines; its name is the backend's.
"""

import os
import sys


def read(path):
    d = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                d[k] = v
    return d


def num(d, k):
    try:
        return float(d[k])
    except (KeyError, ValueError):
        return None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def ms(d, k):
    v = num(d, k)
    return None if v is None else v / 1000


def ratio(a, b):
    return None if a is None or not b else a / b


def rows(d):
    hz_rps, hz_p50 = num(d, "healthz_rps"), num(d, "healthz_p50_us")
    get_rps, get_p50 = num(d, "get_rps"), num(d, "get_p50_us")
    se_rps, se_p50 = num(d, "search_rps"), num(d, "search_p50_us")
    rss = num(d, "server_peak_rss_kb")
    db = num(d, "db_bytes")
    errors = 0
    for k, v in d.items():
        if "_errors_" in k:
            errors += int(float(v))
    partial = d.get("load_partial") == "1"
    out = [
        ("database", d.get("db", "-")),
        ("contacts loaded", fmt(num(d, "load_records"), ",.0f") + (" (PARTIAL: time limit)" if partial else "")),
        ("LOAD  time (s)", fmt(num(d, "load_seconds"), ".1f")),
        ("LOAD  records/s", fmt(num(d, "load_records_per_s"), ",.0f")),
        ("LOAD  batch p50 / p99 (ms)", f"{fmt(num(d, 'load_batch_p50_ms'), '.1f')} / {fmt(num(d, 'load_batch_p99_ms'), '.1f')}"),
        ("LOAD  CPU kontor / database / loader (% of a core)",
         f"{fmt(num(d, 'server_load_cpu_pct'), '.0f')} / {fmt(num(d, 'db_load_cpu_pct'), '.0f')} / {fmt(num(d, 'loader_cpu_pct'), '.0f')}"),
        ("GET by id       req/s", fmt(get_rps, ",.0f")),
        ("GET by id       p50 / p99 (ms)", f"{fmt(ms(d, 'get_p50_us'), '.2f')} / {fmt(ms(d, 'get_p99_us'), '.2f')}"),
        ("search by email req/s", fmt(se_rps, ",.0f")),
        ("search by email p50 / p99 (ms)", f"{fmt(ms(d, 'search_p50_us'), '.2f')} / {fmt(ms(d, 'search_p99_us'), '.2f')}"),
        ("/healthz        req/s", fmt(hz_rps, ",.0f")),
        ("/healthz        p50 / p99 (ms)", f"{fmt(ms(d, 'healthz_p50_us'), '.2f')} / {fmt(ms(d, 'healthz_p99_us'), '.2f')}"),
        ("GET    req/s / healthz req/s", fmt(ratio(get_rps, hz_rps), ".2f")),
        ("GET    p50 / healthz p50", fmt(ratio(get_p50, hz_p50), ".2f") + "x"),
        ("search req/s / healthz req/s", fmt(ratio(se_rps, hz_rps), ".2f")),
        ("search p50 / healthz p50", fmt(ratio(se_p50, hz_p50), ".2f") + "x"),
        ("search p50 / GET p50 (target <= 3x)", fmt(ratio(se_p50, get_p50), ".2f") + "x"),
        ("wrk errors (non-2xx, socket)", str(errors)),
        ("server peak RSS (VmHWM, MiB)", fmt(None if rss is None else rss / 1024, ".1f")),
        ("database size on disk (MiB)", fmt(None if db is None else db / 1048576, ".1f")),
    ]
    if num(d, "vacuum_seconds") is not None:
        out.append(("post-load VACUUM ANALYZE (s)", fmt(num(d, "vacuum_seconds"), ".0f")))
    return out


def main(paths):
    backends = [(os.path.splitext(os.path.basename(p))[0], read(p)) for p in paths]
    table = [rows(d) for _, d in backends]
    labels = [label for label, _ in table[0]]
    width0 = max(len(l) for l in labels)
    widths = [max(len(name), max(len(v) for _, v in t)) for (name, _), t in zip(backends, table)]
    title = "kontor benchmark summary" if len(backends) > 1 else f"kontor benchmark: {backends[0][0]}"
    print(title)
    header = " " * width0 + " | " + " | ".join(n.rjust(w) for (n, _), w in zip(backends, widths))
    print(header)
    print("-" * len(header))
    for i, label in enumerate(labels):
        print(label.ljust(width0) + " | " + " | ".join(t[i][1].rjust(w) for t, w in zip(table, widths)))
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
