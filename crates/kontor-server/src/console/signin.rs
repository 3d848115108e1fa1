//! Signing in and out, the second factor, TOTP set-up, and notifications.

use super::{
    constant_time_eq, cookie, session_of, set_cookie, Console, PageError, LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
};
use crate::{seal, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::time::iso;
use kontor_store::{AuthMethod, SESSION_TTL_MS};
use maud::{html, Markup, PreEscaped};
use rand::RngCore;
use serde::Deserialize;
use totp_rs::{Algorithm, Secret, TOTP};

fn random_token() -> String {
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

pub async fn login(
    State(state): State<AppState>,
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
    let email = f.email.trim().to_lowercase();
    let again = |status: StatusCode, msg: &str| {
        (status, login_form(&f.csrf, &email, Some(msg))).into_response()
    };
    if let Some(until) = state.dir.login_locked_until(&email).await? {
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed sign-ins for this address. Try again after {} (UTC).",
                &iso(until)[11..16]
            ),
        ));
    }
    let mut signed_in = None;
    for account_id in state.dir.accounts_for_login(&email).await? {
        let Some(account) = state.dir.account(account_id).await? else {
            continue;
        };
        let store = state.dir.cell(&account)?.clone();
        if let Some(user) = store.authenticate(account.id, &email, &f.password).await? {
            signed_in = Some((account, store, user));
            break;
        }
    }
    let Some((account, store, user)) = signed_in else {
        state.dir.record_login_failure(&email).await?;
        for account_id in state.dir.accounts_for_login(&email).await? {
            if let Some(a) = state.dir.account(account_id).await? {
                state
                    .dir
                    .cell(&a)?
                    .audit(
                        a.id,
                        None,
                        &email,
                        "login.failed",
                        &format!("email:{email}"),
                        serde_json::json!({}),
                    )
                    .await?;
            }
        }
        tokio::time::sleep(FAILURE_DELAY).await;
        return Ok(again(
            StatusCode::UNAUTHORIZED,
            "The e-mail address or the password is not right.",
        ));
    };
    state.dir.clear_login_failures(&email).await?;
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
    code: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

