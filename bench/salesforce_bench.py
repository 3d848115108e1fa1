#!/usr/bin/env python3
"""The Salesforce sync benchmark's driver (bench/salesforce.sh runs it, one backend at a time).

`load`: fills the fake Salesforce (accounts, contacts, opportunities) and freezes its clock.
`run`: connects a kontor account through the console's OAuth flow and the fake's login page,
then measures, each as one sync round started by the operators' API:
  - the initial import of everything loaded, and a baseline: the same rows, with the same
    fields, read through the same fake's query API by a plain client over one connection;
  - an incremental round of CHANGES contacts changed in Salesforce;
  - an incremental round of CHANGES contacts changed in kontor (sent to Salesforce).
Salesforce API calls are counted from the fake's request log. Prints one JSON line per
measurement to --results and exits non-zero when the synced data does not check out.
"""

import argparse
import http.client
import json
import re
import sys
import time
import urllib.parse

QUERIES = {
    "Account": "SELECT Id, SystemModstamp, OwnerId, AnnualRevenue, BillingCity, BillingCountry, BillingState, Industry, Name, NumberOfEmployees, Phone, Website FROM Account ORDER BY SystemModstamp, Id",
    "Contact": "SELECT Id, SystemModstamp, OwnerId, Email, AccountId, FirstName, LastName, MailingCity, MailingCountry, MailingPostalCode, MailingState, MailingStreet, MobilePhone, Phone, Title FROM Contact ORDER BY SystemModstamp, Id",
    "Opportunity": "SELECT Id, SystemModstamp, OwnerId, AccountId, Amount, CloseDate, Name, StageName FROM Opportunity ORDER BY SystemModstamp, Id",
}
STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote", "Closed Won", "Closed Lost"]


