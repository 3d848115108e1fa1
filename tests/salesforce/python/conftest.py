"""Drives the fake Salesforce server with the official simple-salesforce client.

One server process serves the whole session; every test starts from a freshly reset org
(the seeded Organization and the admin user), so tests never see each other's records.
"""

import pytest

from sf_support import client, password_token

from launch import FakeSalesforce  # noqa: E402  (sf_support put the fake on sys.path)


@pytest.fixture(scope="session")
def fake():
    with FakeSalesforce() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_org(fake):
    fake.control("POST", "/_fake/reset")
    yield


@pytest.fixture
def token(fake):
    return password_token(fake)


@pytest.fixture
def sf(fake, token):
    return client(fake, token)


@pytest.fixture
def state(fake):
    return fake.control("GET", "/_fake/state")
