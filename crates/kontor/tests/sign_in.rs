//! Sign-in as an attacker tries it: guesses at the password, the second factor and the
//! restore's code, sent concurrently; over-long inputs; one client hammering the form. And as
//! a user relies on it: changing the password ends the other sessions, sessions can be ended,
//! two-factor authentication can be turned off only with the password and a code.

mod common;

use common::console::{
    console_get, console_post, console_token, cookie_from, csrf_in, enable_totp, http, now,
    sign_in, user,
};
use common::Server;
use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER};
use serde_json::json;
use totp_rs::TOTP;

/// Guesses allowed before a factor locks (the store's `MAX_ATTEMPTS`).
const MAX_ATTEMPTS: usize = 5;

/// A server whose per-client sign-in limit the brute-force tests do not meet (they all come
/// from 127.0.0.1).
async fn server() -> Server {
    Server::start_with(None, &[("KONTOR_SIGN_IN_PER_CLIENT_PER_MINUTE", "100000")]).await
}

/// The sign-in form's CSRF cookie and token.
async fn login_form(s: &Server) -> (String, String) {
    let page = http()
        .get(format!("{}/app/login", s.base))
        .send()
        .await
        .unwrap();
    let cookie = cookie_from(&page, "kontor_login_csrf").unwrap();
    (cookie, csrf_in(&page.text().await.unwrap()))
}

/// Posts the sign-in form; returns the status, the `Location` and the session cookie.
async fn post_login(
    s: &Server,
    form: &(String, String),
    email: &str,
    password: &str,
) -> (u16, Option<String>, Option<String>) {
    let resp = http()
        .post(format!("{}/app/login", s.base))
        .header(COOKIE, format!("kontor_login_csrf={}", form.0))
        .form(&[("email", email), ("password", password), ("_csrf", &form.1)])
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let session = cookie_from(&resp, "kontor_session");
    (resp.status().as_u16(), location, session)
}