class Http:
    """One keep-alive connection to a base URL; no redirects followed."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)

    def request(self, method, path, body=None, headers=None, form=None):
        headers = dict(headers or {})
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, resp.getheaders(), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)
                if attempt:
                    raise

    def json(self, method, path, body=None, headers=None, ok=(200, 201, 202, 204)):
        status, _, data = self.request(method, path, body, headers)
        if status not in ok:
            sys.exit(f"{method} {path}: {status} {data[:500]!r}")
        return json.loads(data) if data else None


def header(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def cookie(headers, name):
    for v in header(headers, "Set-Cookie"):
        k, _, rest = v.partition("=")
        if k == name:
            return rest.split(";")[0]
    return None


def csrf(html):
    return re.search(r'name="_csrf" value="([^"]+)"', html).group(1)


def load(args):
    fake = Http(args.fake)
    fake.json("POST", "/_fake/clock", {"now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    fake.json("POST", "/_fake/config", {"daily_limit": 5_000_000})
    t0 = time.monotonic()
    accounts = []
    for start in range(0, args.accounts, 10_000):
        batch = [{"Name": f"Account {i}", "Industry": "Banking", "BillingCity": "Berlin", "Phone": f"555-{i:06d}"}
                 for i in range(start, min(args.accounts, start + 10_000))]
        accounts += fake.json("POST", "/_fake/records/Account", batch)["ids"]
    for start in range(0, args.contacts, 10_000):
        batch = [{"FirstName": f"First{i}", "LastName": f"Last{i}", "Email": f"contact{i}@bench{i % 100}.test",
                  "Title": "Buyer", "MailingCity": "Lyon", "Phone": f"555-{i:07d}",
                  "AccountId": accounts[i % len(accounts)] if accounts else None}
                 for i in range(start, min(args.contacts, start + 10_000))]
        fake.json("POST", "/_fake/records/Contact", batch)
    for start in range(0, args.opportunities, 10_000):
        batch = [{"Name": f"Deal {i}", "StageName": STAGES[i % len(STAGES)], "CloseDate": "2027-03-31",
                  "Amount": 1000 + i, "AccountId": accounts[i % len(accounts)] if accounts else None}
                 for i in range(start, min(args.opportunities, start + 10_000))]
        fake.json("POST", "/_fake/records/Opportunity", batch)
    print(json.dumps({"loaded_s": round(time.monotonic() - t0, 2)}))


class Kontor:
    def __init__(self, port, token):
        self.http = Http(f"http://127.0.0.1:{port}")
        self.auth = {"Authorization": f"Bearer {token}"}
        self.base = f"http://127.0.0.1:{port}"

    def status(self):
        return self.http.json("GET", "/kontor/v1/integrations/salesforce", headers=self.auth)

    def total(self, object_type):
        r = self.http.json("POST", f"/crm/v3/objects/{object_type}/search", {"limit": 1}, headers=self.auth)
        return r["total"]

    def round(self, timeout):
        """Starts a round and waits for its end; (seconds, status after)."""
        before = self.status()["health"]["lastRoundAt"]
        t0 = time.monotonic()
        self.http.json("POST", "/kontor/v1/integrations/salesforce/sync", headers=self.auth)
        while True:
            s = self.status()
            if s["health"]["lastRoundAt"] not in (None, before):
                return time.monotonic() - t0, s
            if time.monotonic() - t0 > timeout:
                sys.exit(f"no round ended within {timeout} s: {s}")
            time.sleep(0.05)


def connect(args, kontor):
    """The console's OAuth flow, as a browser would do it."""
    web = Http(kontor.base)
    st, h, body = web.request("GET", "/app/login")
    login_csrf = cookie(h, "kontor_login_csrf")
    st, h, _ = web.request("POST", "/app/login", headers={"Cookie": f"kontor_login_csrf={login_csrf}"},
                           form={"email": args.email, "password": args.password, "_csrf": csrf(body.decode())})
    session = cookie(h, "kontor_session")
    if st != 303 or not session:
        sys.exit(f"sign-in failed: {st}")
    jar = {"Cookie": f"kontor_session={session}"}
    _, _, page = web.request("GET", "/app/settings/integrations/salesforce", headers=jar)
    fake = Http(args.fake)
    fake.json("POST", "/_fake/config",
              {"redirect_uris": [f"{kontor.base}/app/settings/integrations/salesforce/callback"]})
    st, h, _ = web.request("POST", "/app/settings/integrations/salesforce/connect", headers=jar,
                           form={"_csrf": csrf(page.decode())})
    authorize = header(h, "Location")[0]
    u = urllib.parse.urlsplit(authorize)
    st, _, login = fake.request("GET", f"{u.path}?{u.query}")
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', login.decode()))
    fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
    fields.update({"username": "admin@example.com", "pw": "password"})
    st, h, _ = fake.request("POST", "/services/oauth2/authorize", form=fields)
    back = urllib.parse.urlsplit(header(h, "Location")[0])
    st, h, _ = web.request("GET", f"{back.path}?{back.query}", headers=jar)
    if st != 303 or "done=connected" not in header(h, "Location")[0]:
        sys.exit(f"the callback did not connect: {st} {h}")
    # The round a connection starts at once: with the clock frozen it reads nothing yet.
    t0 = time.monotonic()
    while kontor.status()["health"]["lastRoundAt"] is None:
        if time.monotonic() - t0 > 60:
            sys.exit("the first round never ended")
        time.sleep(0.05)


def calls(fake):
    log = fake.json("GET", "/_fake/requests")["requests"]
    return sum(1 for r in log if r["path"].startswith("/services/data/v"))


