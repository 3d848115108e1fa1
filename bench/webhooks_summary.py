#!/usr/bin/env python3
"""Prints the webhook benchmark's table from one results file per backend (JSON lines, one per
repeat, written by `webhooks_bench.py repeat`): medians over the repeats, each repeat's figure
in parentheses. See bench/README.md, "Webhook benchmark".
"""

import json
import statistics
import sys


def med(rows, *path):
    vals = []
    for r in rows:
        v = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            vals.append(v)
    return statistics.median(vals) if vals else None


def each(rows, fmt, *path):
    out = []
    for r in rows:
        v = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        out.append("-" if v is None else format(v, fmt))
    return " ".join(out)


def f(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(x, y):
    return None if x is None or not y else x / y


def table(rows):
    s = lambda *p: med(rows, *p)  # noqa: E731
    plain, hooked, held = s("plain", "contacts_per_s"), s("hooked", "contacts_per_s"), s("held", "contacts_per_s")
    live_eps, back_eps, base_eps = s("live", "events_per_s"), s("backlog", "events_per_s"), s("baseline", "events_per_s")
    written = None if hooked is None else 2 * hooked
    sums = lambda *p: sum((r.get(p[0], {}).get(p[1]) or 0) for r in rows)  # noqa: E731
    out = [
        ("contacts per load / repeats", f"{rows[0]['contacts']:,} / {len(rows)}"),
        ("WRITE no app            contacts/s", f"{f(plain, ',.0f')}  ({each(rows, ',.0f', 'plain', 'contacts_per_s')})"),
        ("WRITE app, 2 subs       contacts/s", f"{f(hooked, ',.0f')}  ({each(rows, ',.0f', 'hooked', 'contacts_per_s')})"),
        ("WRITE with app / no app", f(ratio(hooked, plain), ".2f")),
        ("WRITE app, no target    contacts/s", f"{f(held, ',.0f')}  ({each(rows, ',.0f', 'held', 'contacts_per_s')})"),
        ("WRITE app no target / no app", f(ratio(held, plain), ".2f")),
        ("WRITE batch p50 no app / app (ms)", f"{f(s('plain', 'batch_p50_ms'), '.0f')} / {f(s('hooked', 'batch_p50_ms'), '.0f')}"),
        ("WRITE CPU no app: kontor/db/loader (%)", "/".join(f(s("plain", "cpu_pct", k), ".0f") for k in ("server", "db", "client"))),
        ("WRITE CPU app:    kontor/db/loader (%)", "/".join(f(s("hooked", "cpu_pct", k), ".0f") for k in ("server", "db", "client"))),
        ("LIVE  first write -> last event (s)", f"{f(s('live', 'last_arrival_s'), '.1f')}  (load {f(s('hooked', 'seconds'), '.1f')})"),
        ("LIVE  last event after load end (s)", f"{f(s('live', 'drain_after_load_s'), '.2f')}  ({each(rows, '.2f', 'live', 'drain_after_load_s')})"),
        ("LIVE  events received by load end (%)", f"{f(s('live', 'by_load_end_pct'), '.0f')}  ({each(rows, '.0f', 'live', 'by_load_end_pct')})"),
        ("LIVE  events/s delivered", f"{f(live_eps, ',.0f')}  ({each(rows, ',.0f', 'live', 'events_per_s')})"),
        ("LIVE  delivered / written events/s", f(ratio(live_eps, written), ".2f")),
        ("LIVE  lag p50 / p95 / max (s)", f"{f(s('live', 'lag_p50_s'), '.2f')} / {f(s('live', 'lag_p95_s'), '.2f')} / {f(s('live', 'lag_max_s'), '.2f')}"),
        ("LIVE  lag p50 first / last 10% (s)", f"{f(s('live', 'lag_first10_p50_s'), '.2f')} / {f(s('live', 'lag_last10_p50_s'), '.2f')}"
                                                f"  (last: {each(rows, '.1f', 'live', 'lag_last10_p50_s')})"),
        ("LIVE  events per request (mean)", f(s("live", "events_per_request"), ".1f")),
        ("CHECK events expected / distinct (all)", f"{sums('live', 'expected'):,} / {sums('live', 'distinct'):,}"),
        ("CHECK missing / unexpected / dups", f"{sums('live', 'missing')} / {sums('live', 'unexpected')} / {sums('live', 'duplicates')}"),
        ("CHECK bad signatures / failed (server)", f"{sums('live', 'bad_signatures') + sums('backlog', 'bad_signatures')} / "
                                                  f"{sum(r[k]['server']['failed'] for r in rows for k in ('live', 'backlog'))}"),
        ("BACKLOG fan-out done after load (s)", f(s("held", "fanned_out_after_load_s"), ".1f")),
        ("BACKLOG events/s (target set -> last)", f"{f(back_eps, ',.0f')}  ({each(rows, ',.0f', 'backlog', 'events_per_s')})"),
        ("BACKLOG missing / dups", f"{sums('backlog', 'missing')} / {sums('backlog', 'duplicates')}"),
        ("BACKLOG CPU kontor / database / receiver (%)",
         f"{f(s('backlog', 'cpu_pct', 'server'), '.0f')} / {f(s('backlog', 'cpu_pct', 'db'), '.0f')} / {f(s('backlog', 'cpu_pct', 'receiver'), '.0f')}"),
        ("BASELINE events/s (python client)", f"{f(base_eps, ',.0f')}  ({each(rows, ',.0f', 'baseline', 'events_per_s')})"),
        ("BASELINE CPU client / receiver (%)", f"{f(s('baseline', 'cpu_pct', 'client'), '.0f')} / {f(s('baseline', 'cpu_pct', 'receiver'), '.0f')}"),
        ("RATIO live events/s / baseline", f(ratio(live_eps, base_eps), ".3f")),
        ("RATIO backlog events/s / baseline", f(ratio(back_eps, base_eps), ".3f")),
    ]
    return out


def main(paths):
    per = []
    for p in paths:
        with open(p) as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        if rows:
            per.append((rows[0]["backend"], table(rows)))
    if not per:
        print("webhook benchmark: no results")
        return 1
    labels = [l for l, _ in per[0][1]]
    w0 = max(map(len, labels))
    widths = [max(len(name), *(len(v) for _, v in t)) for name, t in per]
    print("kontor webhook benchmark" + ("" if len(per) > 1 else f": {per[0][0]}")
          + "  (medians over the repeats; each repeat in parentheses)")
    header = " " * w0 + " | " + " | ".join(n.ljust(w) for (n, _), w in zip(per, widths))
    print(header)
    print("-" * len(header))
    for i, label in enumerate(labels):
        print(label.ljust(w0) + " | " + " | ".join(t[i][1].ljust(w) for (_, t), w in zip(per, widths)))
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
