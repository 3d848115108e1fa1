//! The HTTP layer as an attacker on the internet meets it: half-sent requests and trickled
//! bodies are cut off; every response carries the headers that stop framing, sniffing and
//! caching; cookies are `Secure` when the server is reached over HTTPS.

mod common;

use common::console::{cookie_from, http, sign_in, user};
use common::Server;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, REFERRER_POLICY, SET_COOKIE,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection or `limit` passes; returns what came and when
/// the connection ended (`None`: still open at `limit`).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&got).into(), Some(start.elapsed()))
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), None),
        }
    }
}

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn half_sent_requests_and_trickled_bodies_are_cut_off() {
    let s = Server::start_with(
        None,
        &[
            ("KONTOR_HEADER_READ_TIMEOUT_SECONDS", "1"),
            ("KONTOR_REQUEST_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await;

    // A request head that never ends: the connection is closed after the head deadline.
    let mut half = TcpStream::connect(addr(&s)).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: kontor\r\nX-Slow: ")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut half, Duration::from_secs(10)).await;
    let closed = closed.expect("a half-sent request head is not held open");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(5),
        "closed after {closed:?}"
    );

    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(addr(&s)).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "a silent connection is not held open");

    // A body that trickles: the request is answered 408 at the request deadline.
    let mut slow = TcpStream::connect(addr(&s)).await.unwrap();
    slow.write_all(
        b"POST /app/login HTTP/1.1\r\nHost: kontor\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nemail=a",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (answer, _) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a trickled body is answered 408: {answer:?}"
    );
    let head = answer.to_ascii_lowercase();
    assert!(
        head.contains("x-frame-options: deny") && head.contains("content-security-policy:"),
        "the 408 carries the security headers of every answer: {answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(6));

    // Honest clients are served as before.
    let r = http()
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn header<'a>(r: &'a reqwest::Response, name: &reqwest::header::HeaderName) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{} carries {name}", r.url()))
        .to_str()
        .unwrap()
}

/// What every response must carry, whatever produced it.
fn assert_hardened(r: &reqwest::Response) {
    let csp = header(r, &CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{}: CSP {csp:?}", r.url());
    }
    assert!(!csp.contains("unsafe-inline"), "{}: CSP {csp:?}", r.url());
    assert_eq!(header(r, &X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(header(r, &X_FRAME_OPTIONS), "DENY");
    assert_eq!(header(r, &REFERRER_POLICY), "no-referrer");
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_pages_are_not_stored() {
    let s = Server::start().await;
    let (account, token) = s.account("Headers");
    let (_, password) = user(&s, &account, "owner@headers.example", "super-admin");
    let session = sign_in(&s, "owner@headers.example", &password).await;
    let h = http();

    // Pages with secrets (the security page shows sessions; the TOTP set-up shows a seed),
    // API answers with record data, errors and the sign-in page: none may be stored.
    let mut pages = Vec::new();
    for path in [
        "/app/account/security",
        "/app/settings/tokens",
        "/app/objects/contacts",
        "/app/no-such-page",
    ] {
        pages.push(
            h.get(format!("{}{path}", s.base))
                .header(COOKIE, format!("kontor_session={}", session.0))
                .send()
                .await
                .unwrap(),
        );
    }
    pages.push(h.get(format!("{}/app/login", s.base)).send().await.unwrap());
    for path in [
        "/crm/v3/objects/contacts",
        "/crm/v3/objects/nope",
        "/healthz",
    ] {
        pages.push(
            h.get(format!("{}{path}", s.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        );
    }
    for r in &pages {
        assert_hardened(r);
        assert_eq!(header(r, &CACHE_CONTROL), "no-store", "{}", r.url());
        assert!(
            r.headers().get(STRICT_TRANSPORT_SECURITY).is_none(),
            "no HSTS over plain HTTP"
        );
    }

    // The console's own assets may be cached; the script is the only one there is.
    for asset in ["/app/assets/app.css", "/app/assets/app.js"] {
        let r = h.get(format!("{}{asset}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_hardened(&r);
        assert!(header(&r, &CACHE_CONTROL).starts_with("max-age="));
    }
    let html = h
        .get(format!("{}/app/account/security", s.base))
        .header(COOKIE, format!("kontor_session={}", session.0))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<script>") && !html.contains(" style=\""),
        "no inline script or style for the policy to refuse"
    );

    // Over plain HTTP the session cookie is HttpOnly and SameSite, not Secure.
    let r = h.get(format!("{}/app/login", s.base)).send().await.unwrap();
    let set = header(&r, &SET_COOKIE).to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
}

#[tokio::test]
async fn behind_https_cookies_are_secure_and_hsts_is_sent() {
    // The public URL says users come over HTTPS (a proxy ends TLS): no setting needed.
    let s = Server::start_with(None, &[("KONTOR_PUBLIC_URL", "https://crm.example.com")]).await;
    let h = http();
    let r = h.get(format!("{}/app/login", s.base)).send().await.unwrap();
    assert!(header(&r, &STRICT_TRANSPORT_SECURITY).starts_with("max-age="));
    let set = header(&r, &SET_COOKIE).to_string();
    assert!(set.contains("; Secure"), "{set}");
    assert!(cookie_from(&r, "kontor_login_csrf").is_some());
}
