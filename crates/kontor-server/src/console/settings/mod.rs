//! Settings: users and roles, API tokens, property definitions, custom objects, the account
//! name, the audit log, and backups. Every page needs at least the admin role (backups: super
//! admin); invalid input comes back on the same page with the message next to its field.

mod account;
mod audit;
mod backups;
mod forms;
mod hosting;
mod objects;
mod pipelines;
mod properties;
mod salesforce;
mod salesforce_uninstall;
mod sso;
mod tokens;
mod users;
mod webhooks;

pub use account::{account, update_account};
pub use audit::audit;
pub use backups::{backups, create_backup, download, download_page, new_backup};
pub use forms::{archive_form, create_form, form_page, forms};
pub use hosting::{cancel_move, hosting, schedule_move, tick_item};
pub use objects::{create_object, objects};
pub use pipelines::{
    add_stage, change_pipeline, change_stage, create_pipeline, pipelines, pipelines_index,
};
pub use properties::{
    archive_property, create_property, properties, property_page, update_property,
};
pub use salesforce::{
    action as salesforce_action, callback as salesforce_callback, connect as salesforce_connect,
    page as salesforce,
};
pub use salesforce_uninstall::{
    cleanup as salesforce_cleanup, cleanup_action as salesforce_cleanup_action,
    owners as salesforce_owners, owners_action as salesforce_owners_action,
    page as salesforce_uninstall, start as salesforce_uninstall_start,
    status as salesforce_uninstall_status,
};
pub use sso::{sso, update_sso};
pub use tokens::{create_token, revoke_token, tokens};
pub use users::{add_user, change_user, users};
pub use webhooks::{app_action, app_page, create_app as create_webhook_app, webhooks};

use super::{Console, PageError};
use crate::params::QueryParams;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use kontor_domain::time::{date_string, iso};
use kontor_domain::Role;
use kontor_store::StoreError;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

pub(super) const AUDIT_LIMIT: usize = 500;
pub(super) const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Messages for a form's fields, keyed by input id.
#[derive(Default)]
pub(super) struct Errors(Vec<(String, String)>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push((field.to_string(), message.into()));
    }
    fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A store message as a sentence: capitalised, with a full stop.
pub(super) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut s: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// Puts a store's validation or conflict message next to the input it concerns: `fields`
/// maps the store's field names (by prefix) to input ids, and conflicts and unmapped fields
/// go to `fallback`. Any other error becomes an error page.
pub(super) fn place_error(
    e: StoreError,
    fields: &[(&str, &str)],
    fallback: &str,
    errors: &mut Errors,
) -> Result<StatusCode, PageError> {
    let (status, in_field, message) = match e {
        StoreError::Validation {
            message, in_field, ..
        } => (
            StatusCode::BAD_REQUEST,
            in_field.unwrap_or_default(),
            message,
        ),
        StoreError::Conflict { message, .. } => (StatusCode::CONFLICT, String::new(), message),
        other => return Err(other.into()),
    };
    let id = fields
        .iter()
        .find(|(f, _)| !in_field.is_empty() && in_field.starts_with(f))
        .map_or(fallback, |(_, id)| id);
    errors.add(id, sentence(&message));
    Ok(status)
}

pub(super) async fn log_action(
    c: &Console,
    action: &str,
    target: &str,
    details: Value,
) -> Result<(), PageError> {
    let me = &c.session.user;
    c.store
        .audit(c.id(), Some(me.id), &me.email, action, target, details)
        .await?;
    Ok(())
}

pub(super) fn csrf(c: &Console) -> Markup {
    html! { input type="hidden" name="_csrf" value=(c.session.csrf); }
}

/// The message for a `done=` key after a redirect.
pub(super) fn notice(q: &QueryParams) -> Markup {
    let message = match q.first("done") {
        Some("role") => "Role changed.",
        Some("deactivated") => "User deactivated. Their sessions have ended.",
        Some("reactivated") => "User reactivated. They can sign in again.",
        Some("revoked") => "Token revoked. Requests that use it are refused from now on.",
        Some("created") => "Property created.",
        Some("saved") => "Changes saved.",
        Some("archived") => "Property archived.",
        Some("object") => "Custom object created.",
        Some("renamed") => "Account renamed.",
        Some("unchanged") => "Nothing was changed.",
        Some("password-reset") => "Password reset. The user's sessions have ended, and a link to set a new password was e-mailed to them.",
        Some("2fa-reset") => "Two-factor authentication reset. The user's sessions have ended; they sign in with their password and can set it up again.",
        Some("sso") => "Single sign-on settings saved.",
        Some("sso-off") => "Single sign-on turned off. Everyone signs in with a password.",
        Some("pipeline-created") => "Pipeline created.",
        Some("pipeline-saved") => "Pipeline renamed.",
        Some("pipeline-archived") => "Pipeline archived.",
        Some("stage-added") => "Stage added.",
        Some("stage-saved") => "Stage saved.",
        Some("stage-archived") => "Stage archived.",
        Some("moved") => "Order changed.",
        Some("app-removed") => "App removed, with its subscriptions and events.",
        _ => return html! {},
    };
    html! { p.flash role="status" { (message) } }
}

