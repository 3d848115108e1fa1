//! Talking to Salesforce: OAuth 2.0 (the authorization code with PKCE, refresh, revoke, the
//! identity URL) and the REST calls the sync makes (query and its next pages, the deleted
//! feed, describe, collections). Every call under `/services/data/` is counted against the
//! integration's budget before it is made, and `Sforce-Limit-Info` is read from every answer.
//!
//! reqwest (rustls) is the HTTP client the server already uses for OpenID Connect and webhooks.

use super::Policy;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call did not give an answer to use.
#[derive(Debug, Clone, PartialEq)]
pub enum SfError {
    /// Salesforce's daily allowance is used up (`REQUEST_LIMIT_EXCEEDED`).
    Limit,
    /// The integration's own share of it is used up.
    Budget,
    /// No answer, a timeout, a 5xx: try again later.
    Unavailable(String),
    /// The tokens no longer work; someone has to connect again.
    Auth(String),
    /// Salesforce refused the request itself.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl std::fmt::Display for SfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SfError::Limit => write!(
                f,
                "Salesforce's daily API limit is reached (REQUEST_LIMIT_EXCEEDED)"
            ),
            SfError::Budget => write!(
                f,
                "the integration's share of Salesforce's daily API limit is used up"
            ),
            SfError::Unavailable(m) => write!(f, "Salesforce is unavailable: {m}"),
            SfError::Auth(m) => write!(f, "Salesforce refused the connection's tokens: {m}"),
            SfError::Refused {
                status,
                code,
                message,
            } => write!(f, "Salesforce answered {status} {code}: {message}"),
        }
    }
}

/// The token endpoint's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub instance_url: String,
    /// The identity URL: `…/id/{orgId}/{userId}`.
    pub id: String,
}

fn http() -> Result<reqwest::Client, SfError> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        // A redirect could lead a token to another host.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("kontor-salesforce")
        .build()
        .map_err(|e| SfError::Unavailable(e.to_string()))
}

fn token_url(policy: &Policy, path: &str) -> String {
    format!(
        "{}/services/oauth2/{path}",
        policy.login_url.trim_end_matches('/')
    )
}

/// The login page to send an admin to.
pub fn authorize_url(policy: &Policy, redirect_uri: &str, state: &str, verifier: &str) -> String {
    let mut u = url::Url::parse(&token_url(policy, "authorize")).expect("checked at start-up");
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &policy.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("scope", "api refresh_token")
        .append_pair("code_challenge", &crate::oidc::pkce_challenge(verifier))
        .append_pair("code_challenge_method", "S256");
    u.to_string()
}

