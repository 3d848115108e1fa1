//! Signing in and out, the second factor, TOTP set-up, and notifications.

use super::{
    constant_time_eq, cookie, session_of, set_cookie, Console, PageError, LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
};
use crate::throttle::Client;
use crate::{seal, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::time::iso;
use kontor_store::{AuthMethod, Factor, SESSION_TTL_MS};
use maud::{html, Markup};
use rand::RngCore;
use serde::Deserialize;
use totp_rs::{Algorithm, TOTP};

pub(super) fn random_token() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn login_form(csrf: &str, email: &str, error: Option<&str>) -> Markup {
    super::layout::bare(
        "Sign in",
        html! {
            h1 { "Sign in to kontor" }
            div.card {
                form method="post" action="/app/login" {
                    input type="hidden" name="_csrf" value=(csrf);
                    label for="email" { "E-mail" }
                    input #email type="email" name="email" value=(email) autocomplete="username" required autofocus[email.is_empty()];
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required autofocus[!email.is_empty()] aria-describedby=[error.map(|_| "login-error")];
                    @if let Some(e) = error { p.error #login-error role="alert" { (e) } }
                    p { button type="submit" { "Sign in" } }
                }
                p { a #sso-link href="/app/login/sso" { "Sign in with SSO" } }
                p { a #forgot-link href="/app/login/forgot" { "Forgot your password?" } }
            }
        },
    )
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    // A session of a closed (suspended, migrating) account does not keep anyone from the form.
    if let Some((_, _, s, _)) = session_of(&state, &headers).await.ok().flatten() {
        return Ok(Redirect::to(if s.pending_second_factor {
            "/app/login/second-factor"
        } else {
            "/app"
        })
        .into_response());
    }
    let csrf = random_token();
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(LOGIN_CSRF_COOKIE, &csrf, 3600, state.cookie_secure),
        )],
        login_form(&csrf, "", None),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Wrong e-mail and wrong password get the same answer, after the same delay.
const FAILURE_DELAY: std::time::Duration = std::time::Duration::from_millis(400);

/// Longest e-mail address accepted (RFC 5321's path limit); longer input is refused before
/// any database work.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest password accepted: argon2 reads all of it, so it is bounded.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The page for a client over its sign-in rate (`Retry-After` tells it when to come back).
fn slow_down(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs().max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.to_string())],
        super::layout::bare(
            "Too many sign-in attempts",
            html! {
                h1 { "Too many sign-in attempts" }
                div.card {
                    p.error role="alert" { "Too many sign-in attempts from your network. Try again in " (secs) " seconds." }
                    p { a href="/app/login" { "Back to sign-in" } }
                }
            },
        ),
    )
        .into_response()
}

/// Counts a sign-in request against the client's per-minute allowance.
pub(crate) fn admit_client(state: &AppState, client: &Client) -> Result<(), Response> {
    match client.0 {
        Some(ip) => state.sign_in_limiter.admit(ip).map_err(slow_down),
        None => Ok(()),
    }
}

