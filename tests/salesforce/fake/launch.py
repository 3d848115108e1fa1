"""Start and stop the fake Salesforce server from a test.

    from launch import FakeSalesforce
    with FakeSalesforce() as fake:
        fake.control("POST", "/_fake/reset")
        token = requests.post(fake.https + "/services/oauth2/token", data=..., verify=fake.ca)

The process is always killed on exit, even when the test failed.
"""

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")
READY_TIMEOUT_S = 30


class FakeSalesforce:
    def __init__(self, host="127.0.0.1", ca_out=None, python=sys.executable):
        self.cmd = [python, SERVER, "--host", host]
        if ca_out:
            self.cmd += ["--ca-out", ca_out]
        self.proc = None
        self.http = self.https = self.ca = None
        self.stderr_lines = []

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Keep reading stderr so a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        ready = {}

        def read_ready():
            line = self.proc.stdout.readline()
            if line:
                ready.update(json.loads(line))
        reader = threading.Thread(target=read_ready, daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_S)
        if not ready:
            self.stop()
            raise RuntimeError("fake Salesforce did not start:\n" + "".join(self.stderr_lines))
        self.http, self.https, self.ca = ready["http"], ready["https"], ready["ca"]
        return self

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def control(self, method, path, json_body=None):
        """Call the control API over plain HTTP; returns the decoded JSON (raises on 4xx/5xx)."""
        if not path.startswith("/"):
            path = "/" + path
        if not path.startswith("/_fake/"):
            path = "/_fake" + path
        data = json.dumps(json_body).encode() if json_body is not None else None
        req = urllib.request.Request(self.http + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=120) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"control {method} {path} -> {e.code}: {e.read().decode()}") from None
