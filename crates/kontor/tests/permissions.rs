//! The permission matrix: every route the server registers, called by every kind of caller,
//! against the access each route is specified to have. The routes come from the router itself
//! (`kontor_server::route_paths`, and the methods each path answers), so a route added without
//! an entry in `SPEC` fails this test, as does an entry whose route is gone.

mod common;

use common::console::{console_post, console_token, http, sign_in, user};
use common::routes::{concrete, sample_ids};
use common::{wait_for_backup, Server};
use kontor_domain::Role;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::json;
use std::collections::BTreeSet;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    /// No sign-in at all (health check, the sign-in pages, static assets).
    Public,
    /// A live API token of the account.
    Token,
    /// A live API token of an active super admin, or one the operator made.
    SuperAdminToken,
    /// A signed, expiring link; a token alone opens nothing.
    SignedLink,
    /// A console session of a user holding at least this role.
    Console(Role),
}

use Access::*;

const SUPER: Access = Console(Role::SuperAdmin);
const ADMIN: Access = Console(Role::Admin);
const USER: Access = Console(Role::User);

#[path = "permissions/spec.rs"]
mod spec;
use spec::SPEC;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A caller: an API token, a console session, or nobody.
#[derive(Clone, Debug)]
struct Caller {
    name: &'static str,
    token: Option<String>,
    /// Session cookie value.
    session: Option<String>,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Nobody,
    /// A token that must not open anything: garbage, revoked, of a deactivated or demoted user.
    DeadToken,
    /// A session that must not open anything: of a deactivated user.
    DeadSession,
    /// Of account A, with this role (`None`: the operator's token).
    Member(Option<Role>),
    /// A super admin (or the operator's token) of another account, B.
    Other,
    Suspended,
    Migrating,
}

fn account(s: &Server, name: &str) -> String {
    s.cli(&[
        "admin",
        "account",
        "create",
        "--name",
        name,
        "--region",
        "us",
        "--tier",
        "enterprise",
    ])
}