fn totp_for(secret: &[u8], email: &str) -> Option<TOTP> {
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

/// Checks a TOTP code (or, when `recovery`, a recovery code) for a user. A code is accepted
/// once: the console's sign-in and the confirmation of sensitive operations (a restore) use it.
pub(crate) async fn verify_second_factor(
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
    if let Some(totp) =
        seal::open(&state.secret_key, &f.sealed_secret).and_then(|s| totp_for(&s, &user.email))
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

pub async fn second_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Result<Response, PageError> {
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
    if verify_second_factor(&state, &store, account.id, user, &f.code, true).await? {
        store.session_second_factor(&token).await?;
        state.dir.clear_login_failures(&user.email).await?;
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
        return Ok(Redirect::to("/app").into_response());
    }
    state.dir.record_login_failure(&user.email).await?;
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
    if state.dir.login_locked_until(&user.email).await?.is_some() {
        store.delete_session(&token).await?;
        return Ok(Redirect::to("/app/login").into_response());
    }
    Ok((
        StatusCode::UNAUTHORIZED,
        second_factor_form(
            &session.csrf,
            Some("That code is not right. Codes change every 30 seconds."),
        ),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
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

pub async fn security_page(c: Console) -> Result<Markup, PageError> {
    let f = c.store.second_factor(c.id(), c.session.user.id).await?;
    let enabled = f.as_ref().is_some_and(|f| f.enabled);
    Ok(c.page(
        "Sign-in & security",
        "/app/account/security",
        html! {
            h1 { "Sign-in & security" }
            div.card {
                h2 { "Two-factor authentication" }
                @if enabled {
                    p { "Two-factor authentication is " strong { "on" } ". You sign in with your password and a code from your authenticator app." }
                    p.muted { (f.as_ref().map_or(0, |f| f.recovery_code_hashes.len())) " recovery codes left." }
                } @else {
                    p { "Two-factor authentication is " strong { "off" } ". Restoring data from a backup and other sensitive actions will ask for it." }
                    form method="post" action="/app/account/security/totp" {
                        input type="hidden" name="_csrf" value=(c.session.csrf);
                        button type="submit" { "Set up two-factor authentication" }
                    }
                }
                p.muted { "This session was signed in with " (c.session.auth_method.as_str()) "." }
            }
        },
    ))
}

pub async fn totp_begin(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<CsrfForm>,
) -> Result<Markup, PageError> {
    c.check_csrf(&f.csrf)?;
    let secret = Secret::generate_secret().to_bytes().map_err(|_| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Could not make a secret.",
        )
    })?;
    let totp = totp_for(&secret, &c.session.user.email).ok_or_else(|| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Could not make a secret.",
        )
    })?;
    c.store
        .begin_second_factor(
            c.id(),
            c.session.user.id,
            &seal::seal(&state.secret_key, &secret),
        )
        .await
        .map_err(|_| {
            PageError::new(
                StatusCode::CONFLICT,
                "Already set up",
                "Two-factor authentication is already on for your user.",
            )
        })?;
    Ok(totp_setup(&c, &totp, None))
}

fn totp_setup(c: &Console, totp: &TOTP, error: Option<&str>) -> Markup {
    let url = totp.get_url();
    let svg = qrcode::QrCode::new(url.as_bytes())
        .map(|q| {
            q.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build()
        })
        .unwrap_or_default();
    c.page(
        "Set up two-factor authentication",
        "/app/account/security",
        html! {
            h1 { "Set up two-factor authentication" }
            div.card {
                p { "Scan this code with an authenticator app, or type the secret into it. The secret is shown only now." }
                div role="img" aria-label="QR code of the two-factor secret" { (PreEscaped(svg)) }
                p { "Secret: " span.secret #totp-secret { (totp.get_secret_base32()) } }
                form method="post" action="/app/account/security/totp/confirm" {
                    input type="hidden" name="_csrf" value=(c.session.csrf);
                    label for="code" { "Code from the app" }
                    input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" required aria-describedby=[error.map(|_| "code-error")];
                    @if let Some(e) = error { p.error #code-error role="alert" { (e) } }
                    p { button type="submit" { "Turn on" } }
                }
            }
        },
    )
}

pub async fn totp_confirm(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<CodeForm>,
) -> Result<Markup, PageError> {
    c.check_csrf(&f.csrf)?;
    let pending = c
        .store
        .second_factor(c.id(), c.session.user.id)
        .await?
        .filter(|f| !f.enabled)
        .ok_or_else(PageError::not_found)?;
    let secret = seal::open(&state.secret_key, &pending.sealed_secret).ok_or_else(|| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The stored secret cannot be read with this server's key.",
        )
    })?;
    let totp = totp_for(&secret, &c.session.user.email).ok_or_else(PageError::not_found)?;
    if !verify_second_factor(&state, &c.store, c.id(), &c.session.user, &f.code, false).await? {
        return Ok(totp_setup(
            &c,
            &totp,
            Some("That code is not right. Check the time on your phone and try the next code."),
        ));
    }
    let codes = c
        .store
        .enable_second_factor(c.id(), c.session.user.id)
        .await?;
    c.store.session_second_factor(&c.token).await?;
    Ok(c.page(
        "Two-factor authentication is on",
        "/app/account/security",
        html! {
            h1 { "Two-factor authentication is on" }
            div.card {
                p { "Keep these recovery codes somewhere safe. Each one signs you in once if you lose your phone. They are shown only now." }
                ul.codes #recovery-codes { @for code in &codes { li { (code) } } }
                p { a.button href="/app/account/security" { "Done" } }
            }
        },
    ))
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
