//! The web console at `/app`: server-rendered HTML with cookie sessions.
//!
//! Every page resolves the session cookie (`<account>.<secret>`: the account routes it to
//! its cell, where only a hash of the secret is kept), checks the user's role on the server,
//! and every form carries the session's CSRF token. Errors render as HTML pages, never JSON.

mod account;
mod bin;
mod board;
mod edit;
mod forgot;
mod imports;
mod layout;
mod records;
mod settings;
mod signin;
pub(crate) mod sso;

use crate::AppState;
use axum::extract::FromRequestParts;
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kontor_domain::Role;
use kontor_store::{Account, Session, Store};
use maud::{html, Markup};

pub(crate) use signin::{verify_second_factor, CodeCheck};

pub const SESSION_COOKIE: &str = "kontor_session";
/// Double-submit token for the sign-in form, which has no session yet.
pub const LOGIN_CSRF_COOKIE: &str = "kontor_login_csrf";

/// Sign-in forms are small: a larger body is refused (413) before it is read further.
fn sign_in_body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(16 * 1024)
}

pub fn routes() -> crate::Routes {
    crate::Routes::new()
        .route("/app", get(home))
        .route("/app/assets/app.css", get(css))
        .route("/app/assets/app.js", get(js))
        .route(
            "/app/login",
            get(signin::login_page).post(signin::login.layer(sign_in_body_limit())),
        )
        .route(
            "/app/login/second-factor",
            get(signin::second_factor_page).post(signin::second_factor.layer(sign_in_body_limit())),
        )
        .route(
            "/app/login/forgot",
            get(forgot::forgot_page).post(forgot::forgot.layer(sign_in_body_limit())),
        )
        .route(
            "/app/login/reset/{token}",
            get(forgot::reset_page).post(forgot::reset.layer(sign_in_body_limit())),
        )
        .route("/app/login/sso", get(sso::page).post(sso::start))
        .route("/app/login/sso/callback", get(sso::callback))
        .route("/app/logout", post(signin::logout))
        .route("/app/account/security", get(account::security_page))
        .route(
            "/app/account/security/password",
            post(account::change_password),
        )
        .route("/app/account/security/sessions", post(account::end_session))
        .route("/app/account/security/totp", post(account::totp_begin))
        .route(
            "/app/account/security/totp/confirm",
            post(account::totp_confirm),
        )
        .route(
            "/app/account/security/totp/disable",
            post(account::totp_disable),
        )
        .route(
            "/app/notifications",
            get(signin::notifications_page).post(signin::notifications_read),
        )
        .route("/app/objects/{object_type}", get(records::list))
        .route("/app/objects/{object_type}/board", get(board::board))
        .route(
            "/app/objects/{object_type}/new",
            get(edit::new_page).post(edit::create),
        )
        .route("/app/objects/{object_type}/{id}", get(records::view))
        .route(
            "/app/objects/{object_type}/{id}/edit",
            get(edit::edit_page).post(edit::update),
        )
        .route("/app/objects/{object_type}/{id}/delete", post(edit::delete))
        .route("/app/objects/{object_type}/{id}/merge", post(edit::merge))
        .route(
            "/app/objects/{object_type}/{id}/stage",
            post(board::move_record),
        )
        .route("/app/recycle-bin", get(bin::page).post(bin::act))
        .route("/app/settings", get(settings::index))
        .route(
            "/app/settings/users",
            get(settings::users).post(settings::add_user),
        )
        .route("/app/settings/users/{id}", post(settings::change_user))
        .route(
            "/app/settings/tokens",
            get(settings::tokens).post(settings::create_token),
        )
        .route(
            "/app/settings/tokens/{id}/revoke",
            post(settings::revoke_token),
        )
        .route(
            "/app/settings/webhooks",
            get(settings::webhooks).post(settings::create_webhook_app),
        )
        .route(
            "/app/settings/webhooks/{id}",
            get(settings::app_page).post(settings::app_action),
        )
        .route(
            "/app/settings/integrations/salesforce",
            get(settings::salesforce).post(settings::salesforce_action),
        )
        .route(
            "/app/settings/integrations/salesforce/connect",
            post(settings::salesforce_connect),
        )
        .route(
            "/app/settings/integrations/salesforce/callback",
            get(settings::salesforce_callback),
        )
        .route(
            "/app/settings/integrations/salesforce/uninstall",
            get(settings::salesforce_uninstall).post(settings::salesforce_uninstall_start),
        )
        .route(
            "/app/settings/integrations/salesforce/uninstall/{id}",
            get(settings::salesforce_uninstall_status),
        )
        .route(
            "/app/settings/integrations/salesforce/owners",
            get(settings::salesforce_owners).post(settings::salesforce_owners_action),
        )
        .route(
            "/app/settings/integrations/salesforce/owners/cleanup",
            get(settings::salesforce_cleanup).post(settings::salesforce_cleanup_action),
        )
        .route(
            "/app/settings/forms",
            get(settings::forms).post(settings::create_form),
        )
        .route("/app/settings/forms/{id}", get(settings::form_page))
        .route(
            "/app/settings/forms/{id}/archive",
            post(settings::archive_form),
        )
        .route(
            "/app/settings/properties",
            get(settings::properties).post(settings::create_property),
        )
        .route(
            "/app/settings/properties/{object_type}/{name}",
            get(settings::property_page).post(settings::update_property),
        )
        .route(
            "/app/settings/properties/{object_type}/{name}/archive",
            post(settings::archive_property),
        )
        .route(
            "/app/settings/objects",
            get(settings::objects).post(settings::create_object),
        )
        .route(
            "/app/settings/objects/pipelines",
            get(settings::pipelines_index),
        )
        .route(
            "/app/settings/objects/{object_type}/pipelines",
            get(settings::pipelines).post(settings::create_pipeline),
        )
        .route(
            "/app/settings/objects/{object_type}/pipelines/{id}",
            post(settings::change_pipeline),
        )
        .route(
            "/app/settings/objects/{object_type}/pipelines/{id}/stages",
            post(settings::add_stage),
        )
        .route(
            "/app/settings/objects/{object_type}/pipelines/{id}/stages/{stage}",
            post(settings::change_stage),
        )
        .route(
            "/app/settings/account",
            get(settings::account).post(settings::update_account),
        )
        .route(
            "/app/settings/account/data-hosting",
            get(settings::hosting).post(settings::schedule_move),
        )
        .route(
            "/app/settings/account/data-hosting/{id}/cancel",
            post(settings::cancel_move),
        )
        .route(
            "/app/settings/account/data-hosting/{id}/checklist",
            post(settings::tick_item),
        )
        .route("/app/settings/audit", get(settings::audit))
        .route(
            "/app/settings/sso",
            get(settings::sso).post(settings::update_sso),
        )
        .route(
            "/app/settings/backups",
            get(settings::backups).post(settings::create_backup),
        )
        .route("/app/settings/backups/new", get(settings::new_backup))
        .route(
            "/app/settings/backups/{id}/download",
            get(settings::download_page).post(settings::download),
        )
        .route(
            "/app/settings/backups/{id}/restore",
            get(imports::restore_page).post(imports::plan_restore_post),
        )
        .route(
            "/app/settings/backups/{id}/restore/{plan}",
            get(imports::restore_review).post(imports::apply_restore),
        )
        .route("/app/imports", get(imports::list))
        .route(
            "/app/imports/new",
            get(imports::new_page).post(imports::upload).layer(
                axum::extract::DefaultBodyLimit::max(
                    kontor_jobs::import::MAX_FILE_BYTES + (1 << 20),
                ),
            ),
        )
        .route(
            "/app/imports/new/{token}",
            get(imports::mapping_page).post(imports::mapping_post),
        )
        .route("/app/imports/{id}", get(imports::detail))
        .route("/app/imports/{id}/cancel", post(imports::cancel))
        .route(
            "/app/imports/{id}/rejected-rows",
            get(imports::rejected_rows),
        )
        .route("/app/imports/{id}/revert", post(imports::revert))
        .route(
            "/app/imports/{id}/revert/{plan}",
            get(imports::revert_review).post(imports::apply_revert),
        )
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        layout::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("app.js"),
    )
        .into_response()
}

