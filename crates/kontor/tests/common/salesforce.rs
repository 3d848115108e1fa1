//! The fake Salesforce (`tests/salesforce/fake`) for the integration's tests: started per test
//! on free ports, stopped when dropped; connecting an account through the console's OAuth flow
//! and the fake's login page; running sync rounds through the operators' API.

use super::console::{cookie_from, http, sign_in, user};
use super::Server;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "kontor-test-client";
pub const CLIENT_SECRET: &str = "kontor-test-secret";

pub struct Fake {
    child: Child,
    pub base: String,
    http: reqwest::Client,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fake {
    pub fn start() -> Fake {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/salesforce/fake/server.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--host", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the fake Salesforce");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line).expect("the fake's ready line");
        Fake {
            child,
            base: ready["http"].as_str().unwrap().to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// The server's environment for this fake: the connected app, its login URL, rounds only
    /// when asked (or an hour apart), and a short claim so a killed node's round is taken up
    /// quickly.
    ///
    /// On PostgreSQL every server of the test run is a node of one deployment: any of them
    /// may run any account's round, so they share one key (and the run's tests go one at a
    /// time, each with its own fake).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("KONTOR_SALESFORCE_CLIENT_ID", CLIENT_ID.into()),
            ("KONTOR_SALESFORCE_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("KONTOR_SALESFORCE_LOGIN_URL", self.base.clone()),
            ("KONTOR_SALESFORCE_INTERVAL_SECONDS", "3600".into()),
            ("KONTOR_SALESFORCE_CLAIM_SECONDS", "3".into()),
        ];
        if std::env::var("KONTOR_DATABASE_US").is_ok() {
            let key = super::files_root(std::path::Path::new("/")).join("secret.key");
            std::fs::create_dir_all(key.parent().unwrap()).unwrap();
            env.push(("KONTOR_SECRET_KEY_FILE", key.display().to_string()));
        }
        env
    }

    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(
            method.parse().unwrap(),
            format!("{}/_fake/{path}", self.base),
        );
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} /_fake/{path}: {status} {v}");
        v
    }

    /// Inserts records fast (not counted); their ids in order.
    pub async fn insert(&self, sf_type: &str, records: Value) -> Vec<String> {
        let v = self
            .control("POST", &format!("records/{sf_type}"), Some(records))
            .await;
        let ids = v.get("ids").unwrap_or(&v);
        ids.as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect()
    }

    /// Creates Salesforce users; their ids, in order.
    pub async fn users(&self, users: Value) -> Vec<String> {
        let made = self.control("POST", "users", Some(users)).await;
        made.get("ids")
            .unwrap_or(&made)
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    /// Ada, with the kontor admin's e-mail (`admin@acme.test`), and Rita, with none here.
    pub async fn ada_and_rita(&self) -> Vec<String> {
        self.users(json!([
            {"username": "admin@acme.test.sf", "email": "admin@acme.test", "firstName": "Ada", "lastName": "Admin"},
            {"username": "rita@sf.test", "email": "rita@sf.test", "firstName": "Rita", "lastName": "Rep"}
        ]))
        .await
    }

    pub async fn record(&self, sf_type: &str, id: &str) -> Value {
        let v = self
            .control("GET", &format!("records/{sf_type}/{id}"), None)
            .await;
        v.get("record").cloned().unwrap_or(v)
    }

    /// A REST call as an API client of the org, with a token of the seeded admin.
    pub async fn rest(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let token: Value = self
            .http
            .post(format!("{}/services/oauth2/token", self.base))
            .form(&[
                ("grant_type", "password"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("username", "admin@example.com"),
                ("password", "password"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut req = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}/services/data/v62.0/{path}", self.base),
            )
            .bearer_auth(token["access_token"].as_str().unwrap());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Requests the sync made, from the fake's log (newest last), under `/services/data/`.
    pub async fn data_requests(&self) -> Vec<Value> {
        let v = self.control("GET", "requests", None).await;
        let list = v.get("requests").unwrap_or(&v);
        list.as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/services/data/v"))
            })
            .cloned()
            .collect()
    }
}

/// Connects the signed-in admin's account to the fake's org through the console: the Connect
/// button, the fake's login page (as its user), and the callback with the code. Waits for the
/// first round, which a connection starts at once, as an operator's token sees it.
pub async fn connect(s: &Server, session: &(String, String), fake: &Fake, token: &str) -> Value {
    let callback = format!("{}/app/settings/integrations/salesforce/callback", s.base);
    fake.control("POST", "config", Some(json!({"redirect_uris": [callback]})))
        .await;
    let h = http();
    let resp = h
        .post(format!(
            "{}/app/settings/integrations/salesforce/connect",
            s.base
        ))
        .header(COOKIE, format!("kontor_session={}", session.0))
        .form(&[("_csrf", session.1.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "Connect sends the admin to Salesforce");
    let authorize = resp.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(authorize.starts_with(&fake.base), "{authorize}");
    let login = h.get(&authorize).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let page = login.text().await.unwrap();
    let mut form: Vec<(String, String)> = hidden_inputs(&page);
    form.push(("username".into(), "admin@example.com".into()));
    form.push(("pw".into(), "password".into()));
    let back = h
        .post(format!("{}/services/oauth2/authorize", fake.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        back.status(),
        302,
        "the fake logs in and sends the admin back"
    );
    let to = back.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(to.starts_with(&callback), "{to}");
    let done = h
        .get(&to)
        .header(COOKIE, format!("kontor_session={}", session.0))
        .send()
        .await
        .unwrap();
    let status = done.status();
    let location = done
        .headers()
        .get(LOCATION)
        .map(|l| l.to_str().unwrap().to_string());
    let _ = cookie_from(&done, "kontor_session");
    assert_eq!(
        status,
        303,
        "the callback connects: {:?} {}",
        location,
        done.text().await.unwrap()
    );
    assert_eq!(
        location.as_deref(),
        Some("/app/settings/integrations/salesforce?done=connected")
    );
    wait_round(s, token, &Value::Null, Duration::from_secs(120)).await
}

fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in html.split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            let at = part.find(&key)? + key.len();
            Some(
                part[at..]
                    .split('"')
                    .next()?
                    .replace("&amp;", "&")
                    .replace("&quot;", "\""),
            )
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

/// The integration's status through the operators' API.
pub async fn status(s: &Server, token: &str) -> Value {
    let (st, v) = s
        .call(token, "GET", "/kontor/v1/integrations/salesforce", None)
        .await;
    assert_eq!(st, 200, "{v}");
    v
}

/// Asks for a round and waits until one has finished; the status after it.
pub async fn sync_now(s: &Server, token: &str) -> Value {
    let before = status(s, token).await["health"]["lastRoundAt"].clone();
    let (st, v) = s
        .call(
            token,
            "POST",
            "/kontor/v1/integrations/salesforce/sync",
            None,
        )
        .await;
    assert_eq!(st, 202, "{v}");
    wait_round(s, token, &before, Duration::from_secs(120)).await
}

/// Waits until a round after `before` has finished.
pub async fn wait_round(s: &Server, token: &str, before: &Value, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let v = status(s, token).await;
        if v["health"]["lastRoundAt"] != *before && !v["health"]["lastRoundAt"].is_null() {
            // A round that found more pages may still be running; settled when nothing waits.
            return v;
        }
        assert!(Instant::now() < deadline, "no sync round finished: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub struct Setup {
    pub fake: Fake,
    pub server: Server,
    pub account: String,
    pub token: String,
    pub session: (String, String),
}

/// A server connected to a fresh fake Salesforce (its clock frozen at now), an account and its
/// signed-in admin; not yet connected.
pub async fn setup() -> Setup {
    let fake = Fake::start();
    // Salesforce's clock, frozen: each round below moves it on by a minute, as time would.
    let now = kontor_domain::time::iso(kontor_domain::time::now_ms());
    fake.control("POST", "clock", Some(json!({"now": now})))
        .await;
    let env = fake.env();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with(None, &envs).await;
    let (account, token) = server.account("Salesforce Co");
    let (_, password) = user(&server, &account, "admin@acme.test", "admin");
    let session = sign_in(&server, "admin@acme.test", &password).await;
    Setup {
        fake,
        server,
        account,
        token,
        session,
    }
}

/// A sync round a minute later on Salesforce's clock: what changed there before that minute
/// is read.
pub async fn sync(t: &Setup) -> Value {
    t.fake
        .control("POST", "clock", Some(json!({"advance": 60})))
        .await;
    sync_now(&t.server, &t.token).await
}
