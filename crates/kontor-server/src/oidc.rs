//! OpenID Connect, the relying party's side: discovery, the authorization request with PKCE,
//! the code exchange, and the ID token's verification (RS256 against the provider's JWKS).
//!
//! Every check that decides whether someone signs in lives here; the console pages only
//! route, store the state and audit. Errors are sentences for the failure page.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Clock skew tolerated on `exp` and `iat`.
const SKEW_S: i64 = 120;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery documents, key sets and token answers are small; a larger body is refused.
const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// What a verified ID token says about the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: String,
}

pub fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    B64.encode(buf)
}

/// The PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

/// An issuer or endpoint URL must be HTTPS; plain HTTP only on the loopback interface, where
/// nobody can read or alter the traffic (a provider run beside the server, as in tests).
pub fn check_url(raw: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(raw).map_err(|_| format!("“{raw}” is not a URL."))?;
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match u.scheme() {
        "https" if u.host().is_some() => {}
        "http" if loopback => {}
        "http" => {
            return Err(
                "The provider must be reached over HTTPS (plain HTTP is accepted only on this machine's loopback interface).".into(),
            )
        }
        _ => return Err(format!("“{raw}” is not an HTTPS URL.")),
    }
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() {
        return Err(format!("“{raw}” must not carry credentials or a fragment."));
    }
    Ok(u)
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        // A redirect could lead a check-free request to a plain-HTTP or internal address.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("Could not prepare the HTTP client: {e}"))
}

async fn read_json(resp: reqwest::Response, what: &str) -> Result<Value, String> {
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("Reading the provider's {what} failed: {e}"))?;
    if body.len() > MAX_BODY {
        return Err(format!("The provider's {what} is too large."));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|_| format!("The provider's {what} is not JSON (HTTP {status})."))?;
    if !status.is_success() {
        let err = v.get("error").and_then(Value::as_str).unwrap_or("unknown");
        return Err(format!(
            "The provider refused the {what} request (HTTP {status}, {err})."
        ));
    }
    Ok(v)
}

async fn get_json(url: &str, what: &str) -> Result<Value, String> {
    check_url(url)?;
    let resp = client()?
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("The provider's {what} could not be fetched: {e}"))?;
    read_json(resp, what).await
}

/// Fetches the issuer's discovery document; its `issuer` must be the configured one exactly,
/// and every endpoint must pass [`check_url`].
pub async fn discover(issuer: &str) -> Result<Discovery, String> {
    check_url(issuer)?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let v = get_json(&url, "discovery document").await?;
    let d: Discovery = serde_json::from_value(v)
        .map_err(|_| "The provider's discovery document lacks required endpoints.".to_string())?;
    if d.issuer != issuer {
        return Err(format!(
            "The provider calls itself “{}”, not the configured issuer “{issuer}”.",
            d.issuer
        ));
    }
    for u in [&d.authorization_endpoint, &d.token_endpoint, &d.jwks_uri] {
        check_url(u)?;
    }
    Ok(d)
}

pub struct AuthRequest<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub verifier: &'a str,
    pub login_hint: Option<&'a str>,
}

pub fn authorization_url(d: &Discovery, r: &AuthRequest<'_>) -> Result<String, String> {
    let mut u = check_url(&d.authorization_endpoint)?;
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", r.client_id)
            .append_pair("redirect_uri", r.redirect_uri)
            .append_pair("scope", "openid email")
            .append_pair("state", r.state)
            .append_pair("nonce", r.nonce)
            .append_pair("code_challenge", &pkce_challenge(r.verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(h) = r.login_hint {
            q.append_pair("login_hint", h);
        }
    }
    Ok(u.into())
}

/// Exchanges the code for the ID token (client authentication: `client_secret_basic`).
pub async fn exchange(
    d: &Discovery,
    client_id: &str,
    client_secret: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<String, String> {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier)
        .finish();
    check_url(&d.token_endpoint)?;
    let resp = client()?
        .post(&d.token_endpoint)
        .basic_auth(enc(client_id), Some(enc(client_secret)))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("The provider's token endpoint could not be reached: {e}"))?;
    let v = read_json(resp, "token").await?;
    v.get("id_token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "The provider's token answer has no ID token.".to_string())
}

pub async fn fetch_jwks(d: &Discovery) -> Result<Value, String> {
    get_json(&d.jwks_uri, "key set").await
}

fn part(s: &str, what: &str) -> Result<Value, String> {
    B64.decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| format!("The ID token's {what} cannot be read."))
}