async fn home(c: Console) -> Redirect {
    let _ = c;
    Redirect::to("/app/objects/contacts")
}

/// An HTML error page with a status.
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
        }
    }
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here, or it belongs to another account.",
        )
    }
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Your role does not allow this page. Ask a super admin of your account.",
        )
    }
}

impl From<kontor_store::StoreError> for PageError {
    fn from(e: kontor_store::StoreError) -> Self {
        match e {
            kontor_store::StoreError::NotFound(_) => Self::not_found(),
            kontor_store::StoreError::Fenced(_) => crate::lifecycle::Closed::Migrating.into(),
            kontor_store::StoreError::TimedOut(_) => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "Search took too long",
                "This search took too long to finish. Narrow it: search for an e-mail address or another unique value, or filter on fewer properties.",
            ),
            other => {
                let id = uuid::Uuid::new_v4();
                tracing::error!(correlation = %id, error = %other, "console request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    format!("The server could not finish this. Reference: {id}"),
                )
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = layout::bare(
            self.title,
            html! {
                h1 { (self.title) }
                div.card {
                    p { (self.message) }
                    p { a href="/app" { "Back to the console" } }
                }
            },
        );
        (self.status, body).into_response()
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/app; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// A signed-in console user with a complete session.
pub struct Console {
    pub account: Account,
    pub store: Store,
    pub session: Session,
    pub token: String,
    pub unread: usize,
    /// (href, label) of the object types in the navigation.
    pub nav: Vec<(String, String)>,
}

impl Console {
    pub fn id(&self) -> i64 {
        self.account.id
    }
    pub fn role(&self) -> Role {
        self.session.user.role
    }
    /// Refuses unless the user's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), PageError> {
        if self.role().includes(role) {
            Ok(())
        } else {
            Err(PageError::forbidden())
        }
    }
    /// Checks a submitted form's CSRF token.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), PageError> {
        if constant_time_eq(submitted.as_bytes(), self.session.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::new(StatusCode::FORBIDDEN, "Form expired", "This form is out of date or did not come from this console. Reload the page and try again."))
        }
    }
    pub fn page(&self, title: &str, current: &str, body: Markup) -> Markup {
        layout::page(self, title, current, body)
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the session extractor rejects with: the sign-in page, or the second-factor step.
pub enum NeedsSignIn {
    SignIn,
    SecondFactor,
    Error(PageError),
}

impl IntoResponse for NeedsSignIn {
    fn into_response(self) -> Response {
        match self {
            NeedsSignIn::SignIn => Redirect::to("/app/login").into_response(),
            NeedsSignIn::SecondFactor => Redirect::to("/app/login/second-factor").into_response(),
            NeedsSignIn::Error(e) => e.into_response(),
        }
    }
}

/// Resolves the session cookie to its account, cell and session, whatever its state.
pub async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(Account, Store, Session, String)>, PageError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(account_id) = token
        .split_once('.')
        .and_then(|(a, _)| a.parse::<i64>().ok())
    else {
        return Ok(None);
    };
    let Some(account) = state.dir.account(account_id).await? else {
        return Ok(None);
    };
    let store = state.dir.cell(&account)?.clone();
    let found = store
        .session(&token)
        .await?
        .filter(|s| s.account_id == account.id);
    // A session of a closed account opens nothing; it is not ended, so work resumes when
    // the account opens again.
    if found.is_some() {
        if let Err(closed) = crate::lifecycle::admit(&account) {
            if closed == crate::lifecycle::Closed::Migrating {
                return Err(migrating_page(state, &account, &store).await);
            }
            return Err(closed.into());
        }
    }
    Ok(found.map(|s| (account, store, s, token)))
}

/// The page a user of an account being moved sees: to which region, since when and for about
/// how long, and whom to ask (the account's super admins).
async fn migrating_page(state: &AppState, account: &Account, store: &Store) -> PageError {
    let open = state
        .jobs
        .dir
        .moves_of(account.id)
        .await
        .ok()
        .and_then(|m| m.into_iter().find(|m| m.state.open()));
    let admins: Vec<String> = store
        .users(account.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u.active && u.role == Role::SuperAdmin)
        .map(|u| {
            let name = format!("{} {}", u.first_name, u.last_name);
            if name.trim().is_empty() {
                u.email
            } else {
                format!("{} ({})", name.trim(), u.email)
            }
        })
        .collect();
    let to = open.as_ref().map_or("another region", |m| m.to.label());
    let mut message = format!(
        "This account's data is being moved to {to}. The account is closed for the last step of the move, which usually takes under a minute; try again shortly."
    );
    if let Some(since) = open.as_ref().and_then(|m| m.frozen_at) {
        message.push_str(&format!(
            " Closed since {} (UTC).",
            kontor_domain::time::iso(since)
        ));
    }
    if !admins.is_empty() {
        message.push_str(&format!(
            " Questions: ask your super admin{}, {}.",
            if admins.len() > 1 { "s" } else { "" },
            admins.join(", ")
        ));
    }
    PageError::new(
        crate::lifecycle::migrating_status(),
        "Data transfer in progress",
        message,
    )
}

impl FromRequestParts<AppState> for Console {
    type Rejection = NeedsSignIn;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, NeedsSignIn> {
        let (account, store, session, token) = session_of(state, &parts.headers)
            .await
            .map_err(NeedsSignIn::Error)?
            .ok_or(NeedsSignIn::SignIn)?;
        if session.pending_second_factor {
            return Err(NeedsSignIn::SecondFactor);
        }
        let unread = store
            .notifications(account.id, session.user.id, 100)
            .await
            .map_err(|e| NeedsSignIn::Error(e.into()))?
            .iter()
            .filter(|n| !n.read)
            .count();
        let nav = store
            .object_types(account.id)
            .await
            .map_err(|e| NeedsSignIn::Error(e.into()))?
            .into_iter()
            .map(|o| (format!("/app/objects/{}", o.name), o.label_plural))
            .collect();
        Ok(Console {
            account,
            store,
            session,
            token,
            unread,
            nav,
        })
    }
}
