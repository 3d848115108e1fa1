//! "Forgot your password?": a single-use link by e-mail that sets a new password.
//!
//! The answer to a request is the same whether or not the address is known, and it is given
//! before any link is made (the lookup and the e-mail happen in the background), so neither
//! the page nor its timing tells a stranger which addresses have users. Requests are limited
//! per client (the sign-in rate) and per address (`Factor::PasswordReset`), so the form cannot
//! be used to flood someone's mailbox. A link works once, for an hour, and setting a password
//! with it ends all of the user's sessions. Users of an account that requires single sign-on
//! get no link (they do not sign in with a password).

use super::signin::{admit_client, MAX_EMAIL_CHARS, MAX_PASSWORD_BYTES};
use super::{constant_time_eq, cookie, set_cookie, PageError, LOGIN_CSRF_COOKIE};
use crate::throttle::Client;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use kontor_domain::time::iso;
use kontor_store::{Factor, LifecycleState, PASSWORD_RESET_TTL_MS};
use maud::{html, Markup};
use serde::Deserialize;

fn new_csrf() -> String {
    super::signin::random_token()
}

fn with_csrf(state: &AppState, csrf: &str, page: Markup) -> Response {
    (
        [(
            header::SET_COOKIE,
            set_cookie(LOGIN_CSRF_COOKIE, csrf, 3600, state.cookie_secure),
        )],
        page,
    )
        .into_response()
}

fn csrf_ok(headers: &HeaderMap, sent: &str) -> Result<(), PageError> {
    let expected = cookie(headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The form is out of date. Reload the page and try again.",
        ));
    }
    Ok(())
}

