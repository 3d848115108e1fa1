"""A client that writes to an account steadily while it is moved between regions, for
bench/move.sh: it updates one contact RATE times a second over one keep-alive connection and
writes one line per request (`<epoch ms> <status>`) to OUT until the file STOP exists. The
freeze as clients see it is, per move, from the first 477 to the first success after it.

    python3 move_client.py --port P --token T --id ID --rate 100 --out FILE --stop FILE
"""
import argparse
import http.client
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop", required=True)
    a = ap.parse_args()
    conn = None
    period = 1.0 / a.rate
    n = 0
    next_at = time.monotonic()
    with open(a.out, "w") as out:
        while not os.path.exists(a.stop):
            n += 1
            body = json.dumps({"properties": {"lastname": f"w{n}"}})
            status = 0
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
                conn.request("PATCH", f"/crm/v3/objects/contacts/{a.id}", body,
                             {"Authorization": f"Bearer {a.token}", "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn = None
            out.write(f"{int(time.time() * 1000)} {status}\n")
            next_at += period
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                next_at = time.monotonic()


if __name__ == "__main__":
    main()
