"""OAuth: token grants, the web-server login flow, refresh rotation, revocation, identity."""

import base64
import hashlib
import hmac
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from simple_salesforce.exceptions import SalesforceExpiredSession

from sf_support import CLIENT_ID, CLIENT_SECRET, client, http_session, password_token

REDIRECT = "http://127.0.0.1/callback"


class FormReader(HTMLParser):
    """The login form's action and inputs, as a browser would submit them."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.inputs = {}
        self.ids = set()
        self.error = None
        self._in_error = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        if tag == "input":
            self.ids.add(a.get("id"))
            if a.get("name") and a.get("type") != "submit":
                self.inputs[a["name"]] = a.get("value", "")
        if a.get("id") == "error":
            self._in_error = True

    def handle_data(self, data):
        if self._in_error:
            self.error = (self.error or "") + data

    def handle_endtag(self, tag):
        self._in_error = False


def read_form(text):
    reader = FormReader()
    reader.feed(text)
    return reader


def authorize(fake, s, state="xyz-123"):
    return s.get(fake.https + "/services/oauth2/authorize", params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "state": state})


def login(fake, s, page, username, password):
    form = read_form(page.text)
    data = dict(form.inputs, username=username, pw=password)
    return s.post(fake.https + form.action, data=data, allow_redirects=False)


def test_password_grant_answers_the_documented_token_shape(fake):
    token = password_token(fake)
    assert list(token) == ["access_token", "refresh_token", "signature", "scope", "instance_url", "id",
                           "token_type", "issued_at"]
    state = fake.control("GET", "/_fake/state")
    assert token["instance_url"] == fake.https
    assert token["id"] == f"{fake.https}/id/{state['orgId']}/{state['adminUserId']}"
    assert token["access_token"].startswith(state["orgId"][:15] + "!")
    assert token["token_type"] == "Bearer"
    assert token["issued_at"].isdigit() and len(token["issued_at"]) == 13
    # Salesforce signs id + issued_at with the consumer secret (HMAC-SHA256, base64).
    expected = base64.b64encode(hmac.new(CLIENT_SECRET.encode(), (token["id"] + token["issued_at"]).encode(),
                                         hashlib.sha256).digest()).decode()
    assert token["signature"] == expected


def test_instance_url_is_the_listener_the_token_request_came_in_on(fake):
    assert password_token(fake, base=fake.http)["instance_url"] == fake.http


def test_token_endpoint_errors(fake):
    s = http_session(fake)
    url = fake.https + "/services/oauth2/token"
    base = {"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "username": "admin@example.com", "password": "password"}
    cases = [
        ({"client_secret": "nope"}, "invalid_client"),
        ({"client_id": "someone-else"}, "invalid_client_id"),
        ({"password": "wrong"}, "invalid_grant"),
        ({"username": "nobody@example.com"}, "invalid_grant"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
    ]
    for change, error in cases:
        resp = s.post(url, data={**base, **change})
        assert resp.status_code == 400, change
        assert resp.json()["error"] == error, change
        assert resp.json()["error_description"]


def test_web_server_flow_through_the_login_page(fake):
    s = http_session(fake)
    page = authorize(fake, s)
    assert page.status_code == 200
    form = read_form(page.text)
    assert {"username", "password", "Login"} <= form.ids
    assert form.inputs["redirect_uri"] == REDIRECT

    wrong = login(fake, s, page, "admin@example.com", "not-the-password")
    assert wrong.status_code == 200
    assert "check your username and password" in read_form(wrong.text).error

    ok = login(fake, s, page, "admin@example.com", "password")
    assert ok.status_code == 302
    location = urlsplit(ok.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    params = parse_qs(location.query)
    assert params["state"] == ["xyz-123"]
    code = params["code"][0]

    exchange = {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT}
    token = s.post(fake.https + "/services/oauth2/token", data=exchange)
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["refresh_token"] and body["instance_url"] == fake.https
    sf = client(fake, body)
    assert sf.query("SELECT Username FROM User")["records"][0]["Username"] == "admin@example.com"

    again = s.post(fake.https + "/services/oauth2/token", data=exchange)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_pkce_code_needs_its_verifier(fake):
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    s = http_session(fake)
    codes = []
    for _ in range(2):
        page = s.get(fake.https + "/services/oauth2/authorize", params={
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        ok = login(fake, s, page, "admin@example.com", "password")
        codes.append(parse_qs(urlsplit(ok.headers["Location"]).query)["code"][0])
    exchange = {"grant_type": "authorization_code", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "redirect_uri": REDIRECT}
    wrong = s.post(fake.https + "/services/oauth2/token", data={**exchange, "code": codes[0], "code_verifier": "x" * 50})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    right = s.post(fake.https + "/services/oauth2/token", data={**exchange, "code": codes[1], "code_verifier": verifier})
    assert right.status_code == 200 and right.json()["access_token"]


def test_authorize_refuses_unknown_client_and_unregistered_redirect(fake):
    s = http_session(fake)
    bad_client = s.get(fake.https + "/services/oauth2/authorize", params={
        "response_type": "code", "client_id": "intruder", "redirect_uri": REDIRECT})
    assert bad_client.status_code == 400 and "invalid_client_id" in bad_client.text
    assert 'id="username"' not in bad_client.text
    bad_redirect = s.get(fake.https + "/services/oauth2/authorize", params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": "https://evil.example/cb"})
    assert bad_redirect.status_code == 400 and "redirect_uri_mismatch" in bad_redirect.text


def test_code_must_be_redeemed_with_the_same_redirect_uri(fake):
    fake.control("POST", "/_fake/config", {"redirect_uris": [REDIRECT, "http://127.0.0.1/other"]})
    s = http_session(fake)
    ok = login(fake, s, authorize(fake, s), "admin@example.com", "password")
    code = parse_qs(urlsplit(ok.headers["Location"]).query)["code"][0]
    resp = s.post(fake.https + "/services/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "redirect_uri": "http://127.0.0.1/other"})
    assert resp.status_code == 400 and resp.json()["error"] == "redirect_uri_mismatch"


def refresh(fake, refresh_token):
    return http_session(fake).post(fake.https + "/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})


def test_refresh_without_rotation_returns_no_refresh_token(fake, token):
    first = refresh(fake, token["refresh_token"])
    assert first.status_code == 200
    assert "refresh_token" not in first.json()
    assert first.json()["access_token"] != token["access_token"]
    # The same refresh token keeps working.
    assert refresh(fake, token["refresh_token"]).status_code == 200


def test_refresh_token_rotation(fake, token):
    fake.control("POST", "/_fake/config", {"rotate_refresh_tokens": True})
    rotated = refresh(fake, token["refresh_token"])
    assert rotated.status_code == 200
    new_refresh = rotated.json()["refresh_token"]
    assert new_refresh != token["refresh_token"]
    old = refresh(fake, token["refresh_token"])
    assert old.status_code == 400
    assert old.json() == {"error": "invalid_grant", "error_description": "expired access/refresh token"}
    assert refresh(fake, new_refresh).status_code == 200
    sf = client(fake, rotated.json())
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 1


def test_revoking_a_refresh_token_kills_its_access_tokens(fake, token):
    sf = client(fake, token)
    sf.query("SELECT Id FROM User")
    s = http_session(fake)
    resp = s.post(fake.https + "/services/oauth2/revoke", data={"token": token["refresh_token"]})
    assert resp.status_code == 200
    with pytest.raises(SalesforceExpiredSession) as err:
        sf.query("SELECT Id FROM User")
    assert err.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    tokens = {t["token"]: t for t in fake.control("GET", "/_fake/tokens")["tokens"]}
    assert tokens[token["refresh_token"]]["revoked"] is True
    assert tokens[token["access_token"]]["revoked"] is True
    assert refresh(fake, token["refresh_token"]).json()["error"] == "invalid_grant"
    unknown = s.post(fake.https + "/services/oauth2/revoke", data={"token": "not-a-token"})
    # The revoke endpoint answers errors form-encoded, not as JSON.
    assert unknown.status_code == 400
    assert parse_qs(unknown.text) == {"error": ["unsupported_token_type"],
                                      "error_description": ["this token type is not supported"]}


def test_expired_access_token_raises_expired_session(fake):
    fake.control("POST", "/_fake/clock", {"now": "2026-03-01T09:00:00Z"})
    fake.control("POST", "/_fake/config", {"access_token_ttl": 600})
    sf = client(fake, password_token(fake))
    assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 1
    fake.control("POST", "/_fake/clock", {"advance": 599})
    sf.query("SELECT COUNT() FROM User")
    fake.control("POST", "/_fake/clock", {"advance": 1})
    with pytest.raises(SalesforceExpiredSession) as err:
        sf.query("SELECT COUNT() FROM User")
    assert err.value.status == 401
    assert err.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_missing_or_unknown_bearer_is_invalid_session(fake):
    s = http_session(fake)
    for headers in ({}, {"Authorization": "Bearer made-up"}):
        resp = s.get(fake.https + "/services/data/v59.0/sobjects/", headers=headers)
        assert resp.status_code == 401
        assert resp.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    # The versions list needs no session.
    assert s.get(fake.https + "/services/data/").status_code == 200


def test_identity_url_and_userinfo(fake, token):
    s = http_session(fake)
    auth = {"Authorization": "Bearer " + token["access_token"]}
    ident = s.get(token["id"], headers=auth)
    assert ident.status_code == 200
    body = ident.json()
    assert body["username"] == "admin@example.com"
    assert body["display_name"] == "Ada Admin"
    assert body["email"] == "admin@example.com"
    assert token["id"].endswith(f"/{body['organization_id']}/{body['user_id']}")
    assert body["urls"]["rest"] == fake.https + "/services/data/v{version}/"
    info = s.get(fake.https + "/services/oauth2/userinfo", headers=auth).json()
    assert info["preferred_username"] == "admin@example.com" and info["user_id"] == body["user_id"]
    assert s.get(token["id"], headers={"Authorization": "Bearer nope"}).status_code == 403


def test_other_users_log_in_with_their_own_password(fake):
    fake.control("POST", "/_fake/users", {"username": "rep@example.com", "name": "Rita Rep", "password": "s3cret"})
    token = password_token(fake, username="rep@example.com", password="s3cret")
    sf = client(fake, token)
    created = sf.Contact.create({"LastName": "Owned"})
    assert sf.Contact.get(created["id"])["OwnerId"] == token["id"].rsplit("/", 1)[1]
    fake.control("POST", "/_fake/users", {"username": "gone@example.com", "name": "Old Timer", "IsActive": False})
    resp = http_session(fake).post(fake.https + "/services/oauth2/token", data={
        "grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "username": "gone@example.com", "password": "password"})
    assert resp.json()["error"] == "invalid_grant"