pub struct Expect<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Seconds since the epoch.
    pub now: i64,
}

/// Verifies an ID token: the RS256 signature against a key of the set (by `kid`), then `iss`,
/// `aud` (and `azp` when there are several audiences), `exp`, `iat` and `nonce`. Then the
/// e-mail must be present and verified by the provider.
pub fn verify_id_token(jwks: &Value, token: &str, e: &Expect<'_>) -> Result<Identity, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("The ID token is not a signed JWT.".into());
    };
    let header = part(h, "header")?;
    // Only RS256: the algorithm is fixed by us, never chosen by the token (no `none`, no HMAC
    // with the public key as secret).
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("The ID token is not signed with RS256.".into());
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("The provider's key set has no keys.")?;
    let candidates: Vec<&Value> = keys
        .iter()
        .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
        .filter(|k| {
            k.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
        .collect();
    let signature = B64
        .decode(s)
        .map_err(|_| "The ID token's signature cannot be read.".to_string())?;
    let message = format!("{h}.{p}");
    let verified = candidates.iter().any(|k| {
        let comp = |name: &str| {
            k.get(name)
                .and_then(Value::as_str)
                .and_then(|v| B64.decode(v).ok())
        };
        let (Some(n), Some(exp)) = (comp("n"), comp("e")) else {
            return false;
        };
        ring::signature::RsaPublicKeyComponents { n: &n, e: &exp }
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                message.as_bytes(),
                &signature,
            )
            .is_ok()
    });
    if !verified {
        return Err("The ID token's signature does not match the provider's keys.".into());
    }
    let c = part(p, "claims")?;
    let str_claim = |name: &str| c.get(name).and_then(Value::as_str);
    if str_claim("iss") != Some(e.issuer) {
        return Err("The ID token was issued by another provider.".into());
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == e.client_id,
        Some(Value::Array(a)) => {
            a.iter().any(|x| x.as_str() == Some(e.client_id))
                && (a.len() == 1 || str_claim("azp") == Some(e.client_id))
        }
        _ => false,
    };
    if !aud_ok {
        return Err("The ID token is meant for another client.".into());
    }
    let exp = c
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("The ID token has no expiry.")?;
    if exp + SKEW_S < e.now {
        return Err("The ID token has expired.".into());
    }
    let iat = c
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("The ID token has no issue time.")?;
    if iat - SKEW_S > e.now {
        return Err("The ID token was issued in the future; check the clocks.".into());
    }
    let nonce_ok = str_claim("nonce")
        .is_some_and(|n| super::console::constant_time_eq(n.as_bytes(), e.nonce.as_bytes()));
    if !nonce_ok {
        return Err("The ID token does not belong to this sign-in (nonce).".into());
    }
    let subject = str_claim("sub")
        .ok_or("The ID token has no subject.")?
        .to_string();
    let email = str_claim("email")
        .ok_or("The provider did not share an e-mail address.")?
        .trim()
        .to_lowercase();
    let verified_email = match c.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    if !verified_email {
        return Err(format!(
            "The provider has not verified the e-mail address {email}."
        ));
    }
    Ok(Identity { subject, email })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_url("https://idp.example.com").is_ok());
        assert!(check_url("http://127.0.0.1:4000").is_ok());
        assert!(check_url("http://[::1]:4000/x").is_ok());
        assert!(check_url("http://localhost:4000").is_ok());
        assert!(check_url("http://idp.example.com").is_err());
        assert!(check_url("http://10.0.0.1").is_err());
        assert!(check_url("ftp://idp.example.com").is_err());
        assert!(check_url("https://u:p@idp.example.com").is_err());
        assert!(check_url("not a url").is_err());
    }

    #[test]
    fn pkce_matches_rfc_7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused() {
        let jwks = serde_json::json!({"keys": []});
        let e = Expect {
            issuer: "https://idp",
            client_id: "c",
            nonce: "n",
            now: 0,
        };
        for alg in ["none", "HS256"] {
            let h = B64.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let p = B64.encode(r#"{"iss":"https://idp","aud":"c","nonce":"n"}"#);
            let err = verify_id_token(&jwks, &format!("{h}.{p}."), &e).unwrap_err();
            assert!(err.contains("RS256"), "{err}");
        }
        assert!(verify_id_token(&jwks, "a.b", &e).is_err());
    }
}
