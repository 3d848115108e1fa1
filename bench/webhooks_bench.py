#!/usr/bin/env python3
"""Helper of bench/webhooks.sh (see bench/README.md, "Webhook benchmark").

  receive --port-file F --dir D
      The webhook receiver, its own process: a stdlib asyncio HTTP/1.1 server on 127.0.0.1
      (keep-alive, any number of connections) that answers every delivery 200 at once. A
      delivery is a POST to /<run>; per request it appends one line to D/<run>.jsonl:
      {"t": arrival (epoch s, when the body was read), "sig": 1 if X-HubSpot-Signature-v3 is
      right for the secret registered for <run> (0 if wrong, -1 if none registered),
      "events": the body as sent}. Control: POST /_secret/<run> {"url","secret"};
      GET /_stats/<run> -> {"requests","events","distinct","last_new"}.
  repeat ...
      One repeat on a running server: three fresh accounts' loads (no app; an app whose target
      is the receiver; an app with no target yet), delivery waited for and checked, the backlog
      of the third sent once its target is set, and the baseline client. Appends one JSON line
      to --results.
The tables are printed by webhooks_summary.py.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import resource
import statistics
import sys
import threading
import time
import urllib.parse

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)
import load  # noqa: E402  (bench/load.py: the contacts and the batch loader)

EVENT_TYPES = ("contact.creation", "contact.propertyChange")


def signature_v3(secret, url, body, ts):
    mac = hmac.new(secret.encode(), b"POST" + url.encode() + body + ts.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


# ---------------------------------------------------------------- the receiver

class Receiver:
    def __init__(self, folder):
        self.folder = folder
        self.runs = {}

    def run(self, name):
        r = self.runs.get(name)
        if r is None:
            r = self.runs[name] = {
                "file": open(os.path.join(self.folder, name + ".jsonl"), "ab"),
                "seen": set(), "requests": 0, "events": 0, "last_new": None,
                "url": None, "secret": None,
            }
        return r

    def handle(self, method, target, headers, body, t):
        path = urllib.parse.urlsplit(target).path.strip("/")
        if path.startswith("_secret/") and method == "POST":
            d = json.loads(body)
            r = self.run(path[8:])
            r["url"], r["secret"] = d["url"], d["secret"]
            return 200, b"{}"
        if path.startswith("_stats/"):
            r = self.run(path[7:])
            return 200, json.dumps({k: r[k] for k in ("requests", "events", "last_new")}
                                   | {"distinct": len(r["seen"])}).encode()
        if method != "POST" or not path or "/" in path or path.startswith("_"):
            return 404, b"{}"
        r = self.run(path)
        sig = -1
        if r["secret"] is not None:
            want = signature_v3(r["secret"], r["url"], body, headers.get("x-hubspot-request-timestamp", ""))
            sig = int(hmac.compare_digest(want, headers.get("x-hubspot-signature-v3", "")))
        events = json.loads(body)
        r["requests"] += 1
        r["events"] += len(events)
        seen = r["seen"]
        for e in events:
            if e["eventId"] not in seen:
                seen.add(e["eventId"])
                r["last_new"] = t
        # Newlines can only be whitespace between JSON tokens: one line per request.
        r["file"].write(b'{"t":%.6f,"sig":%d,"events":%s}\n' % (t, sig, body.replace(b"\n", b" ")))
        r["file"].flush()
        return 200, b""


async def read_chunked(reader):
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


async def serve_connection(rec, reader, writer):
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = await read_chunked(reader)
            else:
                body = await reader.readexactly(int(headers.get("content-length", "0")))
            t = time.time()
            try:
                status, out = rec.handle(method, target, headers, body, t)
            except Exception as e:  # noqa: BLE001 - a bad request is the sender's problem: 400
                status, out = 400, json.dumps({"error": str(e)}).encode()
            writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (status, b"OK" if status == 200 else b"Error", len(out), out))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def receive_main(a):
    rec = Receiver(a.dir)
    server = await asyncio.start_server(lambda r, w: serve_connection(rec, r, w), "127.0.0.1", 0,
                                        backlog=256)
    port = server.sockets[0].getsockname()[1]
    with open(a.port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.replace(a.port_file + ".tmp", a.port_file)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------- HTTP helpers

class Http:
    def __init__(self, port, token=None):
        self.port, self.token = port, token

    def call(self, method, path, body=None, want=(200, 201, 204)):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, path, None if body is None else json.dumps(body), headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status not in want:
            raise SystemExit(f"webhooks bench: {method} {path}: HTTP {resp.status}: {data[:400]!r}")
        return json.loads(data) if data else None


def proc_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])
        except (OSError, ValueError, IndexError):
            pass
    return total


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


class Cpu:
    """CPU seconds of the server, the database server (PostgreSQL: postmaster and its
    processes; 0 on SQLite), the receiver and this process."""

    HZ = os.sysconf("SC_CLK_TCK")

    def __init__(self, a):
        self.server, self.receiver, self.pg = a.server_pid, a.receiver_pid, a.pg_pidfile

    def db_pids(self):
        if not self.pg:
            return []
        try:
            with open(self.pg) as f:
                pm = int(f.readline())
        except (OSError, ValueError):
            return []
        return [pm] + children(pm)

    def sample(self):
        r = resource.getrusage(resource.RUSAGE_SELF)
        return {"t": time.monotonic(), "server": proc_ticks([self.server]) / self.HZ,
                "db": proc_ticks(self.db_pids()) / self.HZ,
                "receiver": proc_ticks([self.receiver]) / self.HZ, "client": r.ru_utime + r.ru_stime}

    @staticmethod
    def pct(s0, s1):
        dt = s1["t"] - s0["t"]
        return {k: round(100 * (s1[k] - s0[k]) / dt, 1) for k in ("server", "db", "receiver", "client")}


# ---------------------------------------------------------------- one repeat

def load_contacts(a, token, bodies, cpu, count=None):
    """Loads the bodies into the token's account as load.py does; returns figures and ids."""
    opts = argparse.Namespace(host="127.0.0.1", port=a.port, token=token, request_timeout=300,
                              ids_out=True)
    loader = load.Loader(opts, bodies, "/crm/v3/objects/contacts/batch/create", 201)
    threads = [threading.Thread(target=loader.worker, daemon=True) for _ in range(a.connections)]
    c0 = cpu.sample()
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1 = time.time()
    c1 = cpu.sample()
    count = count or a.contacts
    if loader.error or loader.done_records != count:
        raise SystemExit(f"webhooks bench: the load failed: {loader.error or loader.done_records}")
    lat = sorted(loader.latencies)
    return {"t0": t0, "t1": t1, "seconds": t1 - t0, "contacts_per_s": count / (t1 - t0),
            "batch_p50_ms": load.pct(lat, 50) * 1000, "batch_p99_ms": load.pct(lat, 99) * 1000,
            "cpu_pct": Cpu.pct(c0, c1)}, [int(i) for i in loader.ids]