def baseline(fake_base):
    """The same rows read through the query API by a plain client: (seconds, rows, calls)."""
    fake = Http(fake_base)
    token = json.loads(fake.request("POST", "/services/oauth2/token", form={
        "grant_type": "password", "client_id": "kontor-test-client", "client_secret": "kontor-test-secret",
        "username": "admin@example.com", "password": "password"})[2])["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    t0, rows, n = time.monotonic(), 0, 0
    for soql in QUERIES.values():
        page = fake.json("GET", "/services/data/v62.0/query?" + urllib.parse.urlencode({"q": soql}), headers=auth)
        n += 1
        while True:
            rows += len(page["records"])
            if page.get("done", True):
                break
            page = fake.json("GET", page["nextRecordsUrl"], headers=auth)
            n += 1
    return time.monotonic() - t0, rows, n


def run(args):
    fake = Http(args.fake)
    kontor = Kontor(args.port, args.token)
    out = open(args.results, "a")

    def put(**kv):
        kv.update(backend=args.backend)
        out.write(json.dumps(kv) + "\n")
        out.flush()
        print(json.dumps(kv), flush=True)

    connect(args, kontor)
    total = args.accounts + args.contacts + args.opportunities
    for r in range(args.repeats):
        secs, rows, n = baseline(args.fake)
        put(kind="baseline", repeat=r + 1, seconds=round(secs, 2), records=rows, calls=n)
    fake.json("POST", "/_fake/clock", {"advance": 60})
    fake.json("DELETE", "/_fake/requests")
    secs, s = kontor.round(args.timeout)
    if s["health"]["lastError"]:
        sys.exit(f"the initial import failed: {s['health']['lastError']}")
    got = {t: kontor.total(t) for t in ("companies", "contacts", "deals")}
    want = {"companies": args.accounts, "contacts": args.contacts, "deals": args.opportunities}
    if got != want:
        sys.exit(f"imported {got}, loaded {want}")
    n = calls(fake)
    put(kind="initial", seconds=round(secs, 2), records=total, calls=n,
        records_per_s=round(total / secs), calls_per_1000=round(1000 * n / total, 2))

    token = json.loads(fake.request("POST", "/services/oauth2/token", form={
        "grant_type": "password", "client_id": "kontor-test-client", "client_secret": "kontor-test-secret",
        "username": "admin@example.com", "password": "password"})[2])["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    ids = []
    page = fake.json("GET", "/services/data/v62.0/query?" + urllib.parse.urlencode(
        {"q": f"SELECT Id FROM Contact ORDER BY Id LIMIT {args.changes * args.repeats}"}), headers=auth)
    ids = [r["Id"] for r in page["records"]]
    while not page.get("done", True):
        page = fake.json("GET", page["nextRecordsUrl"], headers=auth)
        ids += [r["Id"] for r in page["records"]]
    for r in range(args.repeats):
        # Salesforce → kontor: CHANGES contacts get a new title there.
        mine = ids[r * args.changes:(r + 1) * args.changes]
        for start in range(0, len(mine), 200):
            body = {"allOrNone": True, "records": [
                {"attributes": {"type": "Contact"}, "id": i, "Title": f"Title {r}"} for i in mine[start:start + 200]]}
            fake.json("PATCH", "/services/data/v62.0/composite/sobjects", body, headers=auth)
        fake.json("POST", "/_fake/clock", {"advance": 60})
        fake.json("DELETE", "/_fake/requests")
        secs, s = kontor.round(args.timeout)
        if s["health"]["lastError"]:
            sys.exit(f"the incremental round failed: {s['health']['lastError']}")
        n = calls(fake)
        put(kind="from_salesforce", repeat=r + 1, seconds=round(secs, 2), records=len(mine), calls=n,
            records_per_s=round(len(mine) / secs), calls_per_1000=round(1000 * n / len(mine), 2))
        # kontor → Salesforce: CHANGES contacts get a new phone here.
        found = kontor.http.json("POST", "/crm/v3/objects/contacts/search", {
            "filterGroups": [{"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": f"Title {r}"}]}],
            "limit": 200, "properties": ["email"]}, headers=kontor.auth)
        kontor_ids, after = [x["id"] for x in found["results"]], found.get("paging", {}).get("next", {}).get("after")
        while after and len(kontor_ids) < args.changes:
            found = kontor.http.json("POST", "/crm/v3/objects/contacts/search", {
                "filterGroups": [{"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": f"Title {r}"}]}],
                "limit": 200, "after": after, "properties": ["email"]}, headers=kontor.auth)
            kontor_ids += [x["id"] for x in found["results"]]
            after = found.get("paging", {}).get("next", {}).get("after")
        if len(kontor_ids) != args.changes:
            sys.exit(f"{len(kontor_ids)} contacts carry the new title, not {args.changes}")
        for start in range(0, len(kontor_ids), 100):
            kontor.http.json("POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
                {"id": i, "properties": {"phone": f"+1-{r}-{i}"}} for i in kontor_ids[start:start + 100]]},
                headers=kontor.auth)
        fake.json("POST", "/_fake/clock", {"advance": 60})
        fake.json("DELETE", "/_fake/requests")
        secs, s = kontor.round(args.timeout)
        if s["health"]["lastError"] or s["counts"]["syncErrors"]:
            sys.exit(f"the push failed: {s['health']}")
        n = calls(fake)
        check = fake.json("GET", f"/_fake/records/Contact/{mine[0]}")["record"]
        if not str(check.get("Phone", "")).startswith(f"+1-{r}-"):
            sys.exit(f"the pushed phone is not in Salesforce: {check}")
        put(kind="to_salesforce", repeat=r + 1, seconds=round(secs, 2), records=len(kontor_ids), calls=n,
            records_per_s=round(len(kontor_ids) / secs), calls_per_1000=round(1000 * n / len(kontor_ids), 2))

    uninstall_and_reassign(args, kontor, put)


