"""OAuth 2.0 as Salesforce serves it: the login page of the web-server flow, the token
endpoint (authorization_code, refresh_token, password grants), revocation, userinfo and
the identity URL, plus bearer checks for the REST API.
"""

import base64
import hashlib
import hmac
import html
import secrets
import string
from urllib.parse import urlencode

from clock import format_ms

CODE_TTL_MS = 15 * 60 * 1000
_TOKEN_CHARS = string.ascii_letters + string.digits + "._"
LOGIN_ERROR = ("Please check your username and password. If you still can't log in, "
               "contact your Salesforce administrator.")


def _random(n, alphabet=_TOKEN_CHARS):
    return "".join(secrets.choice(alphabet) for _ in range(n))


class OAuthError(Exception):
    def __init__(self, error, description, status=400):
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "error_description": description}


class Auth:
    def __init__(self, org):
        self.org = org
        self.access = {}     # token -> info
        self.refresh = {}    # token -> info
        self.codes = {}      # code -> info

    @property
    def config(self):
        return self.org.config

    def now(self):
        return self.org.clock.now_ms()

    # ---- tokens ---------------------------------------------------------------------------
    def _issue(self, user_id, scope, base_url, with_refresh, parent=None):
        now = self.now()
        access = self.org.org_id[:15] + "!AR" + _random(96)
        refresh = None
        if with_refresh:
            refresh = "5Aep861" + _random(80, string.ascii_letters + string.digits + ".")
            self.refresh[refresh] = {"user_id": user_id, "scope": scope, "issued": now,
                                     "revoked": False, "replaced_by": None}
            parent = refresh
        self.access[access] = {"user_id": user_id, "scope": scope, "issued": now,
                               "expires": now + int(self.config["access_token_ttl"]) * 1000,
                               "revoked": False, "refresh": parent}
        ident = f"{base_url}/id/{self.org.org_id}/{user_id}"
        issued_at = str(now)
        signature = base64.b64encode(hmac.new(self.config["client_secret"].encode(),
                                              (ident + issued_at).encode(), hashlib.sha256).digest()).decode()
        body = {"access_token": access}
        if refresh:
            body["refresh_token"] = refresh
        body.update({"signature": signature, "scope": scope, "instance_url": base_url, "id": ident,
                     "token_type": "Bearer", "issued_at": issued_at})
        return body

    def bearer(self, header):
        """The live access token's record for an Authorization header, or None."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            return None
        info = self.access.get(token.strip())
        if info is None or info["revoked"] or self.now() >= info["expires"]:
            return None
        return info

    def _check_client(self, form, headers):
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = headers.get("Authorization", "")
        if basic.lower().startswith("basic ") and client_id is None:
            try:
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            except Exception:
                raise OAuthError("invalid_client", "invalid client credentials")
        if client_id != self.config["client_id"]:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if secret != self.config["client_secret"]:
            raise OAuthError("invalid_client", "invalid client credentials")

    def token(self, form, headers, base_url):
        grant = form.get("grant_type")
        if grant not in ("authorization_code", "refresh_token", "password"):
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        self._check_client(form, headers)
        if grant == "password":
            user = self._login(form.get("username"), form.get("password"))
            if user is None:
                raise OAuthError("invalid_grant", "authentication failure")
            return self._issue(user["Id"], "api refresh_token", base_url,
                               bool(self.config["password_grant_refresh_token"]))
        if grant == "authorization_code":
            info = self.codes.get(form.get("code") or "")
            if info is None or info["used"]:
                raise OAuthError("invalid_grant", "invalid authorization code")
            info["used"] = True
            if self.now() > info["expires"]:
                raise OAuthError("invalid_grant", "expired authorization code")
            if form.get("redirect_uri") != info["redirect_uri"]:
                raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")
            if not _pkce_ok(info, form.get("code_verifier")):
                raise OAuthError("invalid_grant", "invalid code verifier")
            return self._issue(info["user_id"], info["scope"], base_url, True)
        info = self.refresh.get(form.get("refresh_token") or "")
        if info is None or info["revoked"]:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        user = self.org.records["User"].get(info["user_id"])
        if user is None or not user.get("IsActive"):
            raise OAuthError("invalid_grant", "inactive user")
        if self.config["rotate_refresh_tokens"]:
            # Rotation: a new refresh token comes back and the one just used stops working.
            info["revoked"] = True
            body = self._issue(info["user_id"], info["scope"], base_url, True)
            info["replaced_by"] = body["refresh_token"]
            return body
        return self._issue(info["user_id"], info["scope"], base_url, False, parent=form["refresh_token"])

    def revoke(self, token):
        if token in self.access and not self.access[token]["revoked"]:
            self.access[token]["revoked"] = True
            return
        if token in self.refresh and not self.refresh[token]["revoked"]:
            self.refresh[token]["revoked"] = True
            for info in self.access.values():
                if info["refresh"] == token:
                    info["revoked"] = True
            return
        raise OAuthError("unsupported_token_type", "this token type is not supported")

    def listing(self):
        now = self.now()
        out = []
        for tok, info in self.access.items():
            out.append({"type": "access", "token": tok, "userId": info["user_id"],
                        "issuedAt": format_ms(info["issued"]), "expiresAt": format_ms(info["expires"]),
                        "expired": now >= info["expires"], "revoked": info["revoked"],
                        "refreshToken": info["refresh"]})
        for tok, info in self.refresh.items():
            out.append({"type": "refresh", "token": tok, "userId": info["user_id"],
                        "issuedAt": format_ms(info["issued"]), "revoked": info["revoked"],
                        "replacedBy": info["replaced_by"]})
        return out

    def _login(self, username, password):
        user = self.org.user_by_username(username) if username else None
        if user is None or not user.get("IsActive"):
            return None
        if not hmac.compare_digest(self.org.passwords.get(user["Id"], ""), password or ""):
            return None
        return user

    # ---- web-server flow ---------------------------------------------------------------------
    def _client_check_page(self, params):
        if params.get("client_id") != self.config["client_id"]:
            return error_page("invalid_client_id", "client identifier invalid")
        if params.get("redirect_uri") not in self.config["redirect_uris"]:
            return error_page("redirect_uri_mismatch", "redirect_uri must match configuration")
        return None

    def authorize_get(self, params):
        """(status, headers, body) for GET /services/oauth2/authorize."""
        bad = self._client_check_page(params)
        if bad:
            return bad
        if params.get("response_type") != "code":
            return self._redirect(params, {"error": "unsupported_response_type",
                                           "error_description": "response type not supported"})
        return 200, {"Content-Type": "text/html;charset=UTF-8"}, login_page(params, None)

    def authorize_post(self, form):
        bad = self._client_check_page(form)
        if bad:
            return bad
        if form.get("response_type") != "code":
            return self._redirect(form, {"error": "unsupported_response_type",
                                         "error_description": "response type not supported"})
        user = self._login(form.get("username"), form.get("pw"))
        if user is None:
            return 200, {"Content-Type": "text/html;charset=UTF-8"}, login_page(form, LOGIN_ERROR)
        code = "aPrx" + _random(56, string.ascii_letters + string.digits) + "=="
        self.codes[code] = {"user_id": user["Id"], "redirect_uri": form["redirect_uri"],
                            "scope": form.get("scope") or "api refresh_token",
                            "expires": self.now() + CODE_TTL_MS, "used": False,
                            "challenge": form.get("code_challenge"),
                            # Salesforce documents code_challenge as the verifier's SHA-256 and needs
                            # no code_challenge_method: jsforce (useVerifier) sends none.
                            "challenge_method": form.get("code_challenge_method") or "S256"}
        return self._redirect(form, {"code": code})

    def _redirect(self, params, extra):
        if params.get("state") is not None:
            extra = {**extra, "state": params["state"]}
        uri = params["redirect_uri"]
        location = uri + ("&" if "?" in uri else "?") + urlencode(extra)
        return 302, {"Location": location, "Content-Type": "text/html;charset=UTF-8"}, ""

    # ---- identity ------------------------------------------------------------------------------
    def _urls(self, base_url, user_id):
        rest = f"{base_url}/services/data/v{{version}}/"
        return {"enterprise": f"{base_url}/services/Soap/c/{{version}}/{self.org.org_id[:15]}",
                "metadata": f"{base_url}/services/Soap/m/{{version}}/{self.org.org_id[:15]}",
                "partner": f"{base_url}/services/Soap/u/{{version}}/{self.org.org_id[:15]}",
                "rest": rest, "sobjects": rest + "sobjects/", "search": rest + "search/",
                "query": rest + "query/", "recent": rest + "recent/",
                "tooling_rest": rest + "tooling/", "profile": f"{base_url}/{user_id}",
                "users": rest + "chatter/users", "custom_domain": base_url}

    def identity(self, info, base_url):
        user = self.org.records["User"][info["user_id"]]
        return {
            "id": f"{base_url}/id/{self.org.org_id}/{user['Id']}", "asserted_user": True,
            "user_id": user["Id"], "organization_id": self.org.org_id, "username": user["Username"],
            "nick_name": user["Username"].split("@")[0], "display_name": user["Name"],
            "email": user["Email"], "email_verified": True, "first_name": user["FirstName"],
            "last_name": user["LastName"], "timezone": "GMT", "photos": {}, "addr_street": None,
            "addr_city": None, "addr_state": None, "addr_country": None, "addr_zip": None,
            "mobile_phone": None, "mobile_phone_verified": False, "is_lightning_login_user": False,
            "status": {"created_date": None, "body": None}, "urls": self._urls(base_url, user["Id"]),
            "active": bool(user["IsActive"]), "user_type": "STANDARD", "language": "en_US",
            "locale": "en_US", "utcOffset": 0, "last_modified_date": user["LastModifiedDate"],
            "is_app_installed": True,
        }

    def userinfo(self, info, base_url):
        user = self.org.records["User"][info["user_id"]]
        return {
            "sub": f"{base_url}/id/{self.org.org_id}/{user['Id']}", "user_id": user["Id"],
            "organization_id": self.org.org_id, "preferred_username": user["Username"],
            "nickname": user["Username"].split("@")[0], "name": user["Name"], "email": user["Email"],
            "email_verified": True, "given_name": user["FirstName"], "family_name": user["LastName"],
            "zoneinfo": "GMT", "photos": {}, "profile": f"{base_url}/{user['Id']}",
            "picture": None, "address": {}, "is_salesforce_integration_user": False,
            "urls": self._urls(base_url, user["Id"]), "active": bool(user["IsActive"]),
            "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": 0,
            "updated_at": user["LastModifiedDate"],
        }


def _pkce_ok(info, verifier):
    """PKCE: a code issued for a challenge needs the matching verifier, and only then one."""
    challenge = info["challenge"]
    if challenge is None:
        return verifier is None
    if verifier is None:
        return False
    if info["challenge_method"].upper() == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        return hmac.compare_digest(base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), challenge)
    return hmac.compare_digest(verifier, challenge)


def error_page(error, description):
    body = (f"<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Error</h1>"
            f"<p id=\"error\">error={html.escape(error)}&amp;error_description={html.escape(description)}</p>"
            f"</body></html>")
    return 400, {"Content-Type": "text/html;charset=UTF-8"}, body


def login_page(params, error):
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(str(params[k]), quote=True)}">'
        for k in ("response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge",
                  "code_challenge_method") if params.get(k) is not None)
    err = f'<div id="error" class="loginError">{html.escape(error)}</div>' if error else ""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Login | Salesforce</title></head>
<body><div id="content"><h1>Log In</h1>{err}
<form id="login_form" name="login" method="post" action="/services/oauth2/authorize">{hidden}
<label for="username">Username</label>
<input id="username" name="username" type="email" class="input r4 wide mb16 mt8 username" autocomplete="username">
<label for="password">Password</label>
<input id="password" name="pw" type="password" class="input r4 wide mb16 mt8 password" autocomplete="current-password">
<input id="Login" name="Login" type="submit" class="button r4 wide primary" value="Log In">
</form></div></body></html>"""
