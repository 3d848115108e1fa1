//! Rotating the server key: two-factor secrets sealed under the old key still work after
//! `kontor admin key rotate` (they were sealed again), download links sent before keep working
//! while the old key is kept as previous, and once it is dropped only the new key counts.

mod common;

use common::console::{csrf_in, enable_totp, http, post_sign_in_form, sign_in, user};
use common::{wait_for_backup, Server};
use reqwest::header::COOKIE;
use std::os::unix::fs::PermissionsExt;
use totp_rs::TOTP;

/// Signs in with password and code; returns the status of the code step's answer.
async fn sign_in_with_code(s: &Server, email: &str, password: &str, totp: &TOTP, at: u64) -> u16 {
    let h = http();
    let resp = post_sign_in_form(s, email, password).await;
    assert_eq!(resp.status(), 303);
    let half = common::console::cookie_from(&resp, "kontor_session").unwrap();
    let page = common::console::console_page(s, &half, "/app/login/second-factor").await;
    let resp = h
        .post(format!("{}/app/login/second-factor", s.base))
        .header(COOKIE, format!("kontor_session={half}"))
        .form(&[
            ("code", totp.generate(at).as_str()),
            ("_csrf", &csrf_in(&page)),
        ])
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

/// Downloads a link's path and query from the server `s` (a restarted server has a new port).
async fn download_status(s: &Server, url: &str) -> u16 {
    let path = &url[url.find("/kontor/").unwrap()..];
    reqwest::get(format!("{}{path}", s.base))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn rotating_the_key_keeps_second_factors_and_sent_links_working() {
    let s = Server::start().await;
    let (account, token) = s.account("Keys");
    let email = "keys@example.com";
    let (_, password) = user(&s, &account, email, "super-admin");
    let session = sign_in(&s, email, &password).await;
    let (totp, on_at) = enable_totp(&s, &session, &password).await;
    let (st, b) = s.call(&token, "POST", "/kontor/v1/backups", None).await;
    assert_eq!(st, 202, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    wait_for_backup(&s, &token, &id, "COMPLETED").await;
    let link_path = format!("/kontor/v1/backups/{id}/download-link");
    let (_, link) = s.call(&token, "GET", &link_path, None).await;
    let old_link = link["url"].as_str().unwrap().to_string();
    assert_eq!(download_status(&s, &old_link).await, 200);

    let data_dir = s.data_dir.clone();
    let key_file = data_dir.join("secret.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let s = s.kill9();
    let out = common::kontor(&s)
        .args(["admin", "key", "rotate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 sealed values sealed again"), "{said}");
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key.trim(), old_key.trim());
    let previous = data_dir.join("secret.key.previous");
    assert_eq!(
        std::fs::read_to_string(&previous).unwrap().trim(),
        old_key.trim()
    );
    for f in [&key_file, &previous] {
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o077,
            0
        );
    }
    assert!(!data_dir.join("secret.key.next").exists());

    // After the rotation: the old link works, and a new link works.
    let s = Server::start_with(Some(data_dir.clone()), &[]).await;
    assert_eq!(
        download_status(&s, &old_link).await,
        200,
        "a link sent before the rotation"
    );
    let (_, link) = s.call(&token, "GET", &link_path, None).await;
    let new_link = link["url"].as_str().unwrap().to_string();
    assert_ne!(new_link, old_link);
    assert_eq!(download_status(&s, &new_link).await, 200);

    // Once the old key is dropped, its links end; the second factor, sealed again under the
    // new key, does not need it.
    let s_dir = s.kill9();
    std::fs::remove_file(&previous).unwrap();
    let s = Server::start_with(Some(s_dir), &[]).await;
    assert_eq!(download_status(&s, &old_link).await, 403);
    assert_eq!(download_status(&s, &new_link).await, 200);
    assert_eq!(
        sign_in_with_code(&s, email, &password, &totp, on_at + 30).await,
        303,
        "the seed was sealed under the new key"
    );
}