def until_done(kontor, path, timeout):
    """Polls a job's document until DONE; (seconds, document)."""
    t0 = time.monotonic()
    while True:
        d = kontor.http.json("GET", path, headers=kontor.auth)
        if d["state"] == "DONE":
            return time.monotonic() - t0, d
        if d["state"] == "FAILED" or time.monotonic() - t0 > timeout:
            sys.exit(f"{path} did not finish: {d}")
        time.sleep(0.05)


def uninstall_and_reassign(args, kontor, put):
    """The uninstall (keeping the data), then every record of the Salesforce-only owner
    reassigned to a user and reverted, beside the same owner change through the batch API."""
    base = "/kontor/v1/integrations/salesforce"
    t0 = time.monotonic()
    u = kontor.http.json("POST", f"{base}/uninstall", {
        "reason": "benchmark", "confirmation": "Uninstall Salesforce",
        "pendingChanges": "DISCARD", "integrationData": "KEEP_48_HOURS"}, headers=kontor.auth)
    until_done(kontor, f"{base}/uninstall/{u['id']}", args.timeout)
    put(kind="uninstall", seconds=round(time.monotonic() - t0, 2))
    owners = kontor.http.json("GET", f"{base}/owners", headers=kontor.auth)["results"]
    owner = max(owners, key=lambda o: o["liveRecords"])
    records = owner["liveRecords"]
    me = kontor.http.json("GET", "/crm/v3/owners?" + urllib.parse.urlencode({"email": args.email}),
                          headers=kontor.auth)["results"][0]["id"]
    # The baseline: CHANGES contacts given the user by the batch API, 100 a request.
    found = kontor.http.json("POST", "/crm/v3/objects/contacts/search", {
        "filterGroups": [{"filters": [{"propertyName": "hubspot_owner_id", "operator": "EQ", "value": owner["id"]}]}],
        "limit": 200, "properties": ["email"]}, headers=kontor.auth)
    ids, after = [x["id"] for x in found["results"]], found.get("paging", {}).get("next", {}).get("after")
    while after and len(ids) < args.changes:
        found = kontor.http.json("POST", "/crm/v3/objects/contacts/search", {
            "filterGroups": [{"filters": [{"propertyName": "hubspot_owner_id", "operator": "EQ", "value": owner["id"]}]}],
            "limit": 200, "after": after, "properties": ["email"]}, headers=kontor.auth)
        ids += [x["id"] for x in found["results"]]
        after = found.get("paging", {}).get("next", {}).get("after")
    ids = ids[:args.changes]
    t0 = time.monotonic()
    for start in range(0, len(ids), 100):
        kontor.http.json("POST", "/crm/v3/objects/contacts/batch/update", {"inputs": [
            {"id": i, "properties": {"hubspot_owner_id": me}} for i in ids[start:start + 100]]}, headers=kontor.auth)
    secs = time.monotonic() - t0
    put(kind="batch_api_owner", seconds=round(secs, 2), records=len(ids), records_per_s=round(len(ids) / secs))
    records -= len(ids)
    r = kontor.http.json("POST", f"{base}/owners/reassign", {
        "assignments": [{"fromOwnerId": owner["id"], "toOwnerId": me}]}, headers=kontor.auth)
    secs, done = until_done(kontor, f"{base}/owners/reassignments/{r['id']}", args.timeout)
    if done["moved"] != records:
        sys.exit(f"the reassignment moved {done['moved']} records, not {records}")
    put(kind="reassign", seconds=round(secs, 2), records=records, records_per_s=round(records / secs))
    r = kontor.http.json("POST", f"{base}/owners/reassignments/{r['id']}/revert", headers=kontor.auth)
    secs, done = until_done(kontor, f"{base}/owners/reassignments/{r['id']}", args.timeout)
    if done["moved"] != records:
        sys.exit(f"the revert moved {done['moved']} records back, not {records}")
    put(kind="revert", seconds=round(secs, 2), records=records, records_per_s=round(records / secs))