pub async fn login(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), f.csrf.as_bytes()) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The sign-in form is out of date. Reload the page and try again.",
        ));
    }
    if let Err(r) = admit_client(&state, &client) {
        return Ok(r);
    }
    let email = f.email.trim().to_lowercase();
    if email.chars().count() > MAX_EMAIL_CHARS || f.password.len() > MAX_PASSWORD_BYTES {
        return Ok((
            StatusCode::BAD_REQUEST,
            login_form(
                &f.csrf,
                "",
                Some("That e-mail address or password is longer than any we accept."),
            ),
        )
            .into_response());
    }
    let again = |status: StatusCode, msg: &str| {
        (status, login_form(&f.csrf, &email, Some(msg))).into_response()
    };
    let subject = kontor_store::email_subject(&email);
    // Counted before the password is checked: concurrent guesses cannot outrun the count.
    if let Err(until) = state
        .dir
        .reserve_attempt(&subject, Factor::Password)
        .await?
    {
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed sign-ins for this address. Try again after {} (UTC).",
                &iso(until)[11..16]
            ),
        ));
    }
    let accounts = state.dir.accounts_for_login(&email).await?;
    let mut signed_in = None;
    for &account_id in &accounts {
        let Some(account) = state.dir.account(account_id).await? else {
            continue;
        };
        let store = state.dir.cell(&account)?.clone();
        if let Some(user) = store.authenticate(account.id, &email, &f.password).await? {
            signed_in = Some((account, store, user));
            break;
        }
    }
    if accounts.is_empty() {
        // As long as a check of a real user's password, so timing tells nothing.
        kontor_store::check_password(None, &f.password).await;
    }
    let Some((account, store, user)) = signed_in else {
        // Each failure is counted in the directory, not written to the accounts' audit logs
        // (a stranger could fill them); the lock that ends a run of failures is audited.
        if let Some(until) = state
            .dir
            .attempts_locked_until(&subject, Factor::Password)
            .await?
        {
            for &account_id in &accounts {
                if let Some(a) = state.dir.account(account_id).await? {
                    state
                        .dir
                        .cell(&a)?
                        .audit(
                            a.id,
                            None,
                            &email,
                            "login.locked",
                            &format!("email:{email}"),
                            serde_json::json!({"message": "Sign-in locked after repeated wrong passwords", "until": iso(until)}),
                        )
                        .await?;
                }
            }
        }
        tokio::time::sleep(FAILURE_DELAY).await;
        return Ok(again(
            StatusCode::UNAUTHORIZED,
            "The e-mail address or the password is not right.",
        ));
    };
    state.dir.clear_attempts(&subject, Factor::Password).await?;
    // The password was right, so saying why it is refused tells nothing to a guesser.
    if super::sso::password_refused(&store, account.id, user.role).await? {
        store
            .audit(
                account.id,
                Some(user.id),
                &user.email,
                "login.refused",
                &format!("user:{}", user.id),
                serde_json::json!({"message": "Password sign-in refused: the account requires single sign-on"}),
            )
            .await?;
        return Ok(again(
            StatusCode::FORBIDDEN,
            "Your account signs in with single sign-on. Use “Sign in with SSO”.",
        ));
    }
    let needs_totp = store
        .second_factor(account.id, user.id)
        .await?
        .is_some_and(|f| f.enabled);
    let token = store
        .create_session(account.id, user.id, AuthMethod::Password, needs_totp)
        .await?;
    if !needs_totp {
        store
            .audit(
                account.id,
                Some(user.id),
                &user.email,
                "login.success",
                &format!("user:{}", user.id),
                serde_json::json!({"method": "password"}),
            )
            .await?;
    }
    let to = if needs_totp {
        "/app/login/second-factor"
    } else {
        "/app"
    };
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(
                SESSION_COOKIE,
                &token,
                SESSION_TTL_MS / 1000,
                state.cookie_secure,
            ),
        )],
        Redirect::to(to),
    )
        .into_response())
}

fn second_factor_form(csrf: &str, error: Option<&str>) -> Markup {
    super::layout::bare(
        "Two-factor authentication",
        html! {
            h1 { "Two-factor authentication" }
            div.card {
                form method="post" action="/app/login/second-factor" {
                    input type="hidden" name="_csrf" value=(csrf);
                    label for="code" { "Code from your authenticator app, or a recovery code" }
                    input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus aria-describedby=[error.map(|_| "code-error")];
                    @if let Some(e) = error { p.error #code-error role="alert" { (e) } }
                    p { button type="submit" { "Verify" } }
                }
            }
        },
    )
}

pub async fn second_factor_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    match session_of(&state, &headers).await? {
        Some((_, _, s, _)) if s.pending_second_factor => {
            Ok(second_factor_form(&s.csrf, None).into_response())
        }
        Some(_) => Ok(Redirect::to("/app").into_response()),
        None => Ok(Redirect::to("/app/login").into_response()),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    pub(super) code: String,
    #[serde(default, rename = "_csrf")]
    pub(super) csrf: String,
}

pub(super) fn totp_for(secret: &[u8], email: &str) -> Option<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        secret.to_vec(),
        Some("kontor".into()),
        email.to_string(),
    )
    .ok()
}

/// The answer to a second-factor code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeCheck {
    Accepted,
    Refused,
    /// Too many codes tried: none is checked until this instant.
    Locked(i64),
}

/// Checks a TOTP code (or, when `allow_recovery`, a recovery code) for a user. Every check
/// (sign-in, turning TOTP on, confirming a restore in the console or through the API) comes
/// here: the attempt is counted per user before the code is looked at, so neither concurrent
/// guesses nor a fresh sign-in with the password get more codes checked. A code is accepted
/// once.
pub(crate) async fn verify_second_factor(
    state: &AppState,
    store: &kontor_store::Store,
    account: i64,
    user: &kontor_store::User,
    code: &str,
    allow_recovery: bool,
) -> Result<CodeCheck, kontor_store::StoreError> {
    let subject = kontor_store::user_subject(account, user.id);
    if let Err(until) = state
        .dir
        .reserve_attempt(&subject, Factor::SecondFactor)
        .await?
    {
        return Ok(CodeCheck::Locked(until));
    }
    if check_code(state, store, account, user, code, allow_recovery).await? {
        state
            .dir
            .clear_attempts(&subject, Factor::SecondFactor)
            .await?;
        return Ok(CodeCheck::Accepted);
    }
    Ok(CodeCheck::Refused)
}

