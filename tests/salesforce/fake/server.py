"""An in-memory fake of Salesforce's REST API for tests, served over plain HTTP and TLS.

    python3 tests/salesforce/fake/server.py [--host 127.0.0.1] [--http-port 0]
        [--https-port 0] [--ca-out PATH]

When both listeners are up it prints one JSON line, {"http": ..., "https": ..., "ca": ...},
and serves until SIGTERM. The TLS certificate comes from a throwaway CA (trustme) written
to --ca-out (or a temporary file), so clients trust it by pointing at that PEM.
"""

import argparse
import json
import os
import re
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import traceback
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import control  # noqa: E402
import rest  # noqa: E402
from auth import Auth, OAuthError  # noqa: E402
from clock import DAY_MS, Clock, format_ms  # noqa: E402
from org import Org  # noqa: E402
from store import ApiError  # noqa: E402
import ids  # noqa: E402

MIN_VERSION, MAX_VERSION = 20, 66
SEASONS = ("Winter", "Spring", "Summer")
_VERSION_RE = re.compile(r"^v(\d{2})\.0$")
LOGGED_HEADERS = ("Sforce-Auto-Assign", "Sforce-Query-Options", "Content-Type", "Authorization")
MAX_LOGGED_BODY = 65536
JSON_TYPE = "application/json;charset=UTF-8"
FORM_TYPE = "application/x-www-form-urlencoded;charset=UTF-8"


def versions():
    out = []
    for v in range(MIN_VERSION, MAX_VERSION + 1):
        season, year = SEASONS[(v - MIN_VERSION) % 3], 11 + (v - MIN_VERSION) // 3
        out.append({"label": f"{season} '{year:02d}", "url": f"/services/data/v{v}.0", "version": f"{v}.0"})
    return out


class Request:
    def __init__(self, method, target, headers, body, base_url, listener):
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path
        self.raw_query = parts.query
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        self.base_url = base_url
        self.listener = listener

    def form(self):
        text = self.body.decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.clock = Clock()
        self.urls = {}
        self.reset()

    def reset(self):
        self.clock.real()
        self.org = Org(self.clock)
        self.auth = Auth(self.org)
        self.faults = []
        self.request_log = deque(maxlen=100_000)
        self.usage = deque()   # (ms, calls) inside the rolling 24-hour window

    def used(self):
        cutoff = self.clock.now_ms() - DAY_MS
        while self.usage and self.usage[0][0] <= cutoff:
            self.usage.popleft()
        return sum(n for _, n in self.usage)

    def set_usage(self, n):
        self.usage.clear()
        if n > 0:
            self.usage.append((self.clock.now_ms(), n))


