#!/usr/bin/env python3
"""Bulk loader for the kontor benchmark.

Generates N synthetic contacts (21 built-in properties each), pre-encodes them as
100-input batch bodies, then sends them to POST /crm/v3/objects/contacts/batch/create
over a few concurrent keep-alive connections and reports the load rate.

Contact i (0-based) has the e-mail address  contact<i>@example<i % 100>.com ; the wrk
search script relies on that. --start S makes contacts S..S+N-1 (backup.sh loads in steps).

--object companies makes companies instead (9 properties; company i has the domain
company<i>.example.com). --ids-out FILE writes the ids the server gave, one per line.
--associate CONTACT_IDS COMPANY_IDS makes N contact-to-company associations instead (the
default type, through the v4 batch endpoint): contact k of the first file with company
k % (companies) of the second.

Output: progress lines on stderr; `key=value` result lines on stdout.
"""

import argparse
import http.client
import json
import random
import resource
import socket
import sys
import threading
import time

FIRST = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
    "Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily "
    "Andrew Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa "
    "Timothy Deborah Ana Lukas Sofia Mateo Emma Noah Mia Elias Lea Jonas"
).split()
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Mueller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann"
).split()
COMPANY_SUFFIX = ["Inc", "LLC", "GmbH", "Ltd", "Group", "Partners", "Systems", "Labs", "Co", "AG"]
JOBS = [
    "CEO", "CTO", "CFO", "VP Sales", "VP Marketing", "Account Executive", "Sales Manager",
    "Marketing Manager", "Software Engineer", "Product Manager", "Office Manager", "Consultant",
    "Head of Operations", "Purchasing Manager", "Customer Success Manager", "Analyst",
]
CITIES = [
    ("Boston", "MA", "United States"), ("Austin", "TX", "United States"),
    ("Denver", "CO", "United States"), ("Seattle", "WA", "United States"),
    ("Chicago", "IL", "United States"), ("Toronto", "ON", "Canada"),
    ("Berlin", "Berlin", "Germany"), ("Munich", "Bavaria", "Germany"),
    ("Paris", "Ile-de-France", "France"), ("Lyon", "Auvergne-Rhone-Alpes", "France"),
    ("Madrid", "Madrid", "Spain"), ("Milan", "Lombardy", "Italy"),
    ("Amsterdam", "North Holland", "Netherlands"), ("Dublin", "Leinster", "Ireland"),
    ("London", "England", "United Kingdom"), ("Sydney", "NSW", "Australia"),
]
STREETS = ["Main St", "Oak Ave", "Maple Rd", "Cedar Ln", "Park Blvd", "Elm St", "Lake Dr", "Hill Rd"]
LIFECYCLE = [
    "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
    "opportunity", "customer", "evangelist", "other",
]
LEAD_STATUS = [
    "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING",
]


def email(i):
    return f"contact{i}@example{i % 100}.com"


def contact(i, rnd):
    """The 21 properties of contact i."""
    first = FIRST[rnd.randrange(len(FIRST))]
    last = LAST[rnd.randrange(len(LAST))]
    city, state, country = CITIES[rnd.randrange(len(CITIES))]
    company_no = rnd.randrange(50_000)
    return {
        "email": email(i),
        "firstname": first,
        "lastname": last,
        "phone": f"+1-555-{rnd.randrange(10_000_000):07d}",
        "mobilephone": f"+1-555-{rnd.randrange(10_000_000):07d}",
        "fax": f"+1-555-{rnd.randrange(10_000_000):07d}",
        "company": f"{LAST[company_no % len(LAST)]} {COMPANY_SUFFIX[company_no % 10]} {company_no}",
        "jobtitle": JOBS[rnd.randrange(len(JOBS))],
        "website": f"https://www.company{company_no}.example.com",
        "address": f"{rnd.randrange(1, 10_000)} {STREETS[rnd.randrange(len(STREETS))]}",
        "city": city,
        "state": state,
        "zip": f"{rnd.randrange(10_000, 100_000)}",
        "country": country,
        "lifecyclestage": LIFECYCLE[rnd.randrange(len(LIFECYCLE))],
        "hs_lead_status": LEAD_STATUS[rnd.randrange(len(LEAD_STATUS))],
        "date_of_birth": f"{rnd.randrange(1950, 2005)}-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}",
        "num_employees": str(rnd.randrange(1, 50_000)),
        "annualrevenue": f"{rnd.randrange(10_000, 500_000_000)}.{rnd.randrange(100):02d}",
        "notes_last_contacted": (
            f"20{rnd.randrange(18, 25)}-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}"
            f"T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}.000Z"
        ),
        "hs_additional_emails": f"{first.lower()}.{last.lower()}{i}@mail{i % 7}.example.org",
    }


