#!/usr/bin/env python3
"""Search latency on one keep-alive connection, against GET by id on the same connection.

Reads contacts loaded by load.py (ids 1..N) to draw its parameters, then times each shape
REQUESTS times with fresh random parameters (after WARMUP untimed ones, for WARMUP_SECONDS at
least: what the server makes in the background on first use is ready) and prints one JSON line
per shape: {"shape", "p50_ms", "p99_ms", "total_median", "n"}; GET by id is the shape "get".
Every answer is checked: 200, and a total of at least one where the parameters come from a
loaded contact.

Shapes (see bench/README.md, "Search benchmark"):
  eq          company EQ <a loaded contact's company>             (about N / 50,000 matches)
  and2        firstname EQ <first> AND lastname EQ <last>        (about N / 3,900)
  and2_sel    company EQ <company> AND lifecyclestage EQ <stage> (about N / 400,000)
  or3         three groups, each company EQ <a company>          (about 3 N / 50,000)
  range_page  notes_last_contacted GT <the 1,000th latest>, sorted by lastname, page 50 of 10
  token       email CONTAINS_TOKEN contact<5 digits>*            (11 at 1,000,000)
  query       query "<a loaded contact's e-mail local part>"     (1 to 11)
  query_name  query "<first> <last>"                             (about N / 3,900 and more)
"""

import argparse
import http.client
import json
import random
import statistics
import sys
import time

SHAPES = ["eq", "and2", "and2_sel", "or3", "range_page", "token", "query", "query_name"]


class Conn:
    def __init__(self, port, token):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        data = json.dumps(body) if body is not None else None
        t = time.perf_counter()
        self.c.request(method, path, body=data, headers=self.h)
        r = self.c.getresponse()
        raw = r.read()
        ms = (time.perf_counter() - t) * 1000
        if r.status != 200:
            sys.exit(f"{method} {path} {body}: {r.status} {raw[:300]!r}")
        return ms, json.loads(raw)


def eq(p, v):
    return {"propertyName": p, "operator": "EQ", "value": v}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--count", type=int, required=True, help="contacts loaded (ids 1..N)")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--warmup-seconds", type=float, default=8.0)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    c = Conn(a.port, a.token)

    # Parameters: the properties of random loaded contacts (untimed).
    sample = []
    for _ in range(400):
        _, rec = c.call("GET", f"/crm/v3/objects/contacts/{rnd.randint(1, a.count)}?properties="
                        "company,firstname,lastname,email,lifecyclestage")
        sample.append(rec["properties"])
    _, page = c.call("POST", "/crm/v3/objects/contacts/search", {
        "sorts": [{"propertyName": "notes_last_contacted", "direction": "DESCENDING"}],
        "after": 999, "limit": 1, "properties": ["notes_last_contacted"]})
    since = page["results"][0]["properties"]["notes_last_contacted"]

    def pick():
        return rnd.choice(sample)

    def body(shape):
        p = pick()
        if shape == "eq":
            return {"filterGroups": [{"filters": [eq("company", p["company"])]}]}, True
        if shape == "and2":
            return {"filterGroups": [{"filters": [eq("firstname", p["firstname"]),
                                                  eq("lastname", p["lastname"])]}]}, True
        if shape == "and2_sel":
            return {"filterGroups": [{"filters": [eq("company", p["company"]),
                                                  eq("lifecyclestage", p["lifecyclestage"])]}]}, True
        if shape == "or3":
            return {"filterGroups": [{"filters": [eq("company", pick()["company"])]}
                                     for _ in range(3)]}, True
        if shape == "range_page":
            return {"filterGroups": [{"filters": [{"propertyName": "notes_last_contacted",
                                                   "operator": "GT", "value": since}]}],
                    "sorts": [{"propertyName": "lastname", "direction": "ASCENDING"}],
                    "after": 490, "limit": 10}, True
        if shape == "token":
            local = p["email"].split("@")[0]
            stem = local[: len("contact") + min(5, len(local) - len("contact"))]
            return {"filterGroups": [{"filters": [{"propertyName": "email",
                                                   "operator": "CONTAINS_TOKEN",
                                                   "value": stem + "*"}]}]}, True
        if shape == "query":
            return {"query": p["email"].split("@")[0]}, True
        if shape == "query_name":
            return {"query": f"{p['firstname']} {p['lastname']}"}, True
        raise SystemExit(f"unknown shape {shape}")

    def run(shape):
        times, totals = [], []
        # Untimed first: WARMUP requests and at least WARMUP_SECONDS, long enough for what a
        # server prepares in the background on first use (sort keys in memory).
        warm_until = time.monotonic() + a.warmup_seconds
        i = 0
        while i < a.warmup or time.monotonic() < warm_until:
            if shape == "get":
                c.call("GET", f"/crm/v3/objects/contacts/{rnd.randint(1, a.count)}")
            else:
                c.call("POST", "/crm/v3/objects/contacts/search", body(shape)[0])
            i += 1
        for _ in range(a.requests):
            if shape == "get":
                ms, _ = c.call("GET", f"/crm/v3/objects/contacts/{rnd.randint(1, a.count)}")
                total = 1
            else:
                b, must = body(shape)
                ms, res = c.call("POST", "/crm/v3/objects/contacts/search", b)
                total = res["total"]
                if must and total < 1:
                    sys.exit(f"{shape}: no match for {b}")
            times.append(ms)
            totals.append(total)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(json.dumps({"shape": shape, "p50_ms": round(statistics.median(times), 3),
                          "p99_ms": round(p99, 3), "total_median": statistics.median(totals),
                          "n": len(times)}), flush=True)

    run("get")
    for shape in a.shapes.split(","):
        run(shape)
    run("get")


if __name__ == "__main__":
    main()