def make_app(api, token, name, target, concurrency):
    app = api.call("POST", "/kontor/v1/webhooks/apps", {"name": name} | ({"targetUrl": target} if target else {}))
    q = f"?hapikey={urllib.parse.quote(token)}"
    for sub in ({"eventType": "contact.creation"}, {"eventType": "contact.propertyChange", "propertyName": "email"}):
        api.call("POST", f"/webhooks/v3/{app['id']}/subscriptions{q}", sub)
    if target:
        api.call("PUT", f"/webhooks/v3/{app['id']}/settings{q}",
                 {"targetUrl": target, "throttling": {"maxConcurrentRequests": concurrency}})
    return app


def wait_received(recv, run, expect, a):
    """Waits until the receiver has `expect` distinct events of the run, or until no new one
    came for --stall-seconds, or --max-wait seconds. Returns the last stats."""
    began = time.monotonic()
    last_count, last_change = -1, began
    while True:
        s = recv.call("GET", f"/_stats/{run}")
        now = time.monotonic()
        if s["distinct"] != last_count:
            last_count, last_change = s["distinct"], now
        if s["distinct"] >= expect or now - last_change > a.stall_seconds or now - began > a.max_wait:
            return s
        time.sleep(0.05)


def app_counts(api, app_id, until, seconds=30):
    """The app's event counts, polled until `until(counts)` or for `seconds`."""
    end = time.monotonic() + seconds
    while True:
        c = api.call("GET", f"/kontor/v1/webhooks/apps/{app_id}")["events"]
        if until(c) or time.monotonic() > end:
            return c
        time.sleep(0.25)  # each call counts the app's events: keep its load on the server low


def pctl(sorted_values, p):
    return load.pct(sorted_values, p) if sorted_values else None


