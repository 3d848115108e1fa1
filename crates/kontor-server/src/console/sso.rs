//! Signing in with single sign-on (OpenID Connect, authorization code flow with PKCE).
//!
//! The sign-in's `state` is `<account>.<random>`: the account part routes the callback to its
//! cell, where the state's hash, the nonce and the PKCE verifier wait (single use, ten
//! minutes). The state is also set as a cookie, so a callback only completes in the browser
//! that started it. A user is matched by the provider's verified e-mail, within the account's
//! allowed domains, to an existing active user; nobody is created. Every failure is audited.

use super::{constant_time_eq, cookie, set_cookie, PageError, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::oidc;
use crate::{seal, AppState};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::Role;
use kontor_store::{Account, AuthMethod, SsoConfig, Store, SESSION_TTL_MS, SSO_FLOW_TTL_MS};
use maud::html;
use serde::Deserialize;
use serde_json::json;

const STATE_COOKIE: &str = "kontor_sso_state";

pub fn redirect_uri(state: &AppState) -> String {
    format!(
        "{}/app/login/sso/callback",
        state.jobs.public_url.trim_end_matches('/')
    )
}

fn sso_form(csrf: &str, who: &str, error: Option<&str>) -> maud::Markup {
    super::layout::bare(
        "Sign in with SSO",
        html! {
            h1 { "Sign in with SSO" }
            div.card {
                form method="post" action="/app/login/sso" {
                    input type="hidden" name="_csrf" value=(csrf);
                    label for="who" { "Work e-mail or account ID" }
                    input #who type="text" name="who" value=(who) autocomplete="username" required autofocus aria-describedby=[error.map(|_| "sso-error")];
                    @if let Some(e) = error { p.error #sso-error role="alert" { (e) } }
                    p { button type="submit" { "Continue" } }
                }
                p { a href="/app/login" { "Sign in with a password instead" } }
            }
        },
    )
}

pub async fn page(State(state): State<AppState>) -> Response {
    let csrf = oidc::random_b64(24);
    (
        [
            (
                header::SET_COOKIE,
                set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, state.cookie_secure),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(crate::headers::CSP_SSO_START),
            ),
        ],
        sso_form(&csrf, "", None),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    who: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// The account whose SSO serves `who`: an account ID, or an e-mail address that has a user in
/// an account with SSO for its domain.
async fn find(
    state: &AppState,
    who: &str,
) -> Result<Option<(Account, Store, SsoConfig)>, PageError> {
    let ids = match who.parse::<i64>() {
        Ok(id) => vec![id],
        Err(_) => state.dir.accounts_for_login(who).await?,
    };
    for id in ids {
        let Some(account) = state.dir.account(id).await? else {
            continue;
        };
        let store = state.dir.cell(&account)?.clone();
        if let Some(cfg) = store.sso_config(account.id).await? {
            if who.contains('@') && !cfg.allows(who) {
                continue;
            }
            return Ok(Some((account, store, cfg)));
        }
    }
    Ok(None)
}

async fn failed(
    store: &Store,
    account: i64,
    who: &str,
    message: &str,
    status: StatusCode,
) -> Result<Response, PageError> {
    // Before the provider has answered, nobody is known: the actor is the sign-in itself.
    let actor = if who.is_empty() {
        "single sign-on"
    } else {
        who
    };
    store
        .audit(
            account,
            None,
            actor,
            "login.sso_failed",
            &format!("account:{account}"),
            json!({"message": message}),
        )
        .await?;
    Ok(PageError::new(
        status,
        "Single sign-on failed",
        format!("{message} Nobody was signed in. Try again, or ask a super admin of your account."),
    )
    .into_response())
}

pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<StartForm>,
) -> Result<Response, PageError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), f.csrf.as_bytes()) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The sign-in form is out of date. Reload the page and try again.",
        ));
    }
    let who = f.who.trim().to_lowercase();
    let Some((account, store, cfg)) = find(&state, &who).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            [(
                header::CONTENT_SECURITY_POLICY,
                header::HeaderValue::from_static(crate::headers::CSP_SSO_START),
            )],
            sso_form(
                &f.csrf,
                &who,
                Some("Single sign-on is not set up for this address or account. Sign in with your password, or check the account ID."),
            ),
        )
            .into_response());
    };
    let d = match oidc::discover(&cfg.issuer).await {
        Ok(d) => d,
        Err(m) => return failed(&store, account.id, &who, &m, StatusCode::BAD_GATEWAY).await,
    };
    let flow_state = format!("{}.{}", account.id, oidc::random_b64(32));
    let nonce = oidc::random_b64(32);
    let verifier = oidc::random_b64(32);
    let to = match oidc::authorization_url(
        &d,
        &oidc::AuthRequest {
            client_id: &cfg.client_id,
            redirect_uri: &redirect_uri(&state),
            state: &flow_state,
            nonce: &nonce,
            verifier: &verifier,
            login_hint: who.contains('@').then_some(who.as_str()),
        },
    ) {
        Ok(u) => u,
        Err(m) => return failed(&store, account.id, &who, &m, StatusCode::BAD_GATEWAY).await,
    };
    match store
        .begin_sso_flow(account.id, &flow_state, &nonce, &verifier)
        .await
    {
        Ok(()) => {}
        Err(kontor_store::StoreError::Conflict { .. }) => {
            let m = "Too many single sign-ons of this account are in progress. Try again in a few minutes.";
            return failed(&store, account.id, &who, m, StatusCode::TOO_MANY_REQUESTS).await;
        }
        Err(e) => return Err(e.into()),
    }
    let mut resp = Redirect::to(&to).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            STATE_COOKIE,
            &flow_state,
            SSO_FLOW_TTL_MS / 1000,
            state.cookie_secure,
        ),
    );
    Ok(resp)
}

