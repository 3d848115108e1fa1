"""What the webhooks tests share: a receiver process (`webhook_receiver.py`), polling, kontor's
app API, the official client's webhooks APIs with `?hapikey=`, and the signature check."""

import json
import os
import subprocess
import sys
import time

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from hubspot.utils.signature import Signature
from hubspot.webhooks import SubscriptionCreateRequest

from helpers import create, make_client, unique

RECEIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webhook_receiver.py")
# How long events may take to arrive (the sender looks for work every 200 ms).
DELIVERY_TIMEOUT_S = 15.0


def wait_until(check, what, timeout: float = DELIVERY_TIMEOUT_S, interval: float = 0.05):
    """Polls `check` until it returns something truthy, which it returns; fails after `timeout`
    with `what` (or what `what()` then says) in the message."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what() if callable(what) else what}"
            )
        time.sleep(interval)


class Receiver:
    """`webhook_receiver.py` in a process of its own, and what it logged."""

    def __init__(self, folder, fail_first=0, fail_status=500, stall_first=0.0):
        name = unique("rx")
        self.log = os.path.join(folder, f"{name}.jsonl")
        self.status_file = os.path.join(folder, f"{name}.status")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                RECEIVER,
                "0",
                self.log,
                "--fail-first",
                str(fail_first),
                "--fail-status",
                str(fail_status),
                "--stall-first",
                str(stall_first),
                "--status-file",
                self.status_file,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert line.strip().isdigit(), f"the receiver did not start (said {line!r})"
        self.url = f"http://127.0.0.1:{int(line)}/hook"

    def answer(self, status: int) -> None:
        """Answers every request from now on with `status`."""
        tmp = self.status_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(status))
        os.replace(tmp, self.status_file)

    def requests(self) -> list:
        """The requests received so far, in the order they arrived."""
        try:
            with open(self.log, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def events(self) -> list:
        """Every event received, in order (a re-sent one as often as it came)."""
        return [e for r in self.requests() for e in json.loads(r["body"])]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def receivers(tmp_path):
    """Factory of receivers, all stopped after the test."""
    started = []

    def make(**kwargs) -> Receiver:
        rx = Receiver(str(tmp_path), **kwargs)
        started.append(rx)
        return rx

    yield make
    for rx in started:
        rx.stop()


# ---- kontor's app API, and the official client's webhooks APIs ----


def kontor(account, method: str, path: str, body=None):
    """A call to kontor's own API with the account's token (as a bearer token)."""
    options = {"method": method, "path": path}
    if body is not None:
        options["body"] = body
    return make_client(account.server.base_url, account.token).api_request(options)


def create_app(account, target_url=None) -> dict:
    body = {"name": unique("app")}
    if target_url is not None:
        body["targetUrl"] = target_url
    r = kontor(account, "POST", "/kontor/v1/webhooks/apps", body)
    assert r.status_code == 201, r.text
    app = r.json()
    assert app["id"].isdigit() and app["name"] == body["name"]
    assert app["targetUrl"] == target_url
    assert len(app["clientSecret"]) == 64 and int(app["clientSecret"], 16) >= 0
    return app


def hooks(account, key=None) -> HubSpot:
    """The official client as a HubSpot developer uses it: a developer key, sent as `hapikey`."""
    base = account.server.base_url
    return HubSpot(
        api_key=key or account.token, host=base, base_url=base, client_side_validation=True
    ).webhooks


def subscribe(account, app_id, event_type, property_name=None):
    s = hooks(account).subscriptions_api.create(
        app_id,
        SubscriptionCreateRequest(event_type=event_type, property_name=property_name, active=True),
    )
    assert s.event_type == event_type and s.active is True and s.property_name == property_name
    return s


def event_log(account, app_id, state=None) -> list:
    path = f"/kontor/v1/webhooks/apps/{app_id}/events?limit=1000"
    if state:
        path += f"&state={state}"
    r = kontor(account, "GET", path)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def assert_signed(rx: Receiver, secret: str) -> None:
    """Every request the receiver got carries a valid v3 signature of the app's secret."""
    requests = rx.requests()
    assert requests
    for r in requests:
        assert r["method"] == "POST" and r["path"] == "/hook"
        assert r["headers"]["content-type"].startswith("application/json")
        ts = r["headers"]["x-hubspot-request-timestamp"]
        assert abs(int(ts) / 1000 - r["at"]) < 60, (ts, r["at"])
        assert Signature.is_valid(
            signature=r["headers"]["x-hubspot-signature-v3"],
            client_secret=secret,
            request_body=r["body"],
            http_uri=rx.url,
            http_method="POST",
            signature_version="v3",
            timestamp=ts,
        ), r
        # Signed with this app's secret only.
        assert not Signature.is_valid(
            signature=r["headers"]["x-hubspot-signature-v3"],
            client_secret="0" * 64,
            request_body=r["body"],
            http_uri=rx.url,
            http_method="POST",
            signature_version="v3",
            timestamp=ts,
        )
        assert 1 <= len(json.loads(r["body"])) <= 100


def contact(client, **props):
    return client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props))