def analyse(path, t0, ids=None, t_end=None):
    """Figures of one run's receiver log: delivery span from t0 to the last new event, lags
    (first arrival - occurredAt), duplicates, signatures and the expected (type, id) pairs."""
    first = {}
    requests = events = bad_sig = 0
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            requests += 1
            events += len(d["events"])
            bad_sig += d["sig"] != 1
            for e in d["events"]:
                if e["eventId"] not in first:
                    first[e["eventId"]] = (d["t"], e["occurredAt"], e["subscriptionType"], int(e["objectId"]))
    out = {"requests": requests, "events": events, "distinct": len(first), "duplicates": events - len(first),
           "bad_signatures": bad_sig, "events_per_request": events / requests if requests else 0}
    if not first:
        return out
    last = max(v[0] for v in first.values())
    out |= {"first_arrival_s": min(v[0] for v in first.values()) - t0, "last_arrival_s": last - t0,
            "events_per_s": len(first) / (last - t0)}
    if ids is not None:
        want = {(t, i) for i in ids for t in EVENT_TYPES}
        got = {(v[2], v[3]) for v in first.values()}
        out |= {"expected": len(want), "missing": len(want - got), "unexpected": len(got - want),
                "by_load_end_pct": 100 * sum(v[0] <= t_end for v in first.values()) / len(want)}
        by_time = sorted(first.values(), key=lambda v: v[1])
        lags = [v[0] - v[1] / 1000 for v in by_time]
        tenth = max(1, len(lags) // 10)
        s = sorted(lags)
        out |= {"lag_p50_s": pctl(s, 50), "lag_p95_s": pctl(s, 95), "lag_max_s": s[-1],
                "lag_first10_p50_s": statistics.median(lags[:tenth]),
                "lag_last10_p50_s": statistics.median(lags[-tenth:])}
    return out


def baseline(a, recv_port, src_log, run, cpu):
    """Sends the live run's distinct events, in eventId order and batches of 100, straight to
    the receiver with --concurrency keep-alive connections, signed like kontor signs."""
    events = {}
    with open(src_log) as f:
        for line in f:
            for e in json.loads(line)["events"]:
                events.setdefault(e["eventId"], e)
    ordered = [events[k] for k in sorted(events)]
    bodies = [json.dumps(ordered[i:i + 100], separators=(",", ":")).encode() for i in range(0, len(ordered), 100)]
    url, secret = f"http://127.0.0.1:{recv_port}/{run}", "bench-baseline-secret"
    Http(recv_port).call("POST", f"/_secret/{run}", {"url": url, "secret": secret})
    lock, state = threading.Lock(), {"next": 0, "error": None}

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", recv_port, timeout=60)
        try:
            while True:
                with lock:
                    i = state["next"]
                    state["next"] += 1
                if i >= len(bodies) or state["error"]:
                    return
                ts = str(int(time.time() * 1000))
                conn.request("POST", f"/{run}", bodies[i], {
                    "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": ts,
                    "X-HubSpot-Signature-v3": signature_v3(secret, url, bodies[i], ts)})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    state["error"] = f"HTTP {resp.status}"
        except Exception as e:  # noqa: BLE001
            state["error"] = f"{type(e).__name__}: {e}"
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.concurrency)]
    c0 = cpu.sample()
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1 = time.time()
    c1 = cpu.sample()
    if state["error"]:
        raise SystemExit(f"webhooks bench: the baseline client failed: {state['error']}")
    return {"t0": t0, "seconds": t1 - t0, "events": len(ordered), "requests": len(bodies),
            "cpu_pct": Cpu.pct(c0, c1)}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def repeat_main(a):
    recv = Http(a.receiver_port)
    cpu = Cpu(a)
    n, expect = a.contacts, 2 * a.contacts
    tokens = dict(zip(("plain", "hooked", "backlog"), a.tokens.split(",")))
    apis = {k: Http(a.port, t) for k, t in tokens.items()}
    prefix = f"{a.backend}-{a.repeat}"
    bodies = load.build_bodies(n, 100, a.seed)
    res = {"backend": a.backend, "repeat": a.repeat, "contacts": n}
    if a.warmup_token:
        # Not counted: the first load after the server's start meets cold caches.
        w = load.build_bodies(min(n, 5000), 100, a.seed)
        load_contacts(a, a.warmup_token, w, cpu, min(n, 5000))

    live_url = f"http://127.0.0.1:{a.receiver_port}/{prefix}-live"
    live = make_app(apis["hooked"], tokens["hooked"], "bench live", live_url, a.concurrency)
    recv.call("POST", f"/_secret/{prefix}-live", {"url": live["targetUrl"], "secret": live["clientSecret"]})
    held = make_app(apis["backlog"], tokens["backlog"], "bench backlog", None, a.concurrency)

    def plain():
        res["plain"], _ = load_contacts(a, tokens["plain"], bodies, cpu)
        log(f"  {prefix} no app:   {res['plain']['contacts_per_s']:,.0f} contacts/s")

    def hooked():
        res["hooked"], ids = load_contacts(a, tokens["hooked"], bodies, cpu)
        log(f"  {prefix} with app: {res['hooked']['contacts_per_s']:,.0f} contacts/s; waiting for delivery")
        s = wait_received(recv, f"{prefix}-live", expect, a)
        c = app_counts(apis["hooked"], live["id"], lambda c: c["pending"] == 0 and c["delivered"] >= expect)
        res["live"] = analyse(os.path.join(a.dir, f"{prefix}-live.jsonl"), res["hooked"]["t0"], ids,
                              res["hooked"]["t1"])
        res["live"] |= {"drain_after_load_s": (s["last_new"] or res["hooked"]["t1"]) - res["hooked"]["t1"],
                        "server": c}
        log(f"  {prefix} delivered {res['live']['distinct']}/{expect} events in "
            f"{res['live'].get('last_arrival_s', 0):.1f} s from the first write; server: {c}")

    # Alternate the order, so that neither load always meets the larger database.
    for step in ((plain, hooked) if a.repeat % 2 else (hooked, plain)):
        step()

    # The backlog: fanned out while no target is set, then sent at once.
    res["held"], ids = load_contacts(a, tokens["backlog"], bodies, cpu)
    log(f"  {prefix} app without target: {res['held']['contacts_per_s']:,.0f} contacts/s; fan-out")
    c = app_counts(apis["backlog"], held["id"], lambda c: c["pending"] >= expect, a.max_wait)
    res["held"]["fanned_out_after_load_s"] = time.time() - res["held"]["t1"]
    if c["pending"] < expect:
        raise SystemExit(f"webhooks bench: only {c['pending']} of {expect} events were made: {c}")
    run = f"{prefix}-backlog"
    url = f"http://127.0.0.1:{a.receiver_port}/{run}"
    recv.call("POST", f"/_secret/{run}", {"url": url, "secret": held["clientSecret"]})
    c0 = cpu.sample()
    t0 = time.time()
    # The target is set through HubSpot's settings API, as a client would.
    apis["backlog"].call("PUT", f"/webhooks/v3/{held['id']}/settings?hapikey={urllib.parse.quote(tokens['backlog'])}",
                         {"targetUrl": url, "throttling": {"maxConcurrentRequests": a.concurrency}})
    wait_received(recv, run, expect, a)
    c1 = cpu.sample()
    c = app_counts(apis["backlog"], held["id"], lambda c: c["pending"] == 0 and c["delivered"] >= expect)
    res["backlog"] = analyse(os.path.join(a.dir, f"{run}.jsonl"), t0) | {"server": c, "cpu_pct": Cpu.pct(c0, c1)}
    res["backlog"]["missing"] = expect - res["backlog"]["distinct"]
    log(f"  {prefix} backlog: {res['backlog']['distinct']}/{expect} events, "
        f"{res['backlog'].get('events_per_s', 0):,.0f} events/s")

    # A round takes a fraction of a second: the median of a few.
    rounds = []
    for k in range(a.baseline_rounds):
        run = f"{prefix}-base{k + 1}"
        b = baseline(a, a.receiver_port, os.path.join(a.dir, f"{prefix}-live.jsonl"), run, cpu)
        wait_received(recv, run, b["events"], a)
        got = analyse(os.path.join(a.dir, f"{run}.jsonl"), b["t0"])
        rounds.append(b | got | {"sent": b["events"], "missing": b["events"] - got.get("distinct", 0)})
    rounds.sort(key=lambda b: b.get("events_per_s", 0))
    res["baseline"] = rounds[len(rounds) // 2] | {"rounds_events_per_s": [b.get("events_per_s") for b in rounds],
                                                  "missing": sum(b["missing"] for b in rounds)}
    log(f"  {prefix} baseline: {res['baseline'].get('events_per_s', 0):,.0f} events/s (median of {len(rounds)})")
    with open(a.results, "a") as f:
        f.write(json.dumps(res) + "\n")
    bad = [k for k in ("live", "backlog", "baseline") if res[k].get("missing") or res[k].get("bad_signatures")]
    if bad or res["live"].get("unexpected"):
        log(f"  {prefix}: events missing, unexpected or badly signed in {bad or ['live']}")
        return 3
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("receive")
    r.add_argument("--port-file", required=True)
    r.add_argument("--dir", required=True)
    p = sub.add_parser("repeat")
    p.add_argument("--port", type=int, required=True, help="the kontor server's port")
    p.add_argument("--tokens", required=True, help="plain,hooked,backlog: one fresh account each")
    p.add_argument("--receiver-port", type=int, required=True)
    p.add_argument("--receiver-pid", type=int, required=True)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--pg-pidfile", default="")
    p.add_argument("--dir", required=True, help="the receiver's folder")
    p.add_argument("--backend", required=True)
    p.add_argument("--repeat", type=int, required=True)
    p.add_argument("--contacts", type=int, required=True)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--max-wait", type=float, default=600)
    p.add_argument("--stall-seconds", type=float, default=90)
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--baseline-rounds", type=int, default=3)
    p.add_argument("--warmup-token", default="", help="an account to load first, not counted")
    p.add_argument("--results", required=True)
    a = ap.parse_args()
    if a.cmd == "receive":
        asyncio.run(receive_main(a))
        return 0
    return repeat_main(a)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
