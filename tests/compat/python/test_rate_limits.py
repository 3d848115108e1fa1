"""Rate limits as HubSpot's: the `X-HubSpot-RateLimit-*` headers, 429 with HubSpot's body and
`Retry-After`, search's own per-second limit, and the client's retry settings acting on them.
Runs its own server with small limits for the starter tier."""

import time
import uuid

import pytest
from hubspot import HubSpot
from hubspot.crm.objects import PublicObjectSearchRequest
from urllib3.util.retry import Retry

from conftest import running

LIMITS = "starter = { per_ten_seconds = 4, per_day = 1000, searches_per_second = 1 }"


@pytest.fixture(scope="module")
def limited():
    with running(api_limits=LIMITS) as srv:
        yield srv


def starter_token(srv):
    account = srv.cli(
        "admin", "account", "create", "--name", f"rl-{uuid.uuid4().hex[:8]}",
        "--region", "us", "--tier", "starter",
    ).splitlines()[-1]
    return srv.cli("admin", "token", "create", "--account", account, "--name", "rl").splitlines()[-1]


def client(srv, token, retry=None):
    return HubSpot(access_token=token, host=srv.base_url, base_url=srv.base_url, retry=retry)


def call(c, path, method="GET", body=None):
    options = {"method": method, "path": path}
    if body is not None:
        options["body"] = body
    return c.api_request(options)


def test_headers_count_down_and_the_limit_answers_429(limited):
    c = client(limited, starter_token(limited))
    remaining = []
    for _ in range(4):
        r = call(c, "/crm/v3/objects/contacts")
        assert r.status_code == 200
        assert r.headers["X-HubSpot-RateLimit-Max"] == "4"
        assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert r.headers["X-HubSpot-RateLimit-Daily"] == "1000"
        remaining.append(int(r.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [3, 2, 1, 0]
    r = call(c, "/crm/v3/objects/contacts")
    assert r.status_code == 429
    body = r.json()
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["correlationId"] == r.headers["X-HubSpot-Correlation-Id"]
    assert 1 <= int(r.headers["Retry-After"]) <= 10
    assert r.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_the_clients_retry_waits_out_the_search_limit(limited):
    token = starter_token(limited)
    plain = client(limited, token)
    assert call(plain, "/crm/v3/objects/contacts/search", "POST", {}).status_code == 200
    r = call(plain, "/crm/v3/objects/contacts/search", "POST", {})
    assert r.status_code == 429
    assert r.json()["message"] == "You have reached your secondly limit."
    assert r.headers["Retry-After"] == "1"
    time.sleep(1.1)
    # With the retry settings HubSpot's README shows (a search is a POST, which urllib3 does
    # not retry unless told), the client waits for the Retry-After and goes on.
    retry = Retry(total=3, status_forcelist=(429,), allowed_methods=None, backoff_factor=0.2)
    c = client(limited, token, retry)
    started = time.monotonic()
    for _ in range(2):
        assert c.crm.contacts.search_api.do_search(PublicObjectSearchRequest()).total == 0
    assert time.monotonic() - started >= 0.9, "the second search waited for the next second"
