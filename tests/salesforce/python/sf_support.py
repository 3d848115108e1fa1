"""Helpers shared by the suite: HTTP sessions that trust the fake's CA, tokens, clients."""

import os
import sys

import requests
from simple_salesforce import Salesforce

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fake"))

CLIENT_ID = "kontor-test-client"
CLIENT_SECRET = "kontor-test-secret"
ADMIN = ("admin@example.com", "password")


def http_session(fake):
    s = requests.Session()
    s.verify = fake.ca
    # Without this, REQUESTS_CA_BUNDLE from the environment would override verify.
    s.trust_env = False
    return s


def password_token(fake, base=None, username=ADMIN[0], password=ADMIN[1]):
    resp = http_session(fake).post((base or fake.https) + "/services/oauth2/token", data={
        "grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return resp.json()


def client(fake, token, version="59.0"):
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                      session=http_session(fake), version=version)


def load(fake, sobject, rows):
    """Insert rows straight into the org (not an API call); returns their ids."""
    return fake.control("POST", f"/_fake/records/{sobject}", rows)["ids"]
