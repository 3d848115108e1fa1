//! A user's own sign-in settings: password, two-factor authentication, and sessions.
//!
//! Everything that could lock the owner out or keep an intruder in asks for the current
//! password first (counted like a sign-in, so a stolen session cannot guess it): setting up
//! or turning off TOTP, and changing the password. A change ends the user's other sessions
//! and is e-mailed to the user.

use super::signin::{locked_message, totp_for, CodeForm};
use super::{verify_second_factor, CodeCheck, Console, PageError};
use crate::{seal, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use kontor_domain::time::iso;
use kontor_store::{Factor, Store};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use totp_rs::{Secret, TOTP};

/// Sends a security notice to a user by e-mail, in the background: the request neither waits
/// for delivery nor shows whether it worked (a failure is logged).
pub(crate) fn mail_user(state: &AppState, to: &str, subject: String, body: String) {
    let jobs = state.jobs.clone();
    let to = to.to_string();
    tokio::spawn(async move {
        if let Some(mailer) = &jobs.mailer {
            if let Err(e) = mailer.send(&to, &subject, &body).await {
                tracing::warn!(error = %e, "a security notice could not be sent");
            }
        }
    });
}

/// What a form on the security page did, shown at the top of the page.
enum Notice<'a> {
    None,
    Done(&'a str),
    /// A refusal, shown next to the form (by its id) it concerns.
    Error(&'a str, String),
}

async fn security_view(c: &Console, notice: Notice<'_>) -> Result<Markup, PageError> {
    let f = c.store.second_factor(c.id(), c.session.user.id).await?;
    let enabled = f.as_ref().is_some_and(|f| f.enabled);
    let sessions = c.store.user_sessions(c.id(), c.session.user.id).await?;
    let mine = Store::session_handle(&c.token);
    let error_for = |form: &str| match &notice {
        Notice::Error(f, m) if *f == form => Some(m.clone()),
        _ => None,
    };
    let password_error = error_for("password");
    let totp_error = error_for("totp");
    let sessions_error = error_for("sessions");
    Ok(c.page(
        "Sign-in & security",
        "/app/account/security",
        html! {
            h1 { "Sign-in & security" }
            @if let Notice::Done(m) = notice { p.flash #security-notice role="status" { (m) } }
            section.card aria-labelledby="password-heading" {
                h2 #password-heading { "Password" }
                form method="post" action="/app/account/security/password" {
                    input type="hidden" name="_csrf" value=(c.session.csrf);
                    label for="current-password" { "Current password" }
                    input #current-password type="password" name="current_password" autocomplete="current-password" required;
                    label for="new-password" { "New password (at least 10 characters)" }
                    input #new-password type="password" name="new_password" autocomplete="new-password" required minlength="10";
                    label for="repeat-password" { "New password again" }
                    input #repeat-password type="password" name="repeat_password" autocomplete="new-password" required minlength="10"
                        aria-describedby=[password_error.as_ref().map(|_| "password-error")];
                    @if let Some(e) = &password_error { p.error #password-error role="alert" { (e) } }
                    p.muted { "Changing it signs you out everywhere else." }
                    p { button type="submit" { "Change password" } }
                }
            }
            section.card aria-labelledby="totp-heading" {
                h2 #totp-heading { "Two-factor authentication" }
                @if enabled {
                    p { "Two-factor authentication is " strong { "on" } ". You sign in with your password and a code from your authenticator app." }
                    p.muted { (f.as_ref().map_or(0, |f| f.recovery_codes_left)) " recovery codes left." }
                    form method="post" action="/app/account/security/totp/disable" {
                        input type="hidden" name="_csrf" value=(c.session.csrf);
                        label for="totp-off-password" { "Password" }
                        input #totp-off-password type="password" name="password" autocomplete="current-password" required;
                        label for="totp-off-code" { "Code from your authenticator app, or a recovery code" }
                        input #totp-off-code type="text" name="code" autocomplete="one-time-code" required
                            aria-describedby=[totp_error.as_ref().map(|_| "totp-error")];
                        @if let Some(e) = &totp_error { p.error #totp-error role="alert" { (e) } }
                        p { button.danger type="submit" { "Turn off two-factor authentication" } }
                    }
                } @else {
                    p { "Two-factor authentication is " strong { "off" } ". Restoring data from a backup and other sensitive actions will ask for it." }
                    form method="post" action="/app/account/security/totp" {
                        input type="hidden" name="_csrf" value=(c.session.csrf);
                        label for="totp-password" { "Password" }
                        input #totp-password type="password" name="password" autocomplete="current-password" required
                            aria-describedby=[totp_error.as_ref().map(|_| "totp-error")];
                        @if let Some(e) = &totp_error { p.error #totp-error role="alert" { (e) } }
                        button type="submit" { "Set up two-factor authentication" }
                    }
                }
            }
            section.card aria-labelledby="sessions-heading" {
                h2 #sessions-heading { "Where you are signed in" }
                table #sessions {
                    thead { tr { th scope="col" { "Signed in" } th scope="col" { "With" } th scope="col" { "Ends" } th scope="col" { "" } } }
                    tbody {
                        @for s in &sessions {
                            tr {
                                td { time datetime=(iso(s.created_at)) { (iso(s.created_at)) } }
                                td { (s.auth_method.as_str()) }
                                td { time datetime=(iso(s.expires_at)) { (iso(s.expires_at)) } }
                                td {
                                    @if s.id == mine {
                                        strong { "This session" }
                                    } @else {
                                        form method="post" action="/app/account/security/sessions" {
                                            input type="hidden" name="_csrf" value=(c.session.csrf);
                                            input type="hidden" name="session" value=(s.id);
                                            button.secondary type="submit" aria-label=(format!("End the session signed in at {}", iso(s.created_at))) { "End" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if sessions.len() > 1 {
                    form method="post" action="/app/account/security/sessions" {
                        input type="hidden" name="_csrf" value=(c.session.csrf);
                        input type="hidden" name="session" value="others";
                        p { button.secondary type="submit" { "Sign out everywhere else" } }
                    }
                }
                @if let Some(e) = &sessions_error { p.error role="alert" { (e) } }
            }
            p.muted { "This session was signed in with " (c.session.auth_method.as_str()) "." }
        },
    ))
}

pub async fn security_page(c: Console) -> Result<Markup, PageError> {
    security_view(&c, Notice::None).await
}

fn refused(status: StatusCode, page: Markup) -> Response {
    (status, page).into_response()
}

/// Checks the signed-in user's current password, counted as a guess at it: `Err` holds the
/// refusal to show.
async fn confirm_password(
    state: &AppState,
    c: &Console,
    password: &str,
) -> Result<Result<(), (StatusCode, String)>, PageError> {
    let subject = kontor_store::email_subject(&c.session.user.email);
    if let Err(until) = state
        .dir
        .reserve_attempt(&subject, Factor::Password)
        .await?
    {
        return Ok(Err((
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong passwords. Try again after {} (UTC).",
                &iso(until)[11..16]
            ),
        )));
    }
    if password.len() <= super::signin::MAX_PASSWORD_BYTES
        && c.store
            .authenticate(c.id(), &c.session.user.email, password)
            .await?
            .is_some_and(|u| u.id == c.session.user.id)
    {
        state.dir.clear_attempts(&subject, Factor::Password).await?;
        return Ok(Ok(()));
    }
    Ok(Err((
        StatusCode::UNAUTHORIZED,
        "That is not your current password.".into(),
    )))
}

#[derive(Deserialize)]
pub struct PasswordChangeForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    repeat_password: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<PasswordChangeForm>,
) -> Result<Response, PageError> {
    c.check_csrf(&f.csrf)?;
    if let Err((status, msg)) = confirm_password(&state, &c, &f.current_password).await? {
        return Ok(refused(
            status,
            security_view(&c, Notice::Error("password", msg)).await?,
        ));
    }
    if f.new_password != f.repeat_password {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            security_view(
                &c,
                Notice::Error("password", "The two new passwords differ.".into()),
            )
            .await?,
        ));
    }
    let user = &c.session.user;
    match c
        .store
        .change_password(c.id(), user.id, &f.new_password, Some(&c.token))
        .await
    {
        Ok(()) => {}
        Err(kontor_store::StoreError::Validation { message, .. }) => {
            return Ok(refused(
                StatusCode::BAD_REQUEST,
                security_view(&c, Notice::Error("password", sentence(&message))).await?,
            ))
        }
        Err(e) => return Err(e.into()),
    }
    c.store
        .audit(
            c.id(),
            Some(user.id),
            &user.email,
            "user.password_change",
            &format!("user:{}", user.id),
            serde_json::json!({"message": "Changed their password; their other sessions ended"}),
        )
        .await?;
    mail_user(
        &state,
        &user.email,
        format!("Your kontor password for {} was changed", c.account.name),
        format!(
            "Hello,\n\nthe password of your kontor user ({}) in {} was changed at {} (UTC), and your other sessions were ended.\n\nIf you did not do this, ask an admin of {} to reset your password now.\n\n-- kontor\n",
            user.email,
            c.account.name,
            &iso(kontor_domain::time::now_ms())[..16].replace('T', " "),
            c.account.name,
        ),
    );
    Ok(security_view(
        &c,
        Notice::Done("Your password was changed. Your other sessions were ended."),
    )
    .await?
    .into_response())
}

/// "a password needs ..." as a sentence.
pub(super) fn sentence(message: &str) -> String {
    let mut s = message.to_string();
    if let Some(first) = s.get(..1) {
        s.replace_range(..1, &first.to_uppercase());
    }
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

pub async fn totp_begin(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<PasswordForm>,
) -> Result<Response, PageError> {
    c.check_csrf(&f.csrf)?;
    if let Err((status, msg)) = confirm_password(&state, &c, &f.password).await? {
        return Ok(refused(
            status,
            security_view(&c, Notice::Error("totp", msg)).await?,
        ));
    }
    let failed = || {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Could not make a secret.",
        )
    };
    let secret = Secret::generate_secret().to_bytes().map_err(|_| failed())?;
    let totp = totp_for(&secret, &c.session.user.email).ok_or_else(failed)?;
    c.store
        .begin_second_factor(
            c.id(),
            c.session.user.id,
            &seal::seal(&state.jobs.keys, &secret),
        )
        .await
        .map_err(|_| {
            PageError::new(
                StatusCode::CONFLICT,
                "Already set up",
                "Two-factor authentication is already on for your user.",
            )
        })?;
    Ok(totp_setup(&c, &totp, None).into_response())
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
    let secret = seal::open(&state.jobs.keys, &pending.sealed_secret).ok_or_else(|| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The stored secret cannot be read with this server's key.",
        )
    })?;
    let totp = totp_for(&secret, &c.session.user.email).ok_or_else(PageError::not_found)?;
    match verify_second_factor(&state, &c.store, c.id(), &c.session.user, &f.code, false).await? {
        CodeCheck::Accepted => {}
        CodeCheck::Refused => {
            return Ok(totp_setup(
                &c,
                &totp,
                Some("That code is not right. Check the time on your phone and try the next code."),
            ))
        }
        CodeCheck::Locked(until) => return Ok(totp_setup(&c, &totp, Some(&locked_message(until)))),
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

#[derive(Deserialize)]
pub struct TotpOffForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Turns TOTP off: the password and a current code (or a recovery code) are both needed.
pub async fn totp_disable(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<TotpOffForm>,
) -> Result<Response, PageError> {
    c.check_csrf(&f.csrf)?;
    if let Err((status, msg)) = confirm_password(&state, &c, &f.password).await? {
        return Ok(refused(
            status,
            security_view(&c, Notice::Error("totp", msg)).await?,
        ));
    }
    let user = &c.session.user;
    match verify_second_factor(&state, &c.store, c.id(), user, &f.code, true).await? {
        CodeCheck::Accepted => {}
        CodeCheck::Refused => {
            return Ok(refused(
                StatusCode::UNAUTHORIZED,
                security_view(&c, Notice::Error("totp", "That code is not right.".into())).await?,
            ))
        }
        CodeCheck::Locked(until) => {
            return Ok(refused(
                StatusCode::TOO_MANY_REQUESTS,
                security_view(&c, Notice::Error("totp", locked_message(until))).await?,
            ))
        }
    }
    c.store.remove_second_factor(c.id(), user.id).await?;
    c.store
        .audit(
            c.id(),
            Some(user.id),
            &user.email,
            "user.2fa_disabled",
            &format!("user:{}", user.id),
            serde_json::json!({"message": "Turned off their two-factor authentication"}),
        )
        .await?;
    mail_user(
        &state,
        &user.email,
        format!(
            "Two-factor authentication was turned off for your kontor user in {}",
            c.account.name
        ),
        format!(
            "Hello,\n\ntwo-factor authentication of your kontor user ({}) in {} was turned off. Your password alone now signs you in.\n\nIf you did not do this, change your password and ask an admin of {} to check the audit log.\n\n-- kontor\n",
            user.email, c.account.name, c.account.name,
        ),
    );
    Ok(
        security_view(&c, Notice::Done("Two-factor authentication is off."))
            .await?
            .into_response(),
    )
}

#[derive(Deserialize)]
pub struct EndSessionForm {
    #[serde(default)]
    session: String,
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Ends one of the user's other sessions, or all of them (`session=others`).
pub async fn end_session(c: Console, Form(f): Form<EndSessionForm>) -> Result<Response, PageError> {
    c.check_csrf(&f.csrf)?;
    let user = &c.session.user;
    let mine = Store::session_handle(&c.token);
    let ended = if f.session == "others" {
        let mut n = 0;
        for s in c.store.user_sessions(c.id(), user.id).await? {
            if s.id != mine && c.store.end_user_session(c.id(), user.id, &s.id).await? {
                n += 1;
            }
        }
        n
    } else if f.session != mine
        && c.store
            .end_user_session(c.id(), user.id, &f.session)
            .await?
    {
        1
    } else {
        return Ok(refused(
            StatusCode::NOT_FOUND,
            security_view(
                &c,
                Notice::Error(
                    "sessions",
                    "That session has already ended (to end this one, sign out).".into(),
                ),
            )
            .await?,
        ));
    };
    c.store
        .audit(
            c.id(),
            Some(user.id),
            &user.email,
            "user.sessions_ended",
            &format!("user:{}", user.id),
            serde_json::json!({"sessions": ended}),
        )
        .await?;
    Ok(security_view(
        &c,
        Notice::Done(if ended == 1 {
            "The session was ended."
        } else {
            "Your other sessions were ended."
        }),
    )
    .await?
    .into_response())
}
