"""A webhook receiver for the compatibility tests, run as its own process:

    python3 webhook_receiver.py PORT LOG [--fail-first N] [--fail-status CODE]
                                         [--stall-first SECONDS] [--status-file FILE]

Listens on 127.0.0.1:PORT (0: any free port) and prints the port it got as its first line.
Each request is appended to LOG as one JSON line as soon as it arrives, before any stall:
its number (from 1), method, path, headers (names in lower case), raw body, the status it is
going to get, and the time. The answer is `--fail-status` (default 500) for the first
`--fail-first` requests, then 200; when `--status-file` names a file that exists and holds a
number, that number is the answer to every request instead. The first request waits
`--stall-first` seconds before it is answered.
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("log")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-status", type=int, default=500)
    ap.add_argument("--stall-first", type=float, default=0.0)
    ap.add_argument("--status-file")
    args = ap.parse_args()

    lock = threading.Lock()
    count = [0]

    def status_from_file():
        if not args.status_file:
            return None
        try:
            with open(args.status_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with lock:
                count[0] += 1
                n = count[0]
                status = status_from_file()
                if status is None:
                    status = args.fail_status if n <= args.fail_first else 200
                stall = args.stall_first if n == 1 else 0.0
                line = {
                    "n": n,
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": raw.decode("utf-8"),
                    "status": status,
                    "stall": stall,
                    "at": time.time(),
                }
                with open(args.log, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            if stall:
                time.sleep(stall)
            body = b'{"ok":true}' if status < 400 else b'{"ok":false}'
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the sender is gone (timed out, or killed while we stalled)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