/// The session's page, and its status (303 to the sign-in page once the session ended).
async fn get(s: &Server, session: &str, path: &str) -> (u16, String) {
    let resp = console_get(s, session, path).await;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A code of the authenticator that is not right now (nor one step either way).
fn wrong_code(totp: &TOTP, i: usize) -> String {
    let t = now();
    let near: Vec<String> = [t - 30, t, t + 30]
        .iter()
        .map(|&t| totp.generate(t))
        .collect();
    (0..)
        .map(|k| format!("{:06}", (i * 7919 + k * 104_729) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

#[tokio::test]
async fn concurrent_password_guesses_are_counted_before_they_are_checked() {
    let s = server().await;
    let (account, _) = s.account("Guessed");
    let email = "guessed@example.com";
    let (_, password) = user(&s, &account, email, "admin");
    let form = login_form(&s).await;

    let mut tries = Vec::new();
    for i in 0..40 {
        let s_base = s.base.clone();
        let form = form.clone();
        tries.push(tokio::spawn(async move {
            let resp = http()
                .post(format!("{s_base}/app/login"))
                .header(COOKIE, format!("kontor_login_csrf={}", form.0))
                .form(&[
                    ("email", email),
                    ("password", &format!("wrong-{i}")),
                    ("_csrf", &form.1),
                ])
                .send()
                .await
                .unwrap();
            resp.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|&&st| st == 401).count();
    let locked = statuses.iter().filter(|&&st| st == 429).count();
    assert_eq!(checked, MAX_ATTEMPTS, "guesses checked: {statuses:?}");
    assert_eq!(locked, 40 - MAX_ATTEMPTS, "{statuses:?}");

    // Locked: even the right password is not checked now.
    let (st, _, session) = post_login(&s, &form, email, &password).await;
    assert_eq!(st, 429);
    assert!(session.is_none());

    // The lock is in the account's audit log; the failures are not written there one by one.
    let (_, other) = user(&s, &account, "auditor@example.com", "admin");
    let auditor = sign_in(&s, "auditor@example.com", &other).await;
    let (st, log) = get(&s, &auditor.0, "/app/settings/audit").await;
    assert_eq!(st, 200);
    assert!(log.contains("login.locked"), "{log}");
    assert!(!log.contains("login.failed"), "{log}");
}

#[tokio::test]
async fn concurrent_second_factor_guesses_lock_and_signing_in_again_does_not_reset_them() {
    let s = server().await;
    let (account, _) = s.account("Second factor");
    let email = "second@example.com";
    let (_, password) = user(&s, &account, email, "user");
    let session = sign_in(&s, email, &password).await;
    let (totp, _) = enable_totp(&s, &session, &password).await;

    // The password is right: a half-signed-in session waits for the code.
    let form = login_form(&s).await;
    let (st, to, half) = post_login(&s, &form, email, &password).await;
    assert_eq!((st, to.as_deref()), (303, Some("/app/login/second-factor")));
    let half = half.unwrap();
    let (_, page) = get(&s, &half, "/app/login/second-factor").await;
    let csrf = csrf_in(&page);

    let mut tries = Vec::new();
    for i in 0..50 {
        let (base, half, csrf, code) = (
            s.base.clone(),
            half.clone(),
            csrf.clone(),
            wrong_code(&totp, i),
        );
        tries.push(tokio::spawn(async move {
            http()
                .post(format!("{base}/app/login/second-factor"))
                .header(COOKIE, format!("kontor_session={half}"))
                .form(&[("code", code.as_str()), ("_csrf", csrf.as_str())])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|&&st| st == 401).count();
    assert!(
        checked <= MAX_ATTEMPTS,
        "codes checked: {checked}: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|&st| st == 401 || st == 429 || st == 303),
        "{statuses:?}"
    );

    // Signing in again with the right password does not reset the second factor's count:
    // the right code is refused while the lock lasts.
    let (st, to, again) = post_login(&s, &form, email, &password).await;
    assert_eq!((st, to.as_deref()), (303, Some("/app/login/second-factor")));
    let again = again.unwrap();
    let (_, page) = get(&s, &again, "/app/login/second-factor").await;
    let resp = http()
        .post(format!("{}/app/login/second-factor", s.base))
        .header(COOKIE, format!("kontor_session={again}"))
        .form(&[
            ("code", totp.generate(now() + 30).as_str()),
            ("_csrf", csrf_in(&page).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    // That session is gone: it cannot reach the console.
    let (st, _) = get(&s, &again, "/app/objects/contacts").await;
    assert_eq!(st, 303);
}

#[tokio::test]
async fn the_restore_code_of_the_api_is_throttled_like_the_consoles() {
    let s = server().await;
    let (account, _) = s.account("Restore code");
    let email = "restorer@example.com";
    let (_, password) = user(&s, &account, email, "super-admin");
    let session = sign_in(&s, email, &password).await;
    let (totp, _) = enable_totp(&s, &session, &password).await;
    let token = console_token(&s, &session, "restorer").await;

    let mut tries = Vec::new();
    for i in 0..60 {
        let (base, token, code) = (s.base.clone(), token.clone(), wrong_code(&totp, i));
        tries.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/kontor/v1/restores"))
                .bearer_auth(token)
                .json(&json!({"planId": "1", "acknowledgeChanges": true,
                    "acknowledgeRevertOnly": true, "totpCode": code}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|&&st| st == 403).count();
    let locked = statuses.iter().filter(|&&st| st == 429).count();
    assert_eq!(checked, MAX_ATTEMPTS, "codes checked: {statuses:?}");
    assert_eq!(locked, 60 - MAX_ATTEMPTS, "{statuses:?}");

    // The right code now: still locked, with the time to come back.
    let resp = reqwest::Client::new()
        .post(format!("{}/kontor/v1/restores", s.base))
        .bearer_auth(&token)
        .json(&json!({"planId": "1", "acknowledgeChanges": true,
            "acknowledgeRevertOnly": true, "totpCode": totp.generate(now() + 30)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get(RETRY_AFTER).is_some());
}

#[tokio::test]
async fn one_client_over_its_sign_in_rate_is_slowed_down() {
    let s = Server::start_with(None, &[("KONTOR_SIGN_IN_PER_CLIENT_PER_MINUTE", "5")]).await;
    let form = login_form(&s).await;
    for i in 0..5 {
        let (st, _, _) =
            post_login(&s, &form, &format!("nobody{i}@example.com"), "a password").await;
        assert_eq!(st, 401, "try {i}");
    }
    let resp = http()
        .post(format!("{}/app/login", s.base))
        .header(COOKIE, format!("kontor_login_csrf={}", form.0))
        .form(&[
            ("email", "nobody@example.com"),
            ("password", "x"),
            ("_csrf", &form.1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let wait: u64 = resp.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
}

#[tokio::test]
async fn sign_in_inputs_are_bounded_before_any_database_work() {
    let s = server().await;
    let form = login_form(&s).await;
    let at_limit = format!("{}@example.com", "a".repeat(254 - 12));
    assert_eq!(at_limit.len(), 254);
    assert_eq!(post_login(&s, &form, &at_limit, "a password").await.0, 401);
    let past = format!("a{at_limit}");
    assert_eq!(post_login(&s, &form, &past, "a password").await.0, 400);
    assert_eq!(
        post_login(&s, &form, "a@example.com", &"p".repeat(1024))
            .await
            .0,
        401
    );
    assert_eq!(
        post_login(&s, &form, "a@example.com", &"p".repeat(1025))
            .await
            .0,
        400
    );

    // A body past 16 KiB is refused before it is read.
    let resp = http()
        .post(format!("{}/app/login", s.base))
        .header(COOKIE, format!("kontor_login_csrf={}", form.0))
        .form(&[
            ("email", "a@example.com"),
            ("password", &"p".repeat(17 * 1024)),
            ("_csrf", &form.1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // None of it was stored: a million-character address leaves the directory as it was.
    let before = directory_bytes(&s);
    for _ in 0..5 {
        let sent = http()
            .post(format!("{}/app/login", s.base))
            .header(COOKIE, format!("kontor_login_csrf={}", form.0))
            .form(&[
                ("email", "e".repeat(1 << 20).as_str()),
                ("password", "x"),
                ("_csrf", &form.1),
            ])
            .send()
            .await;
        // The server answers 413 as soon as it has read 16 KiB, and may close the connection
        // while the client is still writing the rest: both are a refusal before reading.
        match sent {
            Ok(resp) => assert_eq!(resp.status(), 413),
            Err(e) => assert!(e.is_request() && !e.is_timeout(), "{e}"),
        }
    }
    // (The database and its write-ahead log: a checkpoint may move earlier pages between them.)
    let grown = directory_bytes(&s).saturating_sub(before);
    assert!(
        grown < 256 * 1024,
        "5 MiB of addresses grew the directory by {grown} bytes"
    );
}

/// Bytes of the directory database and its write-ahead log.
fn directory_bytes(s: &Server) -> u64 {
    ["directory.db", "directory.db-wal"]
        .iter()
        .map(|f| std::fs::metadata(s.data_dir.join(f)).map_or(0, |m| m.len()))
        .sum()
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let s = server().await;
    let (account, _) = s.account("Password change");
    let email = "changer@example.com";
    let (_, password) = user(&s, &account, email, "user");
    let here = sign_in(&s, email, &password).await;
    let elsewhere = sign_in(&s, email, &password).await;

    // The current password is required, and the new one must be long enough.
    let (st, html) = console_post(
        &s,
        &here,
        "/app/account/security/password",
        &[
            ("current_password", "not it"),
            ("new_password", "a new password"),
            ("repeat_password", "a new password"),
        ],
    )
    .await;
    assert_eq!(st, 401, "{html}");
    let (st, _) = console_post(
        &s,
        &here,
        "/app/account/security/password",
        &[
            ("current_password", &password),
            ("new_password", "short"),
            ("repeat_password", "short"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = console_post(
        &s,
        &here,
        "/app/account/security/password",
        &[
            ("current_password", &password),
            ("new_password", "a new password"),
            ("repeat_password", "another one!"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        get(&s, &elsewhere.0, "/app/objects/contacts").await.0,
        200,
        "nothing changed yet"
    );

    let (st, html) = console_post(
        &s,
        &here,
        "/app/account/security/password",
        &[
            ("current_password", &password),
            ("new_password", "a new password"),
            ("repeat_password", "a new password"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("Your password was changed"));
    assert_eq!(
        get(&s, &here.0, "/app/objects/contacts").await.0,
        200,
        "this session goes on"
    );
    assert_eq!(
        get(&s, &elsewhere.0, "/app/objects/contacts").await.0,
        303,
        "the other one ended"
    );

    let form = login_form(&s).await;
    assert_eq!(post_login(&s, &form, email, &password).await.0, 401);
    assert_eq!(post_login(&s, &form, email, "a new password").await.0, 303);
}

#[tokio::test]
async fn a_user_sees_and_ends_their_sessions_and_turns_two_factor_off() {
    let s = server().await;
    let (account, _) = s.account("Sessions");
    let email = "sessions@example.com";
    let (_, password) = user(&s, &account, email, "user");
    let a = sign_in(&s, email, &password).await;
    let b = sign_in(&s, email, &password).await;
    let c = sign_in(&s, email, &password).await;

    let (_, page) = get(&s, &a.0, "/app/account/security").await;
    assert_eq!(
        page.matches("name=\"session\" value=\"").count() - 1,
        2,
        "two others to end, and \"others\""
    );
    assert!(page.contains("This session"));
    let at = page.find("name=\"session\" value=\"").unwrap() + 22;
    let one = page[at..].split('"').next().unwrap().to_string();
    assert_ne!(one, "others");
    let (st, _) = console_post(
        &s,
        &a,
        "/app/account/security/sessions",
        &[("session", &one)],
    )
    .await;
    assert_eq!(st, 200);
    let statuses = [
        get(&s, &b.0, "/app/objects/contacts").await.0,
        get(&s, &c.0, "/app/objects/contacts").await.0,
    ];
    assert_eq!(
        statuses.iter().filter(|&&st| st == 303).count(),
        1,
        "one session ended: {statuses:?}"
    );
    // Ending it again: already ended.
    assert_eq!(
        console_post(
            &s,
            &a,
            "/app/account/security/sessions",
            &[("session", &one)]
        )
        .await
        .0,
        404
    );
    let (st, _) = console_post(
        &s,
        &a,
        "/app/account/security/sessions",
        &[("session", "others")],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(get(&s, &b.0, "/app/objects/contacts").await.0, 303);
    assert_eq!(get(&s, &c.0, "/app/objects/contacts").await.0, 303);
    assert_eq!(get(&s, &a.0, "/app/objects/contacts").await.0, 200);

    // Setting up TOTP needs the password.
    let (st, _) = console_post(
        &s,
        &a,
        "/app/account/security/totp",
        &[("password", "not it")],
    )
    .await;
    assert_eq!(st, 401);
    let (totp, on_at) = enable_totp(&s, &a, &password).await;
    // Turning it off needs the password and a code.
    let (st, _) = console_post(
        &s,
        &a,
        "/app/account/security/totp/disable",
        &[("password", "not it"), ("code", &totp.generate(on_at + 30))],
    )
    .await;
    assert_eq!(st, 401);
    let (st, _) = console_post(
        &s,
        &a,
        "/app/account/security/totp/disable",
        &[("password", &password), ("code", &wrong_code(&totp, 1))],
    )
    .await;
    assert_eq!(st, 401);
    let (st, html) = console_post(
        &s,
        &a,
        "/app/account/security/totp/disable",
        &[
            ("password", &password),
            ("code", &totp.generate(on_at + 30)),
        ],
    )
    .await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("Two-factor authentication is off"));
    // The password alone signs in again.
    let form = login_form(&s).await;
    let (st, to, _) = post_login(&s, &form, email, &password).await;
    assert_eq!((st, to.as_deref()), (303, Some("/app")));
}