async fn token_call(policy: &Policy, form: &[(&str, &str)]) -> Result<TokenResponse, SfError> {
    let resp = http()?
        .post(token_url(policy, "token"))
        .form(form)
        .send()
        .await
        .map_err(|e| SfError::Unavailable(e.to_string()))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status == 200 {
        serde_json::from_value(body).map_err(|e| SfError::Auth(e.to_string()))
    } else if status >= 500 {
        Err(SfError::Unavailable(format!(
            "the token endpoint answered {status}"
        )))
    } else {
        Err(SfError::Auth(format!(
            "{}: {}",
            body["error"].as_str().unwrap_or("error"),
            body["error_description"].as_str().unwrap_or("")
        )))
    }
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens.
pub async fn exchange_code(
    policy: &Policy,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Result<TokenResponse, SfError> {
    token_call(
        policy,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &policy.client_id),
            ("client_secret", &policy.client_secret),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Revokes a token (and, for a refresh token, the access tokens issued with it).
pub async fn revoke(policy: &Policy, token: &str) -> Result<(), SfError> {
    let resp = http()?
        .post(token_url(policy, "revoke"))
        .form(&[("token", token)])
        .send()
        .await
        .map_err(|e| SfError::Unavailable(e.to_string()))?;
    match resp.status().as_u16() {
        200 => Ok(()),
        // Already revoked or expired: the aim is met.
        400 => Ok(()),
        s => Err(SfError::Unavailable(format!(
            "the revoke endpoint answered {s}"
        ))),
    }
}

/// Who the token belongs to: the identity URL's answer.
pub async fn identity(token: &TokenResponse) -> Result<Value, SfError> {
    let resp = http()?
        .get(&token.id)
        .bearer_auth(&token.access_token)
        .send()
        .await
        .map_err(|e| SfError::Unavailable(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(SfError::Auth(format!(
            "the identity URL answered {}",
            resp.status().as_u16()
        )));
    }
    resp.json()
        .await
        .map_err(|e| SfError::Unavailable(e.to_string()))
}

/// A page of a query's rows.
pub struct QueryPage {
    pub records: Vec<Value>,
    /// The next page's host-relative URL.
    pub next: Option<String>,
}

/// The REST API of one connected org, with its tokens and its call count.
pub struct Api<'p> {
    http: reqwest::Client,
    policy: &'p Policy,
    pub instance_url: String,
    access: String,
    refresh: String,
    /// Calls this session made.
    pub calls: i64,
    /// Calls it may still make.
    pub allowance: i64,
    /// The org's use and allowance from the last `Sforce-Limit-Info`.
    pub org: Option<(i64, i64)>,
    /// New tokens from a refresh, to be saved: the access token and, when rotated, the
    /// refresh token.
    pub refreshed: Option<(String, Option<String>)>,
}

impl<'p> Api<'p> {
    pub fn new(
        policy: &'p Policy,
        instance_url: &str,
        access: String,
        refresh: String,
        allowance: i64,
    ) -> Result<Self, SfError> {
        Ok(Self {
            http: http()?,
            policy,
            instance_url: instance_url.trim_end_matches('/').to_string(),
            access,
            refresh,
            calls: 0,
            allowance,
            org: None,
            refreshed: None,
        })
    }

    fn data(&self, path: &str) -> String {
        if path.starts_with("/services/") {
            format!("{}{path}", self.instance_url)
        } else {
            format!(
                "{}/services/data/v{}/{path}",
                self.instance_url, self.policy.api_version
            )
        }
    }

    async fn refresh_token(&mut self) -> Result<(), SfError> {
        let t = token_call(
            self.policy,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &self.refresh),
                ("client_id", &self.policy.client_id),
                ("client_secret", &self.policy.client_secret),
            ],
        )
        .await?;
        self.access = t.access_token.clone();
        if let Some(r) = &t.refresh_token {
            self.refresh = r.clone();
        }
        self.instance_url = t.instance_url.trim_end_matches('/').to_string();
        self.refreshed = Some((t.access_token, t.refresh_token));
        Ok(())
    }

    /// One call, counted; on an expired session, a refresh and the call once more.
    pub async fn call(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SfError> {
        let mut refreshed = false;
        loop {
            if self.calls >= self.allowance {
                return Err(SfError::Budget);
            }
            self.calls += 1;
            let mut req = self
                .http
                .request(method.clone(), self.data(path))
                .bearer_auth(&self.access)
                // Assignment rules would otherwise overwrite the owner kontor sets.
                .header("Sforce-Auto-Assign", "FALSE");
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| SfError::Unavailable(e.to_string()))?;
            if let Some(info) = resp
                .headers()
                .get("sforce-limit-info")
                .and_then(|h| h.to_str().ok())
            {
                self.org = parse_limit_info(info).or(self.org);
            }
            let status = resp.status().as_u16();
            let text = resp
                .text()
                .await
                .map_err(|e| SfError::Unavailable(e.to_string()))?;
            let body: Value = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            if (200..300).contains(&status) {
                return Ok(body);
            }
            let first = body.get(0).cloned().unwrap_or(Value::Null);
            let code = first["errorCode"].as_str().unwrap_or("").to_string();
            let message = first["message"].as_str().unwrap_or("").to_string();
            match (status, code.as_str()) {
                (401, _) if !refreshed => {
                    refreshed = true;
                    self.refresh_token().await?;
                }
                (401, _) => return Err(SfError::Auth(message)),
                (403, "REQUEST_LIMIT_EXCEEDED") => return Err(SfError::Limit),
                (s, _) if s >= 500 => {
                    return Err(SfError::Unavailable(format!("{status} {code} {message}")))
                }
                _ => {
                    return Err(SfError::Refused {
                        status,
                        code,
                        message,
                    })
                }
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Result<Value, SfError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// The first page of a query (`all`: `queryAll`, deleted and merged rows too).
    pub async fn query(&mut self, soql: &str, all: bool) -> Result<QueryPage, SfError> {
        let mut u = url::Url::parse("http://x/").expect("static");
        u.query_pairs_mut().append_pair("q", soql);
        let path = format!(
            "{}?{}",
            if all { "queryAll" } else { "query" },
            u.query().unwrap_or("")
        );
        let v = self.get(&path).await?;
        Ok(page(v))
    }

    pub async fn query_more(&mut self, next: &str) -> Result<QueryPage, SfError> {
        let v = self.get(next).await?;
        Ok(page(v))
    }

    pub async fn describe(&mut self, sf_type: &str) -> Result<Value, SfError> {
        self.get(&format!("sobjects/{sf_type}/describe/")).await
    }

    /// The deleted feed's window from `start` to `end` (ISO datetimes).
    pub async fn deleted(
        &mut self,
        sf_type: &str,
        start: &str,
        end: &str,
    ) -> Result<Value, SfError> {
        let mut u = url::Url::parse("http://x/").expect("static");
        u.query_pairs_mut()
            .append_pair("start", start)
            .append_pair("end", end);
        self.get(&format!(
            "sobjects/{sf_type}/deleted/?{}",
            u.query().unwrap_or("")
        ))
        .await
    }

    /// A collection write of at most 200 records: `PATCH composite/sobjects` (updates, each
    /// with its `id`), or an upsert by `ext_field` (`PATCH composite/sobjects/{Type}/{field}`).
    /// One result per record, in order.
    pub async fn collection(
        &mut self,
        upsert: Option<(&str, &str)>,
        records: Vec<Value>,
    ) -> Result<Vec<Value>, SfError> {
        let path = match upsert {
            Some((t, field)) => format!("composite/sobjects/{t}/{field}"),
            None => "composite/sobjects".to_string(),
        };
        let n = records.len();
        let body = json!({"allOrNone": false, "records": records});
        let v = self
            .call(reqwest::Method::PATCH, &path, Some(&body))
            .await?;
        match v {
            Value::Array(a) if a.len() == n => Ok(a),
            other => Err(SfError::Refused {
                status: 200,
                code: "UNEXPECTED_ANSWER".into(),
                message: format!("a collection of {n} records answered {other}"),
            }),
        }
    }
}

fn page(v: Value) -> QueryPage {
    QueryPage {
        records: v["records"].as_array().cloned().unwrap_or_default(),
        next: v["nextRecordsUrl"].as_str().map(str::to_string),
    }
}

/// `api-usage=USED/MAX` out of `Sforce-Limit-Info` (which may carry other parts).
pub fn parse_limit_info(h: &str) -> Option<(i64, i64)> {
    let part = h
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("api-usage="))?;
    let (used, max) = part.split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_limit_info;

    #[test]
    fn limit_info_is_read_among_other_parts() {
        assert_eq!(parse_limit_info("api-usage=18/5000"), Some((18, 5000)));
        assert_eq!(
            parse_limit_info(
                "api-bursts=1/750; api-usage=25/15000; per-app-api-usage=17/250(appName=x)"
            ),
            Some((25, 15000))
        );
        assert_eq!(parse_limit_info("per-app-api-usage=17/250"), None);
        assert_eq!(parse_limit_info("api-usage=x/1"), None);
    }
}
