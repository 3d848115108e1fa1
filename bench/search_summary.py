#!/usr/bin/env python3
"""Prints the search benchmark's tables from its JSON lines (bench/search.sh)."""

import json
import sys
from collections import defaultdict

TARGET_P50 = {"eq": 3}
TARGET_P50_OTHER = 5
TARGET_P99 = 10
TARGET_GROWTH = 1.5


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by = defaultdict(dict)  # (backend, size) -> shape -> timing
    loads = defaultdict(dict)
    baseline = {}
    for r in rows:
        b = r["backend"]
        if "baseline_load_per_s" in r:
            baseline[b] = r
        elif "timing" in r:
            t = r["timing"]
            shape = t["shape"]
            # GET runs before and after the shapes: the median of both medians.
            if shape == "get" and "get" in by[(b, r["contacts"])]:
                g = by[(b, r["contacts"])]["get"]
                g["p50_ms"] = (g["p50_ms"] + t["p50_ms"]) / 2
                g["p99_ms"] = (g["p99_ms"] + t["p99_ms"]) / 2
            else:
                by[(b, r["contacts"])][shape] = t
        else:
            loads[b][r["contacts"]] = r
    for b in sorted(loads):
        sizes = sorted(loads[b])
        print(f"\n## {b}\n")
        print("| contacts | load records/s | index behind after the load | caught up in | bytes per contact |")
        print("| --- | --- | --- | --- | --- |")
        for n in sizes:
            l = loads[b][n]
            print(f"| {n:,} | {l['load_per_s']:,.0f} | {l['lag_after_load']:,} entries | "
                  f"{l['catch_up_ms'] / 1000:.1f} s | {l['db_bytes'] / n:,.0f} |")
        if b in baseline:
            first = loads[b][sizes[0]]["load_per_s"]
            base = baseline[b]["baseline_load_per_s"]
            ratio = first / base
            print(f"\nLoad rate of the first {sizes[0]:,}: {first:,.0f} records/s; the baseline "
                  f"binary's on the same data: {base:,.0f} records/s; ratio {ratio:.2f} "
                  f"(target >= 0.7: {'PASS' if ratio >= 0.7 else 'FAIL'})")
        print()
        head = "| shape | " + " | ".join(f"{n:,}: p50 ms (x GET) | p99 ms (x GET)" for n in sizes)
        head += f" | p50 {sizes[-1]:,} / {sizes[0]:,} | matches (median) |"
        print(head)
        print("|" + " --- |" * (2 + 2 * len(sizes) + 1))
        shapes = [s for s in by[(b, sizes[-1])] if s != "get"]
        for shape in ["get"] + shapes:
            cells = []
            for n in sizes:
                t = by[(b, n)].get(shape)
                g = by[(b, n)]["get"]
                if not t:
                    cells += ["-", "-"]
                    continue
                r50 = t["p50_ms"] / g["p50_ms"]
                r99 = t["p99_ms"] / g["p99_ms"]
                target = TARGET_P50.get(shape, TARGET_P50_OTHER)
                ok50 = "" if shape == "get" else (" ok" if r50 <= target else " OVER")
                ok99 = "" if shape == "get" else (" ok" if r99 <= TARGET_P99 else " OVER")
                cells.append(f"{t['p50_ms']:.2f} ({r50:.1f}x{ok50})")
                cells.append(f"{t['p99_ms']:.2f} ({r99:.1f}x{ok99})")
            lo, hi = by[(b, sizes[0])].get(shape), by[(b, sizes[-1])].get(shape)
            growth = hi["p50_ms"] / lo["p50_ms"] if lo and hi else None
            g = "-" if growth is None else f"{growth:.2f}" + (
                "" if shape == "get" else (" ok" if growth <= TARGET_GROWTH else " OVER"))
            total = hi["total_median"] if hi else "-"
            print(f"| {shape} | " + " | ".join(cells) + f" | {g} | {total} |")
    print(f"\nTargets: p50 <= {TARGET_P50['eq']}x GET for eq, <= {TARGET_P50_OTHER}x for the "
          f"others; p99 <= {TARGET_P99}x; p50 growth <= {TARGET_GROWTH}.")


if __name__ == "__main__":
    main(sys.argv[1])