fn request_form(csrf: &str, error: Option<&str>) -> Markup {
    super::layout::bare(
        "Reset your password",
        html! {
            h1 { "Reset your password" }
            div.card {
                p { "Type the e-mail address you sign in with. If a user has it, we e-mail a link that sets a new password. The link works once, for one hour." }
                form method="post" action="/app/login/forgot" {
                    input type="hidden" name="_csrf" value=(csrf);
                    label for="email" { "E-mail" }
                    input #email type="email" name="email" autocomplete="username" required autofocus
                        aria-describedby=[error.map(|_| "forgot-error")];
                    @if let Some(e) = error { p.error #forgot-error role="alert" { (e) } }
                    p { button type="submit" { "Send the link" } }
                }
                p { a href="/app/login" { "Back to sign-in" } }
            }
        },
    )
}

pub async fn forgot_page(State(state): State<AppState>) -> Response {
    let csrf = new_csrf();
    with_csrf(&state, &csrf, request_form(&csrf, None))
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn forgot(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<ForgotForm>,
) -> Result<Response, PageError> {
    csrf_ok(&headers, &f.csrf)?;
    if let Err(r) = admit_client(&state, &client) {
        return Ok(r);
    }
    let email = f.email.trim().to_lowercase();
    if email.is_empty() || email.chars().count() > MAX_EMAIL_CHARS || !email.contains('@') {
        return Ok((
            StatusCode::BAD_REQUEST,
            request_form(&f.csrf, Some("Type an e-mail address.")),
        )
            .into_response());
    }
    // Up to MAX_ATTEMPTS links an address per window; past that the answer is the same and no
    // e-mail goes out (the owner has the earlier ones).
    let subject = kontor_store::email_subject(&email);
    if state
        .dir
        .reserve_attempt(&subject, Factor::PasswordReset)
        .await?
        .is_ok()
    {
        let state = state.clone();
        let email = email.clone();
        tokio::spawn(async move {
            if let Err(e) = send_reset_links(&state, &email).await {
                tracing::warn!(error = %e, "a password reset link could not be made");
            }
        });
    }
    Ok(super::layout::bare(
        "Check your e-mail",
        html! {
            h1 { "Check your e-mail" }
            div.card {
                p #forgot-sent role="status" { "If a user signs in with " strong { (email) } ", a link to set a new password is on its way. It works once, for one hour." }
                p { a href="/app/login" { "Back to sign-in" } }
            }
        },
    )
    .into_response())
}

/// Makes a link for each active user with the address in an active account, and e-mails it.
async fn send_reset_links(state: &AppState, email: &str) -> Result<(), kontor_store::StoreError> {
    for account_id in state.dir.accounts_for_login(email).await? {
        let Some(account) = state.dir.account(account_id).await? else {
            continue;
        };
        if account.state != LifecycleState::Active {
            continue;
        }
        let store = state.dir.cell(&account)?;
        let Some(user) = store
            .users(account.id)
            .await?
            .into_iter()
            .find(|u| u.active && u.email == email)
        else {
            continue;
        };
        if super::sso::password_refused(store, account.id, user.role)
            .await
            .unwrap_or(true)
        {
            continue;
        }
        let token = store.create_password_reset(account.id, user.id).await?;
        store
            .audit(
                account.id,
                Some(user.id),
                &user.email,
                "user.password_reset_requested",
                &format!("user:{}", user.id),
                serde_json::json!({"message": "A password reset link was e-mailed to the user"}),
            )
            .await?;
        super::account::mail_user(
            state,
            &user.email,
            format!("Set a new kontor password for {}", account.name),
            reset_mail(state, &account.name, &user.email, &token, None),
        );
    }
    Ok(())
}

/// The e-mail that carries a reset link; `by` names the admin who asked for it.
pub(crate) fn reset_mail(
    state: &AppState,
    account_name: &str,
    email: &str,
    token: &str,
    by: Option<&str>,
) -> String {
    let why = match by {
        Some(admin) => format!(
            "{admin}, an admin of {account_name}, reset the password of your kontor user ({email}). Your old password no longer works and your sessions were ended."
        ),
        None => format!(
            "someone (we hope you) asked to reset the password of your kontor user ({email}) in {account_name}. If it was not you, ignore this e-mail: your password stays as it is."
        ),
    };
    format!(
        "Hello,\n\n{why}\n\nTo set a new password, open this link within {} minutes. It works once:\n\n{}/app/login/reset/{token}\n\n-- kontor\n",
        PASSWORD_RESET_TTL_MS / 60_000,
        state.jobs.public_url.trim_end_matches('/'),
    )
}

fn reset_form(token: &str, csrf: &str, error: Option<&str>) -> Markup {
    super::layout::bare(
        "Set a new password",
        html! {
            h1 { "Set a new password" }
            div.card {
                form method="post" action=(format!("/app/login/reset/{token}")) {
                    input type="hidden" name="_csrf" value=(csrf);
                    label for="new-password" { "New password (at least 10 characters)" }
                    input #new-password type="password" name="new_password" autocomplete="new-password" required minlength="10" autofocus;
                    label for="repeat-password" { "New password again" }
                    input #repeat-password type="password" name="repeat_password" autocomplete="new-password" required minlength="10"
                        aria-describedby=[error.map(|_| "reset-error")];
                    @if let Some(e) = error { p.error #reset-error role="alert" { (e) } }
                    p.muted { "Setting it signs you out everywhere." }
                    p { button type="submit" { "Set the password" } }
                }
            }
        },
    )
}

fn link_gone() -> Response {
    (
        StatusCode::NOT_FOUND,
        super::layout::bare(
            "Link expired",
            html! {
                h1 { "This link no longer works" }
                div.card {
                    p.error #reset-gone role="alert" { "The link was used already, or is more than an hour old, or a newer password change ended it." }
                    p { a href="/app/login/forgot" { "Ask for a new link" } " or " a href="/app/login" { "sign in" } "." }
                }
            },
        ),
    )
        .into_response()
}

/// Link tokens are `<account>.<64 hex>`; anything else is not looked up.
fn well_formed(token: &str) -> bool {
    token.len() <= 96
        && token.split_once('.').is_some_and(|(a, s)| {
            a.parse::<i64>().is_ok() && s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// The cell that holds a link: the account id before the dot names it.
async fn cell_of(state: &AppState, token: &str) -> Result<Option<kontor_store::Store>, PageError> {
    if !well_formed(token) {
        return Ok(None);
    }
    let account_id: i64 = token
        .split('.')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    let Some(account) = state.dir.account(account_id).await? else {
        return Ok(None);
    };
    if account.state != LifecycleState::Active {
        return Ok(None);
    }
    Ok(Some(state.dir.cell(&account)?.clone()))
}

pub async fn reset_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let Some(store) = cell_of(&state, &token).await? else {
        return Ok(link_gone());
    };
    if store.password_reset_user(&token).await?.is_none() {
        return Ok(link_gone());
    }
    let csrf = new_csrf();
    Ok(with_csrf(&state, &csrf, reset_form(&token, &csrf, None)))
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    repeat_password: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn reset(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(f): Form<ResetForm>,
) -> Result<Response, PageError> {
    csrf_ok(&headers, &f.csrf)?;
    if let Err(r) = admit_client(&state, &client) {
        return Ok(r);
    }
    let Some(store) = cell_of(&state, &token).await? else {
        return Ok(link_gone());
    };
    let again = |msg: &str| {
        Ok((
            StatusCode::BAD_REQUEST,
            reset_form(&token, &f.csrf, Some(msg)),
        )
            .into_response())
    };
    if f.new_password.len() > MAX_PASSWORD_BYTES {
        return again("That password is longer than any we accept.");
    }
    if f.new_password != f.repeat_password {
        return again("The two passwords differ.");
    }
    let (account_id, user_id) = match store.reset_password(&token, &f.new_password).await {
        Ok(Some(who)) => who,
        Ok(None) => return Ok(link_gone()),
        Err(kontor_store::StoreError::Validation { message, .. }) => {
            return again(&super::account::sentence(&message))
        }
        Err(e) => return Err(e.into()),
    };
    let user = store
        .users(account_id)
        .await?
        .into_iter()
        .find(|u| u.id == user_id);
    if let Some(user) = &user {
        // Whoever holds the link proved they read the user's mail: earlier wrong guesses at
        // the old password no longer lock the new one out.
        state
            .dir
            .clear_attempts(&kontor_store::email_subject(&user.email), Factor::Password)
            .await?;
        store
            .audit(
                account_id,
                Some(user.id),
                &user.email,
                "user.password_reset",
                &format!("user:{}", user.id),
                serde_json::json!({"message": "Set a new password with an e-mailed link; every session ended", "at": iso(kontor_domain::time::now_ms())}),
            )
            .await?;
    }
    Ok(super::layout::bare(
        "Password set",
        html! {
            h1 { "Your password is set" }
            div.card {
                p #reset-done role="status" { "Sign in with your new password." }
                p { a.button href="/app/login" { "Sign in" } }
            }
        },
    )
    .into_response())
}