INDUSTRIES = [
    "COMPUTER_SOFTWARE", "HOSPITAL_HEALTH_CARE", "FINANCIAL_SERVICES", "RETAIL", "CONSTRUCTION",
    "MARKETING_AND_ADVERTISING", "LOGISTICS_AND_SUPPLY_CHAIN", "HIGHER_EDUCATION",
]


def company(i, rnd):
    """The 9 properties of company i."""
    city, state, country = CITIES[rnd.randrange(len(CITIES))]
    return {
        "name": f"{LAST[i % len(LAST)]} {COMPANY_SUFFIX[i % 10]} {i}",
        "domain": f"company{i}.example.com",
        "city": city,
        "state": state,
        "country": country,
        "industry": INDUSTRIES[rnd.randrange(len(INDUSTRIES))],
        "phone": f"+1-555-{rnd.randrange(10_000_000):07d}",
        "numberofemployees": str(rnd.randrange(1, 50_000)),
        "annualrevenue": str(rnd.randrange(10_000, 500_000_000)),
    }


def build_bodies(count, batch, seed, first=0, make=contact):
    # first=0 gives exactly the contacts of earlier versions; a later slice gets its own
    # random stream (its e-mails are still contact<first>.. onwards).
    rnd = random.Random(seed if first == 0 else f"{seed}-{first}")
    bodies = []
    for start in range(first, first + count, batch):
        n = min(batch, first + count - start)
        inputs = [{"properties": make(i, rnd)} for i in range(start, start + n)]
        bodies.append((n, json.dumps({"inputs": inputs}, separators=(",", ":")).encode()))
    return bodies


def association_bodies(count, batch, contact_ids, company_ids):
    """Bodies pairing contact k with company k % len(company_ids)."""
    if count > len(contact_ids) or not company_ids:
        raise SystemExit(f"loader: {count} associations need as many contacts and a company")
    bodies = []
    for start in range(0, count, batch):
        n = min(batch, count - start)
        inputs = [{"from": {"id": contact_ids[k]}, "to": {"id": company_ids[k % len(company_ids)]}}
                  for k in range(start, start + n)]
        bodies.append((n, json.dumps({"inputs": inputs}, separators=(",", ":")).encode()))
    return bodies