def summary(args):
    """Medians per backend and kind, and the initial import against the baseline."""
    import statistics
    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    for backend in sorted({r["backend"] for r in rows}):
        mine = [r for r in rows if r["backend"] == backend]
        print(f"\n== Salesforce sync on {backend} ==")
        base = statistics.median(r["seconds"] for r in mine if r["kind"] == "baseline")
        for kind, label in [("initial", "initial import"), ("from_salesforce", "incremental, Salesforce → kontor"),
                            ("to_salesforce", "incremental, kontor → Salesforce")]:
            of = [r for r in mine if r["kind"] == kind]
            if not of:
                continue
            secs = statistics.median(r["seconds"] for r in of)
            recs = of[0]["records"]
            cpk = statistics.median(r["calls_per_1000"] for r in of)
            print(f"{label:36} {recs:>7} records  {secs:8.2f} s  {recs / secs:9.0f} records/s  "
                  f"{cpk:6.2f} API calls per 1,000 records (median of {len(of)})")
        for kind, label in [("reassign", "owner reassignment (one job)"), ("revert", "its revert"),
                            ("batch_api_owner", "baseline: owner change by batch API")]:
            of = [r for r in mine if r["kind"] == kind]
            if of:
                print(f"{label:36} {of[0]['records']:>7} records  {of[0]['seconds']:8.2f} s  "
                      f"{of[0]['records_per_s']:9.0f} records/s")
        rate = {r["kind"]: r["records_per_s"] for r in mine if "records_per_s" in r}
        if "reassign" in rate and "batch_api_owner" in rate:
            print(f"ratio: reassignment ÷ batch API, records/s = {rate['reassign'] / rate['batch_api_owner']:.2f}")
        for r in mine:
            if r["kind"] == "uninstall":
                print(f"{'uninstall (keep the data 48 hours)':36} {'':>7}          {r['seconds']:8.2f} s")
        initial = [r for r in mine if r["kind"] == "initial"]
        if initial:
            b = [r for r in mine if r["kind"] == "baseline"][0]
            print(f"{'baseline: the same rows read raw':36} {b['records']:>7} records  {base:8.2f} s  "
                  f"{b['records'] / base:9.0f} records/s  ({b['calls']} query calls, median of 3 reads)")
            print(f"ratio: initial import ÷ raw read of the same rows = {initial[0]['seconds'] / base:.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["load", "run", "summary"])
    ap.add_argument("--fake")
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--opportunities", type=int, default=20_000)
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--port")
    ap.add_argument("--token")
    ap.add_argument("--email")
    ap.add_argument("--password")
    ap.add_argument("--backend", default="sqlite")
    ap.add_argument("--results", default="/dev/null")
    ap.add_argument("--timeout", type=int, default=1800)
    args = ap.parse_args()
    {"load": load, "run": run, "summary": summary}[args.command](args)


if __name__ == "__main__":
    main()
