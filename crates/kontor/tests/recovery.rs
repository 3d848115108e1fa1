//! Getting back in: "forgot password" by an e-mailed single-use link, an admin's reset of a
//! user's password or second factor, and the operator's `kontor admin user|token` commands.

mod common;

use common::console::{
    console_get, console_page, console_post, cookie_from, csrf_in, http, sign_in, user,
};
use common::{mails_to, Server};
use reqwest::header::{COOKIE, LOCATION};
use std::time::{Duration, Instant};

async fn server() -> Server {
    Server::start_with(None, &[("KONTOR_SIGN_IN_PER_CLIENT_PER_MINUTE", "100000")]).await
}

/// Waits for the `n`th message to `to` (sent in the background).
async fn wait_for_mails(s: &Server, to: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mails = mails_to(s, to);
        if mails.len() >= n {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "{n} mails to {to}: {}",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The reset link's path in a message.
fn link_in(mail: &str) -> String {
    let at = mail.find("/app/login/reset/").expect("a reset link");
    mail[at..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

/// A public form's CSRF cookie and token (the sign-in, forgot and reset pages).
async fn public_form(s: &Server, path: &str) -> (u16, String, String) {
    let page = http()
        .get(format!("{}{path}", s.base))
        .send()
        .await
        .unwrap();
    let status = page.status().as_u16();
    let cookie = cookie_from(&page, "kontor_login_csrf").unwrap_or_default();
    let html = page.text().await.unwrap();
    let csrf = if status == 200 {
        csrf_in(&html)
    } else {
        String::new()
    };
    (status, cookie, csrf)
}

async fn post_public(s: &Server, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let (mut st, mut cookie, mut csrf) = public_form(s, path).await;
    if st != 200 {
        // A spent link shows no form: post with the token of another public form.
        (st, cookie, csrf) = public_form(s, "/app/login/forgot").await;
        assert_eq!(st, 200);
    }
    let mut fields = form.to_vec();
    fields.push(("_csrf", &csrf));
    let resp = http()
        .post(format!("{}{path}", s.base))
        .header(COOKIE, format!("kontor_login_csrf={cookie}"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Signs in with the form; the status (303 in, 401 refused) and where it leads.
async fn try_sign_in(s: &Server, email: &str, password: &str) -> (u16, Option<String>) {
    let (_, cookie, csrf) = public_form(s, "/app/login").await;
    let resp = http()
        .post(format!("{}/app/login", s.base))
        .header(COOKIE, format!("kontor_login_csrf={cookie}"))
        .form(&[("email", email), ("password", password), ("_csrf", &csrf)])
        .send()
        .await
        .unwrap();
    let to = resp
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), to)
}

async fn status_of(s: &Server, session: &str, path: &str) -> u16 {
    console_get(s, session, path).await.status().as_u16()
}

#[tokio::test]
async fn a_forgotten_password_is_set_again_with_a_single_use_link() {
    let s = server().await;
    let (account, _) = s.account("Forgetful");
    let email = "forgetful@example.com";
    let (_, password) = user(&s, &account, email, "user");
    let session = sign_in(&s, email, &password).await;

    // Known and unknown addresses get the same answer.
    let (st, unknown) =
        post_public(&s, "/app/login/forgot", &[("email", "ghost@example.com")]).await;
    assert_eq!(st, 200);
    let (st, known) = post_public(&s, "/app/login/forgot", &[("email", email)]).await;
    assert_eq!(st, 200);
    assert_eq!(
        unknown.replace("ghost@example.com", "X"),
        known.replace(email, "X"),
        "the page does not tell whether the address is known"
    );
    let mails = wait_for_mails(&s, email, 1).await;
    assert!(mails_to(&s, "ghost@example.com").is_empty());
    let link = link_in(&mails[0]);
    assert!(mails[0].contains("works once"), "{}", mails[0]);

    // Bad input is refused without spending the link.
    assert_eq!(
        post_public(&s, "/app/login/forgot", &[("email", &"a".repeat(300))])
            .await
            .0,
        400
    );
    let (st, _) = post_public(
        &s,
        &link,
        &[
            ("new_password", "a new password"),
            ("repeat_password", "another password"),
        ],
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = post_public(
        &s,
        &link,
        &[("new_password", "short"), ("repeat_password", "short")],
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(public_form(&s, &link).await.0, 200, "the link still works");

    let (st, html) = post_public(
        &s,
        &link,
        &[
            ("new_password", "a new password"),
            ("repeat_password", "a new password"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("Your password is set"));
    // Once only; every session ended; the new password signs in, the old one does not.
    assert_eq!(public_form(&s, &link).await.0, 404);
    let (st, _) = post_public(
        &s,
        &link,
        &[
            ("new_password", "a third password"),
            ("repeat_password", "a third password"),
        ],
    )
    .await;
    assert_eq!(st, 404);
    assert_eq!(
        status_of(&s, &session.0, "/app/objects/contacts").await,
        303
    );
    assert_eq!(try_sign_in(&s, email, &password).await.0, 401);
    assert_eq!(try_sign_in(&s, email, "a new password").await.0, 303);
    // A made-up or mangled link is refused the same way.
    assert_eq!(public_form(&s, "/app/login/reset/1.00").await.0, 404);
    assert_eq!(public_form(&s, &format!("{link}0")).await.0, 404);

    // The form cannot flood a mailbox: at most five links an address per quarter hour.
    for _ in 0..6 {
        assert_eq!(
            post_public(&s, "/app/login/forgot", &[("email", email)])
                .await
                .0,
            200
        );
    }
    wait_for_mails(&s, email, 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mails_to(&s, email).len(), 5);
}

#[tokio::test]
async fn an_admin_resets_a_users_password_and_second_factor() {
    let s = server().await;
    let (account, _) = s.account("Resetting");
    let (_, admin_pw) = user(&s, &account, "admin@example.com", "admin");
    let (user_id, user_pw) = user(&s, &account, "member@example.com", "user");
    let (boss_id, _) = user(&s, &account, "boss@example.com", "super-admin");
    let admin = sign_in(&s, "admin@example.com", &admin_pw).await;
    let member = sign_in(&s, "member@example.com", &user_pw).await;

    // The member turns two-factor authentication on (the secret and code as the page asks).
    let (st, html) = console_post(
        &s,
        &member,
        "/app/account/security/totp",
        &[("password", &user_pw)],
    )
    .await;
    assert_eq!(st, 200, "{html}");
    let at = html.find("id=\"totp-secret\">").unwrap() + 17;
    let secret = html[at..].split('<').next().unwrap().trim().to_string();
    let totp = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        totp_rs::Secret::Encoded(secret).to_bytes().unwrap(),
        None,
        String::new(),
    );
    let (st, _) = console_post(
        &s,
        &member,
        "/app/account/security/totp/confirm",
        &[("code", &totp.generate_current().unwrap())],
    )
    .await;
    assert_eq!(st, 200);
    let page = console_page(&s, &admin.0, "/app/settings/users").await;
    assert!(page.contains("Reset two-factor authentication of member@example.com"));

    // Reset two-factor: the member's sessions end and the password alone signs in.
    let (st, _) = console_post(
        &s,
        &admin,
        &format!("/app/settings/users/{user_id}"),
        &[("action", "reset_2fa")],
    )
    .await;
    assert_eq!(st, 303);
    assert_eq!(status_of(&s, &member.0, "/app/objects/contacts").await, 303);
    assert_eq!(
        try_sign_in(&s, "member@example.com", &user_pw).await,
        (303, Some("/app".into()))
    );
    let mails = wait_for_mails(&s, "member@example.com", 1).await;
    assert!(mails[0].contains("reset the two-factor authentication"));

    // Reset the password: it stops working at once, and the e-mailed link sets a new one.
    let member = sign_in(&s, "member@example.com", &user_pw).await;
    let (st, _) = console_post(
        &s,
        &admin,
        &format!("/app/settings/users/{user_id}"),
        &[("action", "reset_password")],
    )
    .await;
    assert_eq!(st, 303);
    assert_eq!(status_of(&s, &member.0, "/app/objects/contacts").await, 303);
    assert_eq!(try_sign_in(&s, "member@example.com", &user_pw).await.0, 401);
    let mails = wait_for_mails(&s, "member@example.com", 2).await;
    let mail = mails
        .iter()
        .find(|m| m.contains("/app/login/reset/"))
        .unwrap();
    assert!(
        mail.contains("admin@example.com, an admin of Resetting"),
        "{mail}"
    );
    let (st, _) = post_public(
        &s,
        &link_in(mail),
        &[
            ("new_password", "chosen by me"),
            ("repeat_password", "chosen by me"),
        ],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        try_sign_in(&s, "member@example.com", "chosen by me")
            .await
            .0,
        303
    );

    // An admin cannot reset a super admin's password; both resets are in the audit log.
    let (st, _) = console_post(
        &s,
        &admin,
        &format!("/app/settings/users/{boss_id}"),
        &[("action", "reset_password")],
    )
    .await;
    assert_eq!(st, 403);
    let log = console_page(&s, &admin.0, "/app/settings/audit").await;
    assert!(log.contains("user.password_reset_by_admin"));
    assert!(log.contains("user.2fa_reset_by_admin"));
}

#[tokio::test]
async fn the_operator_lists_and_resets_users_and_lists_and_revokes_tokens() {
    let s = server().await;
    let (account, token) = s.account("Operated");
    let (user_id, password) = user(&s, &account, "ops@example.com", "admin");
    let session = sign_in(&s, "ops@example.com", &password).await;

    let list = s.cli(&["admin", "user", "list", "--account", &account]);
    let line = list
        .lines()
        .find(|l| l.ends_with("ops@example.com"))
        .expect("the user is listed");
    assert_eq!(
        line,
        format!("{user_id}\tadmin\tactive\t-\tops@example.com")
    );

    let link = s.cli(&[
        "admin",
        "user",
        "reset-password",
        "--account",
        &account,
        "--user",
        "OPS@example.com",
    ]);
    assert!(
        link.starts_with("http") && link.contains("/app/login/reset/"),
        "{link}"
    );
    assert_eq!(
        status_of(&s, &session.0, "/app/objects/contacts").await,
        303
    );
    assert_eq!(try_sign_in(&s, "ops@example.com", &password).await.0, 401);
    let path = &link[link.find("/app/").unwrap()..];
    let (st, _) = post_public(
        &s,
        path,
        &[
            ("new_password", "from the operator"),
            ("repeat_password", "from the operator"),
        ],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        try_sign_in(&s, "ops@example.com", "from the operator")
            .await
            .0,
        303
    );

    // Resetting a second factor nobody set up is an error, said plainly.
    let out = common::kontor(&s.data_dir)
        .args([
            "admin",
            "user",
            "reset-2fa",
            "--account",
            &account,
            "--user",
            &user_id,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no two-factor authentication"));

    let tokens = s.cli(&["admin", "token", "list", "--account", &account]);
    let line = tokens
        .lines()
        .find(|l| l.ends_with("\ttests"))
        .expect("the CLI's token is listed");
    let id = line.split('\t').next().unwrap().to_string();
    assert!(
        line.contains("\tactive\t") && line.contains("\toperator\t"),
        "{line}"
    );
    assert_eq!(
        s.call(&token, "GET", "/crm/v3/objects/contacts", None)
            .await
            .0,
        200
    );
    assert_eq!(
        s.cli(&[
            "admin",
            "token",
            "revoke",
            "--account",
            &account,
            "--token",
            &id
        ]),
        format!("{id}\trevoked")
    );
    assert_eq!(
        s.call(&token, "GET", "/crm/v3/objects/contacts", None)
            .await
            .0,
        401
    );
    let tokens = s.cli(&["admin", "token", "list", "--account", &account]);
    assert!(tokens
        .lines()
        .any(|l| l.starts_with(&format!("{id}\trevoked\t"))));
}