/// The title of an HTML error page (`<h1>`).
fn title(html: &str) -> &str {
    html.split("<h1>")
        .nth(1)
        .and_then(|t| t.split("</h1>").next())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_admits_exactly_whom_it_should() {
    let s = Server::start().await;
    let h = http();

    // The routes as the router has them: each registered path, with the methods it answers.
    let mut routes = BTreeSet::new();
    for path in kontor_server::route_paths() {
        let probe = concrete(path, &sample_ids());
        for m in METHODS {
            let r = h
                .request(m.parse().unwrap(), format!("{}{probe}", s.base))
                .send()
                .await
                .unwrap();
            if r.status() != 405 {
                routes.insert((m, path));
            }
        }
    }
    let spec: BTreeSet<(&str, &str)> = SPEC.iter().map(|(m, p, _)| (*m, *p)).collect();
    let unspecified: Vec<_> = routes.difference(&spec).collect();
    assert!(
        unspecified.is_empty(),
        "routes without an entry in the permission matrix: {unspecified:?}"
    );
    let gone: Vec<_> = spec.difference(&routes).collect();
    assert!(gone.is_empty(), "entries whose route is gone: {gone:?}");

    // Account A and its people.
    let a = account(&s, "Matrix A");
    let (_, su_pw) = user(&s, &a, "su@a.example", "super-admin");
    let (_, ad_pw) = user(&s, &a, "ad@a.example", "admin");
    let (_, us_pw) = user(&s, &a, "us@a.example", "user");
    let (ex_id, ex_pw) = user(&s, &a, "ex@a.example", "admin");
    let (dm_id, dm_pw) = user(&s, &a, "dm@a.example", "super-admin");
    let operator_a = s.cli(&["admin", "token", "create", "--account", &a, "--name", "ops"]);
    let su = sign_in(&s, "su@a.example", &su_pw).await;
    let ad = sign_in(&s, "ad@a.example", &ad_pw).await;
    let us = sign_in(&s, "us@a.example", &us_pw).await;
    let ex = sign_in(&s, "ex@a.example", &ex_pw).await;
    let dm = sign_in(&s, "dm@a.example", &dm_pw).await;
    let su_token = console_token(&s, &su, "su").await;
    let ad_token = console_token(&s, &ad, "ad").await;
    let revoked = console_token(&s, &ad, "to revoke").await;
    let ex_token = console_token(&s, &ex, "ex").await;
    let dm_token = console_token(&s, &dm, "dm").await;

    // What only account A holds: no other caller may ever see it.
    let marker = format!("marker-{}@a.example", std::process::id());
    let (st, contact) = s
        .call(
            &operator_a,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": marker, "firstname": "Marker"}})),
        )
        .await;
    assert_eq!(st, 201);
    let contact_id = contact["id"].as_str().unwrap().to_string();
    let (st, company) = s
        .call(
            &operator_a,
            "POST",
            "/crm/v3/objects/companies",
            Some(json!({"properties": {"name": "Marker Company"}})),
        )
        .await;
    assert_eq!(st, 201);
    let company_id = company["id"].as_str().unwrap().to_string();

    // Before they die, the tokens worked (so the refusals below are about their death).
    for t in [&ex_token, &dm_token, &revoked] {
        assert_eq!(
            s.call(t, "GET", "/crm/v3/objects/contacts", None).await.0,
            200
        );
    }
    let revoked_id = {
        let (st, html) = (
            200,
            h.get(format!("{}/app/settings/tokens", s.base))
                .header(COOKIE, format!("kontor_session={}", su.0))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        assert_eq!(st, 200);
        // Rows are `token-<id>`, in creation order: the third console token is "to revoke".
        let at = html.find("to revoke").unwrap();
        let row = html[..at].rfind("id=\"token-").unwrap() + 10;
        html[row..].split('"').next().unwrap().to_string()
    };
    let (st, _) = console_post(
        &s,
        &su,
        &format!("/app/settings/tokens/{revoked_id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(st, 303);
    let (st, page) = console_post(
        &s,
        &su,
        &format!("/app/settings/users/{ex_id}"),
        &[("action", "deactivate"), ("role", "")],
    )
    .await;
    assert!(st == 303 || st == 200, "deactivating: {st} {page}");
    let (st, page) = console_post(
        &s,
        &su,
        &format!("/app/settings/users/{dm_id}"),
        &[("action", "role"), ("role", "admin")],
    )
    .await;
    assert!(st == 303 || st == 200, "demoting: {st} {page}");

    // Account B (another tenant), and two closed accounts.
    let b = account(&s, "Matrix B");
    let (_, b_pw) = user(&s, &b, "su@b.example", "super-admin");
    let operator_b = s.cli(&["admin", "token", "create", "--account", &b, "--name", "ops"]);
    let b_session = sign_in(&s, "su@b.example", &b_pw).await;
    let b_token = console_token(&s, &b_session, "b").await;
    s.call(
        &operator_b,
        "POST",
        "/crm/v3/objects/contacts",
        Some(json!({"properties": {"email": "someone@b.example"}})),
    )
    .await;
    let mut closed = Vec::new();
    for (name, state) in [("Matrix C", "suspended"), ("Matrix D", "migrating")] {
        let id = account(&s, name);
        let email = format!("su@{}.example", state);
        let (_, pw) = user(&s, &id, &email, "super-admin");
        let session = sign_in(&s, &email, &pw).await;
        let token = console_token(&s, &session, "t").await;
        let op = s.cli(&[
            "admin",
            "token",
            "create",
            "--account",
            &id,
            "--name",
            "ops",
        ]);
        s.cli(&[
            "admin",
            "account",
            "set-state",
            "--account",
            &id,
            "--state",
            state,
        ]);
        closed.push((state, session, token, op));
    }

    let tok = |name, t: &str, kind| Caller {
        name,
        token: Some(t.to_string()),
        session: None,
        kind,
    };
    let ses = |name, x: &(String, String), kind| Caller {
        name,
        token: None,
        session: Some(x.0.clone()),
        kind,
    };
    let (suspended, migrating) = (&closed[0], &closed[1]);
    let callers = vec![
        Caller {
            name: "nobody",
            token: None,
            session: None,
            kind: Kind::Nobody,
        },
        tok(
            "garbage token",
            &format!("kontor-pat-{a}-{}", "0".repeat(64)),
            Kind::DeadToken,
        ),
        tok("revoked token", &revoked, Kind::DeadToken),
        tok("token of a deactivated user", &ex_token, Kind::DeadToken),
        tok("token of a demoted user", &dm_token, Kind::DeadToken),
        tok("admin's token", &ad_token, Kind::Member(Some(Role::Admin))),
        tok(
            "super admin's token",
            &su_token,
            Kind::Member(Some(Role::SuperAdmin)),
        ),
        tok("operator's token", &operator_a, Kind::Member(None)),
        tok("other account's token", &b_token, Kind::Other),
        tok("other account's operator token", &operator_b, Kind::Other),
        tok("suspended account's token", &suspended.2, Kind::Suspended),
        tok(
            "suspended account's operator token",
            &suspended.3,
            Kind::Suspended,
        ),
        tok("migrating account's token", &migrating.2, Kind::Migrating),
        ses("deactivated user's session", &ex, Kind::DeadSession),
        ses("user's session", &us, Kind::Member(Some(Role::User))),
        ses("admin's session", &ad, Kind::Member(Some(Role::Admin))),
        ses(
            "super admin's session",
            &su,
            Kind::Member(Some(Role::SuperAdmin)),
        ),
        ses("other account's session", &b_session, Kind::Other),
        ses("suspended account's session", &suspended.1, Kind::Suspended),
        ses("migrating account's session", &migrating.1, Kind::Migrating),
    ];
    let ids = [
        ("object_type", "contacts".to_string()),
        ("id", contact_id.clone()),
        ("name", "firstname".into()),
        ("from_type", "contacts".into()),
        ("to_type", "companies".into()),
        ("from_id", contact_id.clone()),
        ("to_id", company_id.clone()),
        ("type_id", "1".into()),
        ("association", "1".into()),
        ("token", "0".into()),
        ("plan", "1".into()),
        ("portal", a.clone()),
        ("guid", "not-a-form".into()),
        ("stage", "1".into()),
        ("app_id", "1".into()),
        ("subscription_id", "1".into()),
        ("sf_type", "Contact".into()),
        ("field", "Department".into()),
    ];

    // Deleting routes last, so that what they remove is there for every other call.
    let mut spec: Vec<&(&str, &str, Access)> = SPEC.iter().collect();
    spec.sort_by_key(|(m, _, _)| *m == "DELETE");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (method, path, access) in spec {
        if *access == Public {
            continue;
        }
        let url = format!("{}{}", s.base, concrete(path, &ids));
        for c in &callers {
            let is_console = matches!(access, Console(_));
            // A token is not a console credential and a session cookie is not an API one:
            // each kind of route is checked with its own kind of caller (and with nobody).
            if c.kind != Kind::Nobody && (c.session.is_some() != is_console) {
                continue;
            }
            let mut req = h.request(method.parse().unwrap(), &url);
            if let Some(t) = &c.token {
                req = req.bearer_auth(t);
            }
            if let Some(sess) = &c.session {
                req = req.header(COOKIE, format!("kontor_session={sess}"));
            }
            req = if is_console {
                if *method == "POST" {
                    req.form(&[("_csrf", "not-the-session-token")])
                } else {
                    req
                }
            } else if *method != "GET" && *method != "DELETE" {
                req.json(&json!({}))
            } else {
                req
            };
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = resp.text().await.unwrap_or_default();
            checked += 1;
            let page = title(&body);
            let to_sign_in = status == 303 && location.starts_with("/app/login");
            let verdict: Result<(), String> = match (access, c.kind) {
                (SignedLink, _) => ((status == 400 || status == 403)
                    && !body.contains("PK\u{3}\u{4}"))
                .then_some(())
                .ok_or_else(|| "a link without a signature must be refused".into()),
                (Console(_), Kind::Nobody | Kind::DeadSession) => to_sign_in
                    .then_some(())
                    .ok_or_else(|| "expected a redirect to the sign-in page".into()),
                (_, Kind::Nobody | Kind::DeadToken) => (status == 401)
                    .then_some(())
                    .ok_or_else(|| "expected 401".into()),
                (Console(_), Kind::Suspended) => (status == 403 && page == "Account suspended")
                    .then_some(())
                    .ok_or_else(|| "expected the suspended page (403)".into()),
                (_, Kind::Suspended) => (status == 403 && body.contains("ACCOUNT_SUSPENDED"))
                    .then_some(())
                    .ok_or_else(|| "expected 403 ACCOUNT_SUSPENDED".into()),
                (_, Kind::Migrating) => (status == 477)
                    .then_some(())
                    .ok_or_else(|| "expected 477".into()),
                (Console(need), Kind::Member(Some(role))) if !role.includes(*need) => {
                    (status == 403 && page == "Not allowed")
                        .then_some(())
                        .ok_or_else(|| "expected 403 Not allowed".into())
                }
                (SuperAdminToken, Kind::Member(Some(role))) if role != Role::SuperAdmin => (status
                    == 403)
                    .then_some(())
                    .ok_or_else(|| "expected 403 for a token that is not a super admin's".into()),
                // Admitted: anything but a refusal of who the caller is.
                (_, Kind::Member(_) | Kind::Other) => {
                    let refused = status == 401
                        || status == 477
                        || to_sign_in
                        || (status == 403
                            && (page == "Not allowed"
                                || body.contains("MISSING_SCOPES")
                                || body.contains("ACCOUNT_SUSPENDED")));
                    if refused {
                        Err("expected to be admitted".into())
                    } else if c.kind == Kind::Other && body.contains(&marker) {
                        Err("another account's data was shown".into())
                    } else if status >= 500 && status != 501 {
                        // (501 is kontor saying what it does not serve yet.)
                        Err("the server failed".into())
                    } else {
                        Ok(())
                    }
                }
                (_, Kind::DeadSession) => Ok(()),
            };
            if let Err(why) = verdict {
                failures.push(format!(
                    "{method} {path} as {}: {why}; got {status} {location} {}",
                    c.name,
                    body.chars().take(160).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} calls broke the matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 1000, "the matrix ran only {checked} calls");

    // Actions inside one route that need more than the route does.
    let (st, page) = console_post(
        &s,
        &us,
        "/app/recycle-bin",
        &[
            ("action", "purge"),
            ("type", "contacts"),
            ("id", &contact_id),
        ],
    )
    .await;
    assert_eq!((st, title(&page)), (403, "Not allowed"), "a user purging");
}

/// A signed download link opens nothing while its account is suspended or migrating, and works
/// again once the account is active.
#[tokio::test]
async fn signed_links_obey_the_accounts_state() {
    let s = Server::start().await;
    let (account, token) = s.account("Links");
    let (st, _) = s
        .call(
            &token,
            "POST",
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "x@links.example"}})),
        )
        .await;
    assert_eq!(st, 201);
    let (st, b) = s.call(&token, "POST", "/kontor/v1/backups", None).await;
    assert_eq!(st, 202, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    wait_for_backup(&s, &token, &id, "COMPLETED").await;
    let (st, link) = s
        .call(
            &token,
            "GET",
            &format!("/kontor/v1/backups/{id}/download-link"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    let get = |url: String| async move { http().get(url).send().await.unwrap().status().as_u16() };
    assert_eq!(get(url.clone()).await, 200);
    for (state, want) in [("suspended", 403), ("migrating", 477), ("active", 200)] {
        s.cli(&[
            "admin",
            "account",
            "set-state",
            "--account",
            &account,
            "--state",
            state,
        ]);
        assert_eq!(get(url.clone()).await, want, "the link while {state}");
    }
}
