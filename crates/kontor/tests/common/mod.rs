//! The test harness: the built binary on a fresh data folder and a free port. With
//! `KONTOR_DATABASE_US` (and friends) set, the server runs on PostgreSQL.
#![allow(dead_code)]

pub mod console;
pub mod restore;
pub mod routes;
pub mod salesforce;

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicU64 = AtomicU64::new(0);

pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: std::path::PathBuf,
    pub http: reqwest::Client,
    /// Leave the data folder when dropped (a restart reuses it).
    pub keep_dir: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// Where the server on `data_dir` keeps the regions' file stores.
pub fn files_root(data_dir: &std::path::Path) -> std::path::PathBuf {
    match std::env::var("KONTOR_DATABASE_US") {
        Ok(url) => {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            url.hash(&mut h);
            std::env::temp_dir().join(format!("kontor-files-{:x}", h.finish()))
        }
        Err(_) => data_dir.join("regions"),
    }
}

/// Where the server on `data_dir` writes e-mails: on PostgreSQL, one folder shared by every
/// server of the database (any of them may deliver a notification), as a deployment must.
pub fn outbox_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    if std::env::var("KONTOR_DATABASE_US").is_ok() {
        files_root(data_dir).join("outbox")
    } else {
        data_dir.join("outbox")
    }
}

pub fn kontor(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kontor"));
    c.arg("--data-dir")
        .arg(data_dir)
        .env("KONTOR_LOG", "warn")
        // No API rate limits, unless a test sets its own.
        .env("KONTOR_API_LIMITS", "off");
    // Servers sharing one PostgreSQL are nodes of one deployment: any of them may run a job,
    // so they share the file store, as a real deployment must.
    if std::env::var("KONTOR_DATABASE_US").is_ok() {
        c.env("KONTOR_FILES_DIR", files_root(data_dir));
        c.env("KONTOR_OUTBOX_DIR", outbox_dir(data_dir));
    }
    c
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(None, &[]).await
    }

    /// Starts on `data_dir` (a fresh one when `None`) with extra environment variables.
    pub async fn start_with(data_dir: Option<std::path::PathBuf>, envs: &[(&str, &str)]) -> Server {
        let data_dir = data_dir.unwrap_or_else(|| {
            let d = std::env::temp_dir().join(format!(
                "kontor-api-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&d);
            d
        });
        let port = free_port();
        let child = kontor(&data_dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "server did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Server {
            child,
            base,
            data_dir,
            http,
            keep_dir: false,
        }
    }

    /// `kill -9`: the process gets no chance to clean up. Returns the data folder.
    pub fn kill9(mut self) -> std::path::PathBuf {
        self.keep_dir = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.data_dir.clone()
    }

    /// `kill -9`, then a new server in its place on the same data folder, with `envs`.
    pub async fn kill9_and_restart(&mut self, envs: &[(&str, &str)]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut old = Server::start_with(Some(self.data_dir.clone()), envs).await;
        std::mem::swap(self, &mut old);
        old.keep_dir = true;
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = kontor(&self.data_dir).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "kontor {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A new account and a token for it, made with the CLI while the server runs.
    pub fn account(&self, name: &str) -> (String, String) {
        let id = self.cli(&[
            "admin",
            "account",
            "create",
            "--name",
            name,
            "--region",
            "us",
            "--tier",
            "professional",
        ]);
        let token = self.cli(&[
            "admin",
            "token",
            "create",
            "--account",
            &id,
            "--name",
            "tests",
        ]);
        (id, token)
    }

    pub async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        if status != 204 {
            assert!(
                resp.headers()
                    .get("content-type")
                    .is_some_and(|c| c.to_str().unwrap().starts_with("application/json")),
                "{method} {path}: every non-204 answer is JSON"
            );
        }
        let text = resp.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }
}

/// Starts a CSV import through `POST /crm/v3/imports` (multipart: the JSON `importRequest` and
/// the file); the status and the answer.
pub async fn post_import(s: &Server, token: &str, request: &Value, csv: &str) -> (u16, Value) {
    const B: &str = "kontor-test-boundary-7d1f";
    let file_name = request["files"][0]["fileName"]
        .as_str()
        .unwrap_or("import.csv");
    let body = format!(
        "--{B}\r\nContent-Disposition: form-data; name=\"importRequest\"\r\n\r\n{request}\r\n\
         --{B}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{file_name}\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{B}--\r\n"
    );
    let resp = s
        .http
        .post(format!("{}/crm/v3/imports", s.base))
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={B}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Polls an import (or a restore, which is one) until it is no longer STARTED or PROCESSING.
pub async fn wait_import(s: &Server, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (st, r) = s
            .call(token, "GET", &format!("/crm/v3/imports/{id}"), None)
            .await;
        assert_eq!(st, 200, "{r}");
        if r["state"] != "STARTED" && r["state"] != "PROCESSING" {
            return r;
        }
        assert!(Instant::now() < deadline, "import stuck: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Undoes quoted-printable (soft line breaks and `=XX`), which long lines of a mail get.
pub fn unquote(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The messages in the server's outbox (`<data_dir>/outbox`) addressed to `to`, decoded.
pub fn mails_to(s: &Server, to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(outbox_dir(&s.data_dir)) else {
        return Vec::new();
    };
    // The messages, as a mail client would pick them up: not the part of one whose writer was
    // killed before renaming it into place (it is written again).
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|m| m.lines().any(|l| l.starts_with("To:") && l.contains(to)))
        .map(|m| unquote(&m))
        .collect()
}

/// Polls a backup through the admin API until it reaches `want` (failing on FAILED).
pub async fn wait_for_backup(s: &Server, token: &str, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (st, b) = s
            .call(token, "GET", &format!("/kontor/v1/backups/{id}"), None)
            .await;
        assert_eq!(st, 200, "{b}");
        if b["status"] == want {
            return b;
        }
        assert_ne!(b["status"], "FAILED", "{b}");
        assert!(Instant::now() < deadline, "backup stuck: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