#[derive(Deserialize)]
pub struct Callback {
    #[serde(default)]
    state: String,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Result<Response, PageError> {
    let clear = set_cookie(STATE_COOKIE, "", 0, state.cookie_secure);
    let mut resp = finish(&state, &headers, &q).await?;
    resp.headers_mut().append(header::SET_COOKIE, clear);
    Ok(resp)
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    q: &Callback,
) -> Result<Response, PageError> {
    let unknown = || {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Single sign-on failed",
            "This sign-in link is not valid. Start again from the sign-in page.",
        )
        .into_response()
    };
    let Some(account_id) = q
        .state
        .split_once('.')
        .and_then(|(a, _)| a.parse::<i64>().ok())
    else {
        return Ok(unknown());
    };
    let Some(account) = state.dir.account(account_id).await? else {
        return Ok(unknown());
    };
    let store = state.dir.cell(&account)?.clone();
    let bad = StatusCode::UNAUTHORIZED;
    // Taken before anything else is checked, so a state is spent even by a failed attempt.
    let flow = store.take_sso_flow(account.id, &q.state).await?;
    let Some(flow) = flow else {
        return failed(
            &store,
            account.id,
            "",
            "This sign-in has expired or was already used.",
            bad,
        )
        .await;
    };
    let same_browser = cookie(headers, STATE_COOKIE)
        .is_some_and(|c| constant_time_eq(c.as_bytes(), q.state.as_bytes()));
    if !same_browser {
        return failed(
            &store,
            account.id,
            "",
            "This sign-in was started in another browser.",
            bad,
        )
        .await;
    }
    if let Some(e) = &q.error {
        let m = format!(
            "The provider ended the sign-in: {} ({e}).",
            q.error_description.as_deref().unwrap_or("no reason given")
        );
        return failed(&store, account.id, "", &m, bad).await;
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty()) else {
        return failed(
            &store,
            account.id,
            "",
            "The provider sent no authorization code.",
            bad,
        )
        .await;
    };
    let Some(cfg) = store.sso_config(account.id).await? else {
        return failed(
            &store,
            account.id,
            "",
            "Single sign-on was turned off meanwhile.",
            bad,
        )
        .await;
    };
    let Some(secret) = seal::open(&state.jobs.keys, &cfg.client_secret_sealed)
        .and_then(|s| String::from_utf8(s).ok())
    else {
        return failed(
            &store,
            account.id,
            "",
            "The stored client secret cannot be read with this server's key.",
            StatusCode::INTERNAL_SERVER_ERROR,
        )
        .await;
    };
    let gateway = StatusCode::BAD_GATEWAY;
    let d = match oidc::discover(&cfg.issuer).await {
        Ok(d) => d,
        Err(m) => return failed(&store, account.id, "", &m, gateway).await,
    };
    let token = match oidc::exchange(
        &d,
        &cfg.client_id,
        &secret,
        code,
        &redirect_uri(state),
        &flow.verifier,
    )
    .await
    {
        Ok(t) => t,
        Err(m) => return failed(&store, account.id, "", &m, gateway).await,
    };
    let jwks = match oidc::fetch_jwks(&d).await {
        Ok(j) => j,
        Err(m) => return failed(&store, account.id, "", &m, gateway).await,
    };
    let now = kontor_domain::time::now_ms() / 1000;
    let expect = oidc::Expect {
        issuer: &cfg.issuer,
        client_id: &cfg.client_id,
        nonce: &flow.nonce,
        now,
    };
    let id = match oidc::verify_id_token(&jwks, &token, &expect) {
        Ok(id) => id,
        Err(m) => return failed(&store, account.id, "", &m, bad).await,
    };
    if !cfg.allows(&id.email) {
        let m = format!(
            "The address {} is not in a domain this account allows for single sign-on.",
            id.email
        );
        return failed(&store, account.id, &id.email, &m, bad).await;
    }
    let user = store
        .users(account.id)
        .await?
        .into_iter()
        .find(|u| u.active && u.email == id.email);
    let Some(user) = user else {
        let m = format!(
            "No active user of this account has the address {}.",
            id.email
        );
        return failed(&store, account.id, &id.email, &m, bad).await;
    };
    let session = store
        .create_session(account.id, user.id, AuthMethod::Sso, false)
        .await?;
    store
        .audit(
            account.id,
            Some(user.id),
            &user.email,
            "login.success",
            &format!("user:{}", user.id),
            json!({"method": "sso", "issuer": cfg.issuer, "subject": id.subject}),
        )
        .await?;
    let mut resp = Redirect::to("/app").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &session,
            SESSION_TTL_MS / 1000,
            state.cookie_secure,
        ),
    );
    Ok(resp)
}

/// Whether password sign-in is refused for this user (SSO required, not a super admin).
pub async fn password_refused(store: &Store, account: i64, role: Role) -> Result<bool, PageError> {
    Ok(role != Role::SuperAdmin && store.sso_config(account).await?.is_some_and(|c| c.required))
}