async fn check_code(
    state: &AppState,
    store: &kontor_store::Store,
    account: i64,
    user: &kontor_store::User,
    code: &str,
    allow_recovery: bool,
) -> Result<bool, kontor_store::StoreError> {
    let Some(f) = store.second_factor(account, user.id).await? else {
        return Ok(false);
    };
    let code = code.trim().replace(' ', "");
    if code.len() > 64 {
        return Ok(false);
    }
    if let Some(totp) =
        seal::open(&state.jobs.keys, &f.sealed_secret).and_then(|s| totp_for(&s, &user.email))
    {
        // One step of clock skew either way; a step once accepted is spent for good.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let step = (now / 30) as i64;
        for s in [step - 1, step, step + 1] {
            let at = (s.max(0) as u64) * 30;
            if code.len() == 6
                && super::constant_time_eq(totp.generate(at).as_bytes(), code.as_bytes())
            {
                return store.consume_totp_step(account, user.id, s).await;
            }
        }
    }
    Ok(allow_recovery && f.enabled && store.use_recovery_code(account, user.id, &code).await?)
}

pub(super) fn locked_message(until: i64) -> String {
    format!(
        "Too many wrong codes. Try again after {} (UTC).",
        &iso(until)[11..16]
    )
}

pub async fn second_factor(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
    if let Err(r) = admit_client(&state, &client) {
        return Ok(r);
    }
    let Some((account, store, session, token)) = session_of(&state, &headers).await? else {
        return Ok(Redirect::to("/app/login").into_response());
    };
    if !session.pending_second_factor {
        return Ok(Redirect::to("/app").into_response());
    }
    if !constant_time_eq(f.csrf.as_bytes(), session.csrf.as_bytes()) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the page and try again.",
        ));
    }
    let user = &session.user;
    match verify_second_factor(&state, &store, account.id, user, &f.code, true).await? {
        CodeCheck::Accepted => {
            store.session_second_factor(&token).await?;
            store
                .audit(
                    account.id,
                    Some(user.id),
                    &user.email,
                    "login.success",
                    &format!("user:{}", user.id),
                    serde_json::json!({"method": "password+totp"}),
                )
                .await?;
            Ok(Redirect::to("/app").into_response())
        }
        CodeCheck::Locked(until) => {
            // The password was right; the session waits for a code nobody may try now.
            store.delete_session(&token).await?;
            store
                .audit(
                    account.id,
                    Some(user.id),
                    &user.email,
                    "login.locked",
                    &format!("user:{}", user.id),
                    serde_json::json!({"step": "second factor", "until": iso(until)}),
                )
                .await?;
            Ok((
                StatusCode::TOO_MANY_REQUESTS,
                [(
                    header::SET_COOKIE,
                    set_cookie(SESSION_COOKIE, "", 0, state.cookie_secure),
                )],
                super::layout::bare(
                    "Two-factor authentication",
                    html! {
                        h1 { "Two-factor authentication" }
                        div.card {
                            p.error role="alert" { (locked_message(until)) }
                            p { a href="/app/login" { "Back to sign-in" } }
                        }
                    },
                ),
            )
                .into_response())
        }
        CodeCheck::Refused => {
            store
                .audit(
                    account.id,
                    Some(user.id),
                    &user.email,
                    "login.failed",
                    &format!("user:{}", user.id),
                    serde_json::json!({"step": "second factor"}),
                )
                .await?;
            tokio::time::sleep(FAILURE_DELAY).await;
            Ok((
                StatusCode::UNAUTHORIZED,
                second_factor_form(
                    &session.csrf,
                    Some("That code is not right. Codes change every 30 seconds."),
                ),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    pub(super) csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    c.check_csrf(&f.csrf)?;
    c.store.delete_session(&c.token).await?;
    c.store
        .audit(
            c.id(),
            Some(c.session.user.id),
            &c.session.user.email,
            "logout",
            &format!("user:{}", c.session.user.id),
            serde_json::json!({}),
        )
        .await?;
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", 0, state.cookie_secure),
        )],
        Redirect::to("/app/login"),
    )
        .into_response())
}

pub async fn notifications_page(c: Console) -> Result<Markup, PageError> {
    let list = c
        .store
        .notifications(c.id(), c.session.user.id, 100)
        .await?;
    Ok(c.page(
        "Notifications",
        "/app/notifications",
        html! {
            h1 { "Notifications" }
            @if list.is_empty() {
                div.card { p.muted { "No notifications yet." } }
            } @else {
                form method="post" action="/app/notifications" {
                    input type="hidden" name="_csrf" value=(c.session.csrf);
                    p { button.secondary type="submit" { "Mark all as read" } }
                }
                @for n in &list {
                    div.card {
                        strong { (n.title) } @if !n.read { " " span.muted { "· new" } }
                        p { (n.body) }
                        @if let Some(l) = &n.link { p { a href=(l) { "Open" } } }
                        p.muted { (iso(n.at)) }
                    }
                }
            }
        },
    ))
}

pub async fn notifications_read(
    c: Console,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    c.check_csrf(&f.csrf)?;
    c.store
        .mark_notifications_read(c.id(), c.session.user.id, None)
        .await?;
    Ok(Redirect::to("/app/notifications"))
}