def read_ids(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Loader:
    def __init__(self, args, bodies, path, status):
        self.args = args
        self.bodies = bodies
        self.path = path
        self.status = status
        self.ids = [] if args.ids_out else None
        self.lock = threading.Lock()
        self.next = 0
        self.done_records = 0
        self.done_batches = 0
        self.latencies = []
        self.error = None
        self.stop = False
        self.deadline = None

    def take(self):
        with self.lock:
            if self.stop or self.next >= len(self.bodies):
                return None
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.stop = True
                return None
            i = self.next
            self.next += 1
            return i

    def worker(self):
        a = self.args
        headers = {
            "Authorization": f"Bearer {a.token}",
            "Content-Type": "application/json",
            "Connection": "keep-alive",
        }
        conn = None
        try:
            while True:
                i = self.take()
                if i is None:
                    return
                n, body = self.bodies[i]
                if conn is None:
                    conn = http.client.HTTPConnection(a.host, a.port, timeout=a.request_timeout)
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                t0 = time.perf_counter()
                conn.request("POST", self.path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
                dt = time.perf_counter() - t0
                if resp.status != self.status:
                    with self.lock:
                        self.stop = True
                        if self.error is None:
                            self.error = f"batch {i}: HTTP {resp.status}: {data[:400]!r}"
                    return
                ids = [r["id"] for r in json.loads(data)["results"]] if self.ids is not None else []
                with self.lock:
                    self.done_records += n
                    self.done_batches += 1
                    self.latencies.append(dt)
                    if self.ids is not None:
                        self.ids.extend(ids)
                if resp.will_close:
                    conn.close()
                    conn = None
        except Exception as e:  # noqa: BLE001 - report any transport failure
            with self.lock:
                self.stop = True
                if self.error is None:
                    self.error = f"{type(e).__name__}: {e}"
        finally:
            if conn is not None:
                conn.close()


def pct(sorted_values, p):
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values))) - 1))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start", type=int, default=0,
                    help="number of the first contact (to add contacts to an earlier load)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--max-seconds", type=float, default=3600,
                    help="stop sending new batches after this many seconds")
    ap.add_argument("--request-timeout", type=float, default=300)
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument("--object", choices=["contacts", "companies"], default="contacts")
    ap.add_argument("--ids-out", help="write the ids of the records made here, one per line")
    ap.add_argument("--associate", nargs=2, metavar=("CONTACT_IDS", "COMPANY_IDS"),
                    help="make --count associations between the records of these id files")
    ap.add_argument("--generate-only", action="store_true",
                    help="only generate and encode the bodies, report the rate and exit")
    a = ap.parse_args()

    g0 = time.perf_counter()
    if a.associate:
        what = "associations"
        path, status = "/crm/v4/associations/contacts/companies/batch/associate/default", 200
        bodies = association_bodies(a.count, a.batch, *(read_ids(f) for f in a.associate))
    else:
        what = a.object
        path, status = f"/crm/v3/objects/{a.object}/batch/create", 201
        make = contact if a.object == "contacts" else company
        bodies = build_bodies(a.count, a.batch, a.seed, a.start, make)
    gen_s = time.perf_counter() - g0
    total_bytes = sum(len(b) for _, b in bodies)
    print(f"loader: generated {a.count} {what} in {len(bodies)} batches "
          f"({total_bytes / 1e6:.1f} MB of JSON) in {gen_s:.1f} s", file=sys.stderr, flush=True)
    print(f"gen_seconds={gen_s:.3f}")
    print(f"gen_records_per_s={a.count / gen_s if gen_s else 0:.0f}")
    print(f"body_mb={total_bytes / 1e6:.1f}")
    if a.generate_only:
        return 0

    loader = Loader(a, bodies, path, status)
    threads = [threading.Thread(target=loader.worker, daemon=True) for _ in range(a.connections)]
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    loader.deadline = time.monotonic() + a.max_seconds
    for t in threads:
        t.start()
    last_report = t0
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=0.5)
        now = time.perf_counter()
        if now - last_report >= 10:
            last_report = now
            with loader.lock:
                done = loader.done_records
            print(f"loader: {done}/{a.count} {what}, {now - t0:.0f} s, "
                  f"{done / (now - t0):.0f} records/s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0

    lat = sorted(loader.latencies)
    print(f"load_records={loader.done_records}")
    print(f"load_batches={loader.done_batches}")
    print(f"load_seconds={elapsed:.3f}")
    print(f"load_records_per_s={loader.done_records / elapsed if elapsed else 0:.1f}")
    print(f"load_batch_p50_ms={pct(lat, 50) * 1000:.1f}")
    print(f"load_batch_p99_ms={pct(lat, 99) * 1000:.1f}")
    print(f"loader_cpu_seconds={cpu:.2f}")
    print(f"loader_cpu_pct={100 * cpu / elapsed if elapsed else 0:.1f}")
    partial = loader.done_records < a.count
    print(f"load_partial={1 if partial else 0}")
    if loader.error:
        print(f"loader: FAILED: {loader.error}", file=sys.stderr, flush=True)
        return 1
    if a.ids_out:
        with open(a.ids_out, "w") as f:
            f.writelines(f"{i}\n" for i in loader.ids)
    if partial:
        print(f"loader: stopped at the {a.max_seconds:.0f} s limit after {loader.done_records} {what}",
              file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