class App:
    def __init__(self, state):
        self.state = state

    def handle(self, req):
        """(status, headers, body bytes) for one request."""
        s = self.state
        if req.path.startswith("/_fake/") or req.path == "/_fake":
            with s.lock:
                body = {}
                if req.body.strip():
                    try:
                        body = json.loads(req.body)
                    except json.JSONDecodeError as e:
                        return self.json(400, {"error": f"invalid JSON: {e}"})
                parts = [unquote(p) for p in req.path[len("/_fake/"):].strip("/").split("/") if p]
                status, out = control.handle(s, req.method, parts, body)
                return self.json(status, out)
        with s.lock:
            meta = {"counted": False}
            status, headers, payload = self.route(req, meta)
            entry = {"method": req.method, "path": req.path, "query": req.raw_query, "status": status,
                     "counted": meta["counted"], "time": format_ms(s.clock.now_ms()), "listener": req.listener,
                     "headers": {h: req.headers.get(h) for h in LOGGED_HEADERS if req.headers.get(h) is not None}}
            if req.body and len(req.body) <= MAX_LOGGED_BODY:
                entry["body"] = req.body.decode("utf-8", "replace")
            s.request_log.append(entry)
            return status, headers, payload

    def json(self, status, body, headers=None):
        out = dict(headers or {})
        if status == 204 or body is None:
            return status, out, b""
        out.setdefault("Content-Type", JSON_TYPE)
        return status, out, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def fault_for(self, req):
        for fault in self.state.faults:
            if fault["count"] <= 0:
                continue
            if fault["path_contains"] and fault["path_contains"] not in req.path + "?" + req.raw_query:
                continue
            if fault["method"] and fault["method"].upper() != req.method:
                continue
            fault["count"] -= 1
            return fault
        return None

    def route(self, req, meta):
        path = req.path.rstrip("/") or "/"
        fault = self.fault_for(req)
        if fault:
            return self.json(fault["status"], [{"message": fault["message"], "errorCode": fault["errorCode"]}],
                             self.limit_header() if path.startswith("/services/data") else None)
        if path == "/services/data":
            if req.method != "GET":
                return self.json(*_err(rest.method_not_allowed(req.method, ["GET"])))
            return self.json(200, versions(), self.limit_header())
        if path.startswith("/services/data/"):
            return self.data(req, path, meta)
        if path.startswith("/services/oauth2/"):
            return self.oauth(req, path[len("/services/oauth2/"):])
        if path.startswith("/id/"):
            return self.identity(req, path[len("/id/"):].split("/"))
        return self.json(*_err(rest.not_found()))

    def limit_header(self, used=None):
        s = self.state
        used = s.used() if used is None else used
        return {"Sforce-Limit-Info": f"api-usage={used}/{s.org.config['daily_limit']}"}

    def data(self, req, path, meta):
        s = self.state
        parts = [unquote(p) for p in path[len("/services/data/"):].split("/")]
        m = _VERSION_RE.match(parts[0])
        if not m or not MIN_VERSION <= int(m.group(1)) <= MAX_VERSION:
            return self.json(*_err(rest.not_found()), self.limit_header())
        token = s.auth.bearer(req.headers.get("Authorization"))
        if token is None:
            return self.json(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                             self.limit_header())
        limit = s.org.config["daily_limit"]
        used = s.used()
        if used >= limit:
            return self.json(403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                             self.limit_header(used))
        s.usage.append((s.clock.now_ms(), 1))
        meta["counted"] = True
        s.org.auto_purge()
        used += 1
        call = rest.Call(s.org, req, parts[0][1:], parts[1:], token, (used, limit))
        try:
            status, body, headers = rest.dispatch(call)
        except ApiError as e:
            status, body, headers = e.status, e.body, e.headers
        return self.json(status, body, {**self.limit_header(used), **(headers or {})})

    def oauth(self, req, name):
        s = self.state
        base = req.base_url
        try:
            if name == "authorize":
                if req.method == "GET":
                    params = {k: v[0] for k, v in req.query.items()}
                    status, headers, text = s.auth.authorize_get(params)
                elif req.method == "POST":
                    status, headers, text = s.auth.authorize_post(req.form())
                else:
                    raise OAuthError("invalid_request", "must use HTTP GET or POST")
                return status, headers, text.encode("utf-8")
            if name == "token":
                if req.method != "POST":
                    raise OAuthError("invalid_request", "must use HTTP POST")
                return self.json(200, s.auth.token(req.form(), req.headers, base))
            if name == "revoke":
                try:
                    if req.method not in ("GET", "POST"):
                        raise OAuthError("invalid_request", "must use HTTP GET or POST")
                    token = (req.form() if req.method == "POST" else {k: v[0] for k, v in req.query.items()}).get("token")
                    s.auth.revoke(token or "")
                except OAuthError as e:
                    # Unlike the token endpoint, revoke answers its errors form-encoded:
                    # error=unsupported_token_type&error_description=this%20token%20type%20is%20not%20supported
                    return e.status, {"Content-Type": FORM_TYPE}, urlencode(e.body, quote_via=quote).encode()
                return 200, {"Content-Type": JSON_TYPE}, b""
            if name == "userinfo":
                info = s.auth.bearer(req.headers.get("Authorization"))
                if info is None:
                    return 403, {"Content-Type": "text/plain;charset=UTF-8"}, b"Bad_OAuth_Token"
                return self.json(200, s.auth.userinfo(info, base))
        except OAuthError as e:
            return self.json(e.status, e.body)
        return self.json(404, {"error": "not_found", "error_description": "unknown OAuth endpoint"})

    def identity(self, req, parts):
        s = self.state
        info = s.auth.bearer(req.headers.get("Authorization"))
        if info is None:
            return 403, {"Content-Type": "text/plain;charset=UTF-8"}, b"Bad_OAuth_Token"
        if len(parts) != 2 or ids.normalize(parts[0]) != s.org.org_id or ids.normalize(parts[1]) != info["user_id"]:
            return 403, {"Content-Type": "text/plain;charset=UTF-8"}, b"Bad_Id"
        return self.json(200, s.auth.identity(info, req.base_url))


def _err(e):
    return e.status, e.body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write with Nagle off, or keep-alive clients stall on
    # delayed ACKs for tens of milliseconds per call.
    disable_nagle_algorithm = True
    wbufsize = -1

    def version_string(self):
        return "sfdcedge"

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _any(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.send_error(400)
            return
        req = Request(self.command, self.path, self.headers, body, self.server.base_url, self.server.listener)
        try:
            status, headers, payload = self.server.app.handle(req)
        except Exception as e:  # a bug in the fake must still answer, and say so
            status, headers, payload = 500, {"Content-Type": JSON_TYPE}, json.dumps(
                [{"message": f"fake server error: {e!r}", "errorCode": "UNKNOWN_EXCEPTION"}]).encode()
            traceback.print_exc()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if status != 204 and status != 304:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and status != 204:
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = _any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients that drop a connection or fail the TLS handshake are not the fake's problem.
        pass


def make_tls_context(ca_out):
    import trustme
    ca = trustme.CA(organization_name="kontor fake Salesforce CA")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    made = None
    if ca_out is None:
        # A folder of its own, removed again when the server stops.
        made = tempfile.mkdtemp(prefix="fake-salesforce-")
        ca_out = os.path.join(made, "ca.pem")
    ca.cert_pem.write_to_path(ca_out)
    return ctx, os.path.abspath(ca_out), made


def main(argv=None):
    ap = argparse.ArgumentParser(description="In-memory fake Salesforce REST server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--https-port", type=int, default=0)
    ap.add_argument("--ca-out", default=None)
    args = ap.parse_args(argv)

    state = State()
    app = App(state)
    ctx, ca_path, made = make_tls_context(args.ca_out)
    plain = Server((args.host, args.http_port), Handler)
    secure = Server((args.host, args.https_port), Handler)
    # The handshake runs lazily in the connection's own thread, so one slow client cannot
    # hold up the accept loop.
    secure.socket = ctx.wrap_socket(secure.socket, server_side=True, do_handshake_on_connect=False)
    for srv, scheme in ((plain, "http"), (secure, "https")):
        srv.app = app
        srv.listener = scheme
        srv.base_url = f"{scheme}://{args.host}:{srv.server_address[1]}"
        state.urls[scheme] = srv.base_url
    threads = [threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
               for srv in (plain, secure)]
    for t in threads:
        t.start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(json.dumps({"http": plain.base_url, "https": secure.base_url, "ca": ca_path}), flush=True)
    while not stop.wait(0.5):
        pass
    for srv in (plain, secure):
        srv.shutdown()
        srv.server_close()
    if made:
        shutil.rmtree(made, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
