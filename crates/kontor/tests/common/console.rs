//! Using the console as a browser would, without one: the sign-in form, forms posted with
//! the session's CSRF token, users made with the CLI.

use super::Server;
use reqwest::header::{COOKIE, SET_COOKIE};
use std::time::{SystemTime, UNIX_EPOCH};
use totp_rs::{Algorithm, Secret, TOTP};

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn cookie_from(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

pub fn csrf_in(html: &str) -> String {
    let at = html
        .find("name=\"_csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 20;
    html[at..].split('"').next().unwrap().to_string()
}

/// Posts the sign-in form (with its own CSRF cookie and token); returns the answer.
pub async fn post_sign_in_form(s: &Server, email: &str, password: &str) -> reqwest::Response {
    let h = http();
    let page = h.get(format!("{}/app/login", s.base)).send().await.unwrap();
    let login_csrf = cookie_from(&page, "kontor_login_csrf").expect("login CSRF cookie");
    let html = page.text().await.unwrap();
    h.post(format!("{}/app/login", s.base))
        .header(COOKIE, format!("kontor_login_csrf={login_csrf}"))
        .form(&[
            ("email", email),
            ("password", password),
            ("_csrf", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in through the console's form; returns the session cookie and its CSRF token.
pub async fn sign_in(s: &Server, email: &str, password: &str) -> (String, String) {
    let resp = post_sign_in_form(s, email, password).await;
    assert_eq!(resp.status(), 303, "signing in {email}");
    let session = cookie_from(&resp, "kontor_session").expect("session cookie");
    let page = console_get(s, &session, "/app/account/security").await;
    assert_eq!(page.status(), 200);
    let csrf = csrf_in(&page.text().await.unwrap());
    (session, csrf)
}

/// A console page as the session sees it.
pub async fn console_get(s: &Server, session: &str, path: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", s.base))
        .header(COOKIE, format!("kontor_session={session}"))
        .send()
        .await
        .unwrap()
}

/// The text of a console page as the session sees it.
pub async fn console_page(s: &Server, session: &str, path: &str) -> String {
    console_get(s, session, path).await.text().await.unwrap()
}

/// Posts a console form as a signed-in user; returns the status and page.
pub async fn console_post(
    s: &Server,
    session: &(String, String),
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    fields.push(("_csrf", &session.1));
    let resp = http()
        .post(format!("{}{path}", s.base))
        .header(COOKIE, format!("kontor_session={}", session.0))
        .form(&fields)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A token made in the console by a signed-in admin or super admin.
pub async fn console_token(s: &Server, session: &(String, String), name: &str) -> String {
    let (status, html) = console_post(s, session, "/app/settings/tokens", &[("name", name)]).await;
    assert_eq!(status, 200, "{html}");
    let at = html.find("kontor-pat-").expect("the new token is shown");
    html[at..]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .next()
        .unwrap()
        .to_string()
}

/// A user made with the CLI; returns (id, password).
pub fn user(s: &Server, account: &str, email: &str, role: &str) -> (String, String) {
    let out = s.cli(&[
        "admin",
        "user",
        "create",
        "--account",
        account,
        "--email",
        email,
        "--role",
        role,
        "--generate-password",
    ]);
    let mut lines = out.lines();
    (
        lines.next().unwrap().to_string(),
        lines.next().unwrap().to_string(),
    )
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn authenticator(secret_base32: &str) -> TOTP {
    let bytes = Secret::Encoded(secret_base32.to_string())
        .to_bytes()
        .unwrap();
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new())
}

/// Turns TOTP on for a signed-in user (with the user's password, as the page asks); returns
/// the authenticator and the time whose code turned it on (that step is spent).
pub async fn enable_totp(s: &Server, session: &(String, String), password: &str) -> (TOTP, u64) {
    let (st, html) = console_post(
        s,
        session,
        "/app/account/security/totp",
        &[("password", password)],
    )
    .await;
    assert_eq!(st, 200, "{html}");
    let at = html
        .find("id=\"totp-secret\">")
        .expect("the secret is shown")
        + 17;
    let secret = html[at..].split('<').next().unwrap().trim();
    let totp = authenticator(secret);
    let t = now();
    let (st, html) = console_post(
        s,
        session,
        "/app/account/security/totp/confirm",
        &[("code", &totp.generate(t))],
    )
    .await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("Two-factor authentication is on"), "{html}");
    (totp, t)
}