pub(super) fn when(ms: i64) -> Markup {
    html! { time datetime=(iso(ms)) title=(iso(ms)) { (date_string(ms).unwrap_or_default()) } }
}

pub(super) fn described_by(id: &str, hint: bool, errors: &Errors) -> Option<String> {
    let mut ids = Vec::new();
    if hint {
        ids.push(format!("{id}-hint"));
    }
    if errors.get(id).is_some() {
        ids.push(format!("{id}-error"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

pub(super) fn hint(id: &str, text: Option<&str>) -> Markup {
    html! { @if let Some(t) = text { p.muted.field-hint id=(format!("{id}-hint")) { (t) } } }
}

pub(super) fn error(id: &str, errors: &Errors) -> Markup {
    html! { @if let Some(e) = errors.get(id) { p.error id=(format!("{id}-error")) role="alert" { (e) } } }
}

/// A labelled input named like its id, with an optional hint and its error.
pub(super) fn input(
    id: &str,
    label: &str,
    kind: &str,
    value: &str,
    hint_text: Option<&str>,
    required: bool,
    errors: &Errors,
) -> Markup {
    html! {
        label for=(id) { (label) }
        (hint(id, hint_text))
        input id=(id) name=(id) type=(kind) value=(value) required[required]
            aria-invalid=[errors.get(id).map(|_| "true")]
            aria-describedby=[described_by(id, hint_text.is_some(), errors)];
        (error(id, errors))
    }
}

pub(super) fn textarea(
    id: &str,
    label: &str,
    value: &str,
    hint_text: Option<&str>,
    errors: &Errors,
) -> Markup {
    html! {
        label for=(id) { (label) }
        (hint(id, hint_text))
        textarea id=(id) name=(id) rows="4"
            aria-invalid=[errors.get(id).map(|_| "true")]
            aria-describedby=[described_by(id, hint_text.is_some(), errors)] { (value) }
        (error(id, errors))
    }
}

pub(super) fn select(
    id: &str,
    label: &str,
    choices: &[(String, String)],
    selected: &str,
    errors: &Errors,
) -> Markup {
    html! {
        label for=(id) { (label) }
        select id=(id) name=(id)
            aria-invalid=[errors.get(id).map(|_| "true")]
            aria-describedby=[described_by(id, false, errors)] {
            @for (value, text) in choices {
                option value=(value) selected[value == selected] { (text) }
            }
        }
        (error(id, errors))
    }
}

/// What a confirmation page asks: the page a destructive form answers with when the console
/// script did not ask already (the script asks with [`confirm_dialog`]).
pub(super) struct Confirm<'a> {
    pub title: &'a str,
    pub text: &'a str,
    /// Where the form posts, with `action` and `confirm=yes`.
    pub path: &'a str,
    pub action: &'a str,
    pub button: &'a str,
    pub cancel: &'a str,
    /// The menu entry the page is under.
    pub nav: &'a str,
}

pub(super) fn confirm_page(c: &Console, q: &Confirm<'_>) -> Markup {
    c.page(
        q.title,
        q.nav,
        html! {
            h1 { (q.title) }
            div.card {
                p { (q.text) }
                form method="post" action=(q.path) {
                    (csrf(c))
                    input type="hidden" name="action" value=(q.action);
                    input type="hidden" name="confirm" value="yes";
                    div.actions-row {
                        button.danger type="submit" { (q.button) }
                        a.button.secondary href=(q.cancel) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// The dialog that forms marked `data-confirm` open before they are sent (the console script
/// puts the form's own question in it); Cancel has the focus, so Enter does nothing harmful.
pub(super) fn confirm_dialog(title: &str, action: &str) -> Markup {
    html! {
        dialog.confirm #confirm-dialog aria-labelledby="confirm-title" {
            h2 #confirm-title { (title) }
            p #confirm-text {}
            form method="dialog" {
                div.actions-row {
                    button.danger type="submit" value="confirm" { (action) }
                    button.secondary type="submit" value="cancel" autofocus { "Cancel" }
                }
            }
        }
    }
}

pub(super) fn reply(status: StatusCode, page: Markup) -> Response {
    (status, page).into_response()
}

pub async fn index(c: Console) -> Result<Redirect, PageError> {
    c.require(Role::Admin)?;
    Ok(Redirect::to("/app/settings/users"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CsrfForm {
    #[serde(rename = "_csrf")]
    pub(super) csrf: String,
}

pub(super) const KINDS: [(&str, &str); 6] = [
    ("string", "Text"),
    ("number", "Number"),
    ("date", "Date"),
    ("datetime", "Date and time"),
    ("enumeration", "Dropdown select"),
    ("bool", "Yes or no"),
];
