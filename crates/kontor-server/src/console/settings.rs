//! Settings: users and roles, API tokens, property definitions, custom objects, the account
//! name, and the audit log. Every page needs at least the admin role; invalid input comes
//! back on the same page with the message next to its field.

use super::{Console, PageError};
use crate::params::QueryParams;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use kontor_domain::time::{date_string, iso};
use kontor_domain::{PropertyDef, PropertyOption, PropertyType, Region, Role};
use kontor_store::{ObjectType, OptionInput, PropertyInput, SchemaInput, StoreError};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Keeps a label for screen readers while the visible context says what it is.
const VISUALLY_HIDDEN: &str = "position:absolute;left:-9999px";
const AUDIT_LIMIT: usize = 500;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

// ---- shared pieces ----

/// Messages for a form's fields, keyed by input id.
#[derive(Default)]
struct Errors(Vec<(String, String)>);

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
fn sentence(message: &str) -> String {
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
fn place_error(
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

async fn log_action(
    c: &Console,
    action: &str,
    target: &str,
    details: Value,
) -> Result<(), PageError> {
    let me = &c.session.user;
    c.store
        .audit(
            c.id(),
            Some(me.id),
            &me.email,
            action,
            target,
            &details.to_string(),
        )
        .await?;
    Ok(())
}

fn csrf(c: &Console) -> Markup {
    html! { input type="hidden" name="_csrf" value=(c.session.csrf); }
}

/// The message for a `done=` key after a redirect.
fn notice(q: &QueryParams) -> Markup {
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
        _ => return html! {},
    };
    html! { p.flash role="status" { (message) } }
}

fn when(ms: i64) -> Markup {
    html! { time datetime=(iso(ms)) title=(iso(ms)) { (date_string(ms).unwrap_or_default()) } }
}

fn described_by(id: &str, hint: bool, errors: &Errors) -> Option<String> {
    let mut ids = Vec::new();
    if hint {
        ids.push(format!("{id}-hint"));
    }
    if errors.get(id).is_some() {
        ids.push(format!("{id}-error"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

fn hint(id: &str, text: Option<&str>) -> Markup {
    html! { @if let Some(t) = text { p.muted id=(format!("{id}-hint")) style="margin:0 0 4px" { (t) } } }
}

fn error(id: &str, errors: &Errors) -> Markup {
    html! { @if let Some(e) = errors.get(id) { p.error id=(format!("{id}-error")) role="alert" { (e) } } }
}

/// A labelled input named like its id, with an optional hint and its error.
fn input(
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

fn textarea(
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

fn select(
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

fn reply(status: StatusCode, page: Markup) -> Response {
    (status, page).into_response()
}

// ---- users ----

pub async fn index(c: Console) -> Result<Redirect, PageError> {
    c.require(Role::Admin)?;
    Ok(Redirect::to("/app/settings/users"))
}

fn role_label(r: Role) -> &'static str {
    match r {
        Role::SuperAdmin => "Super admin",
        Role::Admin => "Admin",
        Role::User => "User",
    }
}

/// Roles this user may give: only a super admin grants super admin.
fn grantable(c: &Console) -> Vec<(String, String)> {
    let mut roles = vec![Role::User, Role::Admin];
    if c.role() == Role::SuperAdmin {
        roles.push(Role::SuperAdmin);
    }
    roles
        .into_iter()
        .map(|r| (r.as_str().to_string(), role_label(r).to_string()))
        .collect()
}

fn generate_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewUserForm {
    email: String,
    first_name: String,
    last_name: String,
    role: String,
    password: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

/// The user list and the add form; `row_error` puts a refusal next to one user's controls.
async fn users_view(
    c: &Console,
    form: &NewUserForm,
    errors: &Errors,
    top: Markup,
    row_error: Option<(i64, &str)>,
) -> Result<Markup, PageError> {
    let users = c.store.users(c.id()).await?;
    let roles = grantable(c);
    let super_admin = c.role() == Role::SuperAdmin;
    Ok(c.page(
        "Users",
        "/app/settings/users",
        html! {
            h1 { "Users" }
            (top)
            table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "E-mail" } th scope="col" { "Role" }
                    th scope="col" { "Status" } th scope="col" { "Added" } th scope="col" { "Change" }
                } }
                tbody {
                    @for u in &users {
                        @let action = format!("/app/settings/users/{}", u.id);
                        @let err = row_error.filter(|(id, _)| *id == u.id).map(|(_, m)| m);
                        @let err_id = format!("user-{}-error", u.id);
                        @let select_id = format!("role-{}", u.id);
                        tr id=(format!("user-{}", u.id)) {
                            td { (u.first_name) " " (u.last_name) }
                            td { (u.email) }
                            td { (role_label(u.role)) }
                            td { @if u.active { "Active" } @else { strong { "Deactivated" } } }
                            td { (when(u.created_at)) }
                            td {
                                @if u.id == c.session.user.id {
                                    span.muted { "This is you." }
                                } @else if u.role == Role::SuperAdmin && !super_admin {
                                    span.muted { "Only a super admin can change a super admin." }
                                } @else {
                                    div.toolbar {
                                        form method="post" action=(action) {
                                            (csrf(c))
                                            input type="hidden" name="action" value="role";
                                            label for=(select_id) style=(VISUALLY_HIDDEN) { "Role of " (u.email) }
                                            select id=(select_id) name="role" aria-describedby=[err.map(|_| &err_id)] {
                                                @for (value, text) in &roles {
                                                    option value=(value) selected[value == u.role.as_str()] { (text) }
                                                }
                                            }
                                            button.secondary type="submit" { "Change role" }
                                        }
                                        form method="post" action=(action) {
                                            (csrf(c))
                                            @if u.active {
                                                input type="hidden" name="action" value="deactivate";
                                                button.danger type="submit" aria-label=(format!("Deactivate {}", u.email)) { "Deactivate" }
                                            } @else {
                                                input type="hidden" name="action" value="reactivate";
                                                button.secondary type="submit" aria-label=(format!("Reactivate {}", u.email)) { "Reactivate" }
                                            }
                                        }
                                    }
                                }
                                @if let Some(e) = err { p.error id=(err_id) role="alert" { (e) } }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="add-user" {
                h2 #add-user { "Add a user" }
                form method="post" action="/app/settings/users" {
                    (csrf(c))
                    (input("email", "E-mail", "email", &form.email, None, true, errors))
                    (input("first_name", "First name", "text", &form.first_name, None, false, errors))
                    (input("last_name", "Last name", "text", &form.last_name, None, false, errors))
                    (select("role", "Role", &roles, &form.role, errors))
                    label for="password" { "Password" }
                    (hint("password", Some("At least 10 characters. Leave empty to generate one; it is shown once after the user is added.")))
                    input #password type="password" name="password" autocomplete="new-password"
                        aria-invalid=[errors.get("password").map(|_| "true")]
                        aria-describedby=[described_by("password", true, errors)];
                    (error("password", errors))
                    p { button type="submit" { "Add user" } }
                }
            }
        },
    ))
}

pub async fn users(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    users_view(
        &c,
        &NewUserForm::default(),
        &Errors::default(),
        notice(&q),
        None,
    )
    .await
}

pub async fn add_user(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<NewUserForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let mut errors = Errors::default();
    let mut status = StatusCode::BAD_REQUEST;
    if !f.email.contains('@') {
        errors.add("email", "Enter an e-mail address, like name@example.com.");
    }
    let role = Role::parse(&f.role);
    match role {
        None => errors.add("role", "Choose a role."),
        Some(Role::SuperAdmin) if c.role() != Role::SuperAdmin => {
            status = StatusCode::FORBIDDEN;
            errors.add("role", "Only a super admin can grant the super-admin role.");
        }
        Some(_) => {}
    }
    let generated = f.password.is_empty();
    if !generated && f.password.chars().count() < 10 {
        errors.add(
            "password",
            "A password needs at least 10 characters. Leave the field empty to generate one.",
        );
    }
    if let (true, Some(role)) = (errors.is_empty(), role) {
        let password = if generated {
            generate_password()
        } else {
            f.password.clone()
        };
        let created = state
            .dir
            .create_user(
                &c.account,
                &f.email,
                f.first_name.trim(),
                f.last_name.trim(),
                role,
                &password,
            )
            .await;
        match created {
            Ok(user) => {
                log_action(
                    &c,
                    "user.create",
                    &format!("user:{}", user.id),
                    json!({"email": user.email, "role": user.role.as_str()}),
                )
                .await?;
                let top = html! {
                    div.flash role="status" {
                        p { "Added " (user.email) " as " (role_label(user.role).to_lowercase()) "." }
                        @if generated {
                            p { "Their password: " span.secret #new-password { (password) } }
                            p { "Copy it now and pass it on safely: it will not be shown again." }
                        }
                    }
                };
                let page =
                    users_view(&c, &NewUserForm::default(), &Errors::default(), top, None).await?;
                return Ok(page.into_response());
            }
            Err(e) => {
                status = place_error(
                    e,
                    &[("email", "email"), ("password", "password")],
                    "email",
                    &mut errors,
                )?;
            }
        }
    }
    Ok(reply(
        status,
        users_view(&c, &f, &errors, html! {}, None).await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ChangeUserForm {
    action: String,
    role: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

const NOT_YOURSELF: &str =
    "You cannot change your own role or deactivate yourself. Someone else with the right role has to do it.";

pub async fn change_user(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<ChangeUserForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let target = match id.parse::<i64>() {
        Ok(id) => c
            .store
            .users(c.id())
            .await?
            .into_iter()
            .find(|u| u.id == id),
        Err(_) => None,
    }
    .ok_or_else(PageError::not_found)?;
    let super_admin = c.role() == Role::SuperAdmin;
    let refusal = if target.id == c.session.user.id {
        Some((StatusCode::CONFLICT, NOT_YOURSELF))
    } else if target.role == Role::SuperAdmin && !super_admin {
        Some((
            StatusCode::FORBIDDEN,
            "Only a super admin can change or deactivate a super admin.",
        ))
    } else if f.action == "role" && Role::parse(&f.role) == Some(Role::SuperAdmin) && !super_admin {
        Some((
            StatusCode::FORBIDDEN,
            "Only a super admin can grant the super-admin role.",
        ))
    } else if f.action == "role" && Role::parse(&f.role).is_none() {
        Some((StatusCode::BAD_REQUEST, "Choose a role."))
    } else {
        None
    };
    if let Some((status, message)) = refusal {
        let page = users_view(
            &c,
            &NewUserForm::default(),
            &Errors::default(),
            html! {},
            Some((target.id, message)),
        )
        .await?;
        return Ok(reply(status, page));
    }
    let target_ref = format!("user:{}", target.id);
    let done = match (f.action.as_str(), Role::parse(&f.role)) {
        ("role", Some(role)) if role != target.role => {
            c.store.set_role(c.id(), target.id, role).await?;
            log_action(
                &c,
                "user.role_change",
                &target_ref,
                json!({"email": target.email, "from": target.role.as_str(), "to": role.as_str()}),
            )
            .await?;
            "role"
        }
        ("deactivate", _) if target.active => {
            c.store.set_active(c.id(), target.id, false).await?;
            log_action(
                &c,
                "user.deactivate",
                &target_ref,
                json!({"email": target.email}),
            )
            .await?;
            "deactivated"
        }
        ("reactivate", _) if !target.active => {
            c.store.set_active(c.id(), target.id, true).await?;
            log_action(
                &c,
                "user.reactivate",
                &target_ref,
                json!({"email": target.email}),
            )
            .await?;
            "reactivated"
        }
        ("role" | "deactivate" | "reactivate", _) => "unchanged",
        _ => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "Unknown change",
                "The form asked for a change this page does not make.",
            ))
        }
    };
    Ok(Redirect::to(&format!("/app/settings/users?done={done}")).into_response())
}

// ---- tokens ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenForm {
    name: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

async fn tokens_view(
    c: &Console,
    name: &str,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let tokens = c.store.tokens(c.id()).await?;
    Ok(c.page(
        "Private apps & tokens",
        "/app/settings/tokens",
        html! {
            h1 { "Private apps & tokens" }
            (top)
            p.muted { "A token lets another program use this account's data through the API. Revoke the ones you no longer use." }
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Created" } th scope="col" { "State" } th scope="col" { "Revoke" } } }
                tbody {
                    @for t in &tokens {
                        tr id=(format!("token-{}", t.id)) {
                            td { (t.name) }
                            td { (when(t.created_at)) }
                            td { @match t.revoked_at { Some(at) => { "Revoked " (when(at)) }, None => { "Live" } } }
                            td {
                                @if t.revoked_at.is_none() {
                                    form method="post" action=(format!("/app/settings/tokens/{}/revoke", t.id)) {
                                        (csrf(c))
                                        button.danger type="submit" aria-label=(format!("Revoke {}", t.name)) { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if tokens.is_empty() { p.muted { "No tokens yet." } }
            section.card aria-labelledby="create-token" {
                h2 #create-token { "Create a token" }
                form method="post" action="/app/settings/tokens" {
                    (csrf(c))
                    (input("name", "Name", "text", name, Some("What the token is for, such as the program that uses it."), true, errors))
                    p { button type="submit" { "Create token" } }
                }
            }
        },
    ))
}

pub async fn tokens(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    tokens_view(&c, "", &Errors::default(), notice(&q)).await
}

pub async fn create_token(c: Console, Form(f): Form<TokenForm>) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    // The store writes the token.create audit entry itself.
    match c
        .store
        .create_token(c.id(), &f.name, Some(c.session.user.id))
        .await
    {
        Ok((token, secret)) => {
            let top = html! {
                div.flash role="status" {
                    p { "Token " strong { (token.name) } " created. Copy it now: it will not be shown again." }
                    p.secret #new-token { (secret) }
                }
            };
            Ok(tokens_view(&c, "", &Errors::default(), top)
                .await?
                .into_response())
        }
        Err(e) => {
            let mut errors = Errors::default();
            let status = place_error(e, &[("name", "name")], "name", &mut errors)?;
            Ok(reply(
                status,
                tokens_view(&c, &f.name, &errors, html! {}).await?,
            ))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: String,
}

pub async fn revoke_token(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    let token = c
        .store
        .tokens(c.id())
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(PageError::not_found)?;
    if token.revoked_at.is_some() {
        return Ok(Redirect::to("/app/settings/tokens?done=unchanged"));
    }
    // The store writes the token.revoke audit entry itself.
    c.store
        .revoke_token(c.id(), id, Some(c.session.user.id))
        .await?;
    Ok(Redirect::to("/app/settings/tokens?done=revoked"))
}

// ---- properties ----

const KINDS: [(&str, &str); 6] = [
    ("string", "Text"),
    ("number", "Number"),
    ("date", "Date"),
    ("datetime", "Date and time"),
    ("enumeration", "Dropdown select"),
    ("bool", "Yes or no"),
];

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PropertyForm {
    /// The object type, on the create form only.
    #[serde(rename = "type")]
    object_type: String,
    label: String,
    name: String,
    kind: String,
    group: String,
    description: String,
    options: String,
    sensitive: Option<String>,
    #[serde(rename = "_csrf")]
    csrf: String,
}

impl PropertyForm {
    fn of(def: &PropertyDef) -> Self {
        Self {
            label: def.label.clone(),
            name: def.name.clone(),
            kind: def.kind.as_str().into(),
            group: def.group_name.clone(),
            description: def.description.clone(),
            options: options_text(&def.options),
            sensitive: def.sensitivity.is_sensitive().then(|| "on".into()),
            ..Self::default()
        }
    }
}

/// Store field names of a property input, mapped to the form's inputs.
const PROPERTY_FIELDS: [(&str, &str); 8] = [
    ("name", "name"),
    ("label", "label"),
    ("type", "kind"),
    ("fieldType", "kind"),
    ("groupName", "group"),
    ("options", "options"),
    ("dataSensitivity", "sensitive"),
    ("hasUniqueValue", "name"),
];

/// Options one per line: `Label`, or `Label | value` when the stored value differs.
fn options_text(options: &[PropertyOption]) -> String {
    options
        .iter()
        .map(|o| {
            if o.label == o.value {
                o.label.clone()
            } else {
                format!("{} | {}", o.label, o.value)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the options text, keeping what the form does not show (hidden, description) of
/// options that already exist.
fn parse_options(text: &str, existing: &[PropertyOption]) -> Vec<OptionInput> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (label, value) = match line.split_once('|') {
                Some((l, v)) => (l.trim(), v.trim()),
                None => (line, line),
            };
            let old = existing.iter().find(|o| o.value == value);
            OptionInput {
                label: label.to_string(),
                value: value.to_string(),
                hidden: old.is_some_and(|o| o.hidden),
                display_order: None,
                description: old.map(|o| o.description.clone()),
            }
        })
        .collect()
}

/// An internal name made from a label: `Favourite colour` → `favourite_colour`.
fn internal_name(label: &str) -> String {
    let mut name = String::new();
    for ch in label.trim().chars() {
        if ch.is_ascii_alphanumeric() {
            name.push(ch.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('_') {
            name.push('_');
        }
    }
    name.trim_end_matches('_').to_string()
}

async fn object_type(c: &Console, name: &str) -> Result<ObjectType, PageError> {
    c.store
        .object_type(c.id(), name)
        .await?
        .ok_or_else(PageError::not_found)
}

async fn group_choices(c: &Console, ot: &ObjectType) -> Result<Vec<(String, String)>, PageError> {
    Ok(c.store
        .property_groups(c.id(), &ot.type_id)
        .await?
        .into_iter()
        .map(|g| (g.name, g.label))
        .collect())
}

fn sensitive_checkbox(checked: bool, errors: &Errors) -> Markup {
    html! {
        p style="margin:12px 0 0" {
            input #sensitive type="checkbox" name="sensitive" value="on" checked[checked]
                aria-describedby=[described_by("sensitive", true, errors)];
            " "
            label for="sensitive" style="display:inline" { "This property holds sensitive data" }
        }
        p.muted #sensitive-hint style="margin:4px 0 0" {
            "For example health, financial or identity-document details. The console marks sensitive properties on records and forms."
        }
        (error("sensitive", errors))
    }
}

fn sensitivity_cell(def: &PropertyDef) -> Markup {
    html! {
        @match def.sensitivity {
            kontor_domain::Sensitivity::NonSensitive => { span.muted { "—" } }
            kontor_domain::Sensitivity::Sensitive => { strong { "Sensitive" } }
            kontor_domain::Sensitivity::HighlySensitive => { strong { "Highly sensitive" } }
        }
    }
}

async fn properties_view(
    c: &Console,
    ot: &ObjectType,
    form: &PropertyForm,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let types = c.store.object_types(c.id()).await?;
    let defs = c.store.properties(c.id(), &ot.type_id, false).await?;
    let groups = group_choices(c, ot).await?;
    let group_label = |name: &str| {
        groups
            .iter()
            .find(|(n, _)| n == name)
            .map_or(name.to_string(), |(_, l)| l.clone())
    };
    let kinds: Vec<(String, String)> = KINDS
        .iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .collect();
    Ok(c.page(
        "Properties",
        "/app/settings/properties",
        html! {
            h1 { "Properties of " (ot.label_plural.to_lowercase()) }
            (top)
            form.toolbar method="get" action="/app/settings/properties" {
                label for="type" { "Object" }
                select #type name="type" {
                    @for t in &types { option value=(t.name) selected[t.name == ot.name] { (t.label_plural) } }
                }
                button.secondary type="submit" { "Show" }
            }
            table {
                thead { tr {
                    th scope="col" { "Label" } th scope="col" { "Internal name" } th scope="col" { "Type" }
                    th scope="col" { "Group" } th scope="col" { "Sensitive" } th scope="col" { "Defined by" }
                } }
                tbody {
                    @for d in &defs {
                        tr id=(format!("property-{}", d.name)) {
                            td { a href=(format!("/app/settings/properties/{}/{}", ot.name, d.name)) { (d.label) } }
                            td { code { (d.name) } }
                            td { (d.kind.as_str()) " · " (d.field_type) }
                            td { (group_label(&d.group_name)) }
                            td { (sensitivity_cell(d)) }
                            td { @if d.hubspot_defined { "kontor" } @else { "This account" } }
                        }
                    }
                }
            }
            section.card aria-labelledby="create-property" {
                h2 #create-property { "Create a property" }
                form method="post" action="/app/settings/properties" {
                    (csrf(c))
                    input type="hidden" name="type" value=(ot.name);
                    (input("label", "Label", "text", &form.label, None, true, errors))
                    (input("name", "Internal name", "text", &form.name, Some("Lower-case letters, digits and underscores, used by the API. Leave empty to make it from the label."), false, errors))
                    (select("kind", "Type", &kinds, &form.kind, errors))
                    (select("group", "Group", &groups, &form.group, errors))
                    (textarea("description", "Description", &form.description, None, errors))
                    (textarea("options", "Options", &form.options, Some("For dropdown selects: one option per line. Write “Label | value” to store a value different from the label."), errors))
                    (sensitive_checkbox(form.sensitive.is_some(), errors))
                    p { button type="submit" { "Create property" } }
                }
            }
        },
    ))
}

pub async fn properties(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let ot = object_type(&c, q.first("type").unwrap_or("contacts")).await?;
    properties_view(
        &c,
        &ot,
        &PropertyForm::default(),
        &Errors::default(),
        notice(&q),
    )
    .await
}

pub async fn create_property(
    c: Console,
    Form(f): Form<PropertyForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let ot = object_type(&c, &f.object_type).await?;
    let mut errors = Errors::default();
    let mut status = StatusCode::BAD_REQUEST;
    let label = f.label.trim();
    if label.is_empty() {
        errors.add("label", "Enter a label.");
    } else {
        let name = match f.name.trim() {
            "" => internal_name(label),
            n => n.to_string(),
        };
        let kind = PropertyType::parse(&f.kind);
        let input = PropertyInput {
            name: Some(name),
            label: Some(label.to_string()),
            kind: Some(f.kind.clone()),
            group_name: Some(f.group.clone()),
            description: Some(f.description.trim().to_string()),
            options: (kind == Some(PropertyType::Enumeration))
                .then(|| parse_options(&f.options, &[])),
            sensitive: Some(f.sensitive.is_some()),
            ..PropertyInput::default()
        };
        match c.store.create_property(c.id(), &ot.type_id, input).await {
            Ok(def) => {
                log_action(
                    &c,
                    "property.create",
                    &format!("property:{}/{}", ot.name, def.name),
                    json!({"label": def.label, "type": def.kind.as_str(), "sensitivity": def.sensitivity.as_str()}),
                )
                .await?;
                return Ok(Redirect::to(&format!(
                    "/app/settings/properties?type={}&done=created",
                    ot.name
                ))
                .into_response());
            }
            Err(e) => status = place_error(e, &PROPERTY_FIELDS, "name", &mut errors)?,
        }
    }
    Ok(reply(
        status,
        properties_view(&c, &ot, &f, &errors, html! {}).await?,
    ))
}

/// A live property of an object type of this account, or the not-found page.
async fn property(
    c: &Console,
    object_type_name: &str,
    name: &str,
) -> Result<(ObjectType, PropertyDef), PageError> {
    let ot = object_type(c, object_type_name).await?;
    let def = c
        .store
        .property(c.id(), &ot.type_id, name)
        .await?
        .filter(|d| !d.archived)
        .ok_or_else(PageError::not_found)?;
    Ok((ot, def))
}

async fn property_view(
    c: &Console,
    ot: &ObjectType,
    def: &PropertyDef,
    form: &PropertyForm,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let groups = group_choices(c, ot).await?;
    let action = format!("/app/settings/properties/{}/{}", ot.name, def.name);
    Ok(c.page(
        &def.label,
        "/app/settings/properties",
        html! {
            p { a href=(format!("/app/settings/properties?type={}", ot.name)) { "← Properties of " (ot.label_plural.to_lowercase()) } }
            h1 { (def.label) }
            (top)
            section.card aria-labelledby="about" {
                h2 #about { "About this property" }
                dl.props {
                    dt { "Internal name" } dd { code { (def.name) } }
                    dt { "Object" } dd { (ot.label_plural) }
                    dt { "Type" } dd { (def.kind.as_str()) " · " (def.field_type) }
                    dt { "Sensitivity" } dd { (sensitivity_cell(def)) }
                    dt { "Defined by" } dd { @if def.hubspot_defined { "kontor" } @else { "This account" } }
                    dt { "Created" } dd { (when(def.created_at)) }
                }
            }
            @if def.read_only_value {
                div.card { p { "kontor maintains this property's values; its definition cannot be changed." } }
            } @else {
                section.card aria-labelledby="edit" {
                    h2 #edit { "Edit" }
                    form method="post" action=(action) {
                        (csrf(c))
                        (input("label", "Label", "text", &form.label, None, true, errors))
                        (select("group", "Group", &groups, &form.group, errors))
                        (textarea("description", "Description", &form.description, None, errors))
                        @if def.kind == PropertyType::Enumeration {
                            (textarea("options", "Options", &form.options, Some("One option per line. Write “Label | value” to store a value different from the label."), errors))
                        }
                        (sensitive_checkbox(form.sensitive.is_some(), errors))
                        p { button type="submit" { "Save changes" } }
                    }
                }
            }
            @if !def.hubspot_defined {
                section.card aria-labelledby="archive" {
                    h2 #archive { "Archive" }
                    p #archive-hint { "Archived properties are no longer listed or shown on records." }
                    form method="post" action=(format!("{action}/archive")) {
                        (csrf(c))
                        button.danger type="submit" aria-describedby="archive-hint" { "Archive property" }
                    }
                }
            }
        },
    ))
}

pub async fn property_page(
    c: Console,
    Path((object_type_name, name)): Path<(String, String)>,
    q: QueryParams,
) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let (ot, def) = property(&c, &object_type_name, &name).await?;
    property_view(
        &c,
        &ot,
        &def,
        &PropertyForm::of(&def),
        &Errors::default(),
        notice(&q),
    )
    .await
}

/// What an update changed, as `{field: {from, to}}`.
fn property_changes(old: &PropertyDef, new: &PropertyDef) -> Map<String, Value> {
    let options = |d: &PropertyDef| {
        json!(d
            .options
            .iter()
            .map(|o| [&o.label, &o.value])
            .collect::<Vec<_>>())
    };
    let pairs = [
        ("label", json!(old.label), json!(new.label)),
        ("group", json!(old.group_name), json!(new.group_name)),
        (
            "description",
            json!(old.description),
            json!(new.description),
        ),
        ("options", options(old), options(new)),
        (
            "sensitivity",
            json!(old.sensitivity.as_str()),
            json!(new.sensitivity.as_str()),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, from, to)| from != to)
        .map(|(field, from, to)| (field.to_string(), json!({"from": from, "to": to})))
        .collect()
}

pub async fn update_property(
    c: Console,
    Path((object_type_name, name)): Path<(String, String)>,
    Form(f): Form<PropertyForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let (ot, def) = property(&c, &object_type_name, &name).await?;
    if def.read_only_value {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Read-only property",
            "kontor maintains this property's values; its definition cannot be changed.",
        ));
    }
    let checked = f.sensitive.is_some();
    let input = PropertyInput {
        label: Some(f.label.trim().to_string()),
        group_name: Some(f.group.clone()),
        description: Some(f.description.trim().to_string()),
        options: (def.kind == PropertyType::Enumeration)
            .then(|| parse_options(&f.options, &def.options)),
        // A ticked box keeps a "highly sensitive" level rather than lowering it to "sensitive".
        sensitive: (checked != def.sensitivity.is_sensitive()).then_some(checked),
        ..PropertyInput::default()
    };
    match c
        .store
        .update_property(c.id(), &ot.type_id, &def.name, input)
        .await
    {
        Ok(new) => {
            let changes = property_changes(&def, &new);
            let done = if changes.is_empty() {
                "unchanged"
            } else {
                log_action(
                    &c,
                    "property.update",
                    &format!("property:{}/{}", ot.name, def.name),
                    Value::Object(changes),
                )
                .await?;
                "saved"
            };
            Ok(Redirect::to(&format!(
                "/app/settings/properties/{}/{}?done={done}",
                ot.name, def.name
            ))
            .into_response())
        }
        Err(e) => {
            let mut errors = Errors::default();
            let status = place_error(e, &PROPERTY_FIELDS, "label", &mut errors)?;
            Ok(reply(
                status,
                property_view(&c, &ot, &def, &f, &errors, html! {}).await?,
            ))
        }
    }
}

pub async fn archive_property(
    c: Console,
    Path((object_type_name, name)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let (ot, def) = property(&c, &object_type_name, &name).await?;
    if def.hubspot_defined {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Built-in property",
            "Built-in properties cannot be archived.",
        ));
    }
    c.store
        .archive_property(c.id(), &ot.type_id, &def.name)
        .await?;
    log_action(
        &c,
        "property.archive",
        &format!("property:{}/{}", ot.name, def.name),
        json!({"label": def.label}),
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/app/settings/properties?type={}&done=archived",
        ot.name
    )))
}

// ---- custom objects ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ObjectForm {
    name: String,
    singular: String,
    plural: String,
    primary_name: String,
    primary_label: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

async fn objects_view(
    c: &Console,
    form: &ObjectForm,
    errors: &Errors,
    top: Markup,
) -> Result<Markup, PageError> {
    let schemas = c.store.custom_schemas(c.id(), false).await?;
    Ok(c.page(
        "Custom objects",
        "/app/settings/objects",
        html! {
            h1 { "Custom objects" }
            (top)
            table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Singular" } th scope="col" { "Plural" }
                    th scope="col" { "Display property" } th scope="col" { "Object type id" } th scope="col" { "Created" }
                } }
                tbody {
                    @for s in &schemas {
                        tr {
                            td { a href=(format!("/app/objects/{}", s.name)) { (s.name) } }
                            td { (s.label_singular) }
                            td { (s.label_plural) }
                            td { code { (s.primary_display_property.as_deref().unwrap_or("—")) } }
                            td { code { (s.object_type_id) } }
                            td { (when(s.created_at)) }
                        }
                    }
                }
            }
            @if schemas.is_empty() { p.muted { "No custom objects yet." } }
            section.card aria-labelledby="create-object" {
                h2 #create-object { "Create a custom object" }
                form method="post" action="/app/settings/objects" {
                    (csrf(c))
                    (input("name", "Name", "text", &form.name, Some("Used by the API and in addresses: letters, digits and underscores, starting with a letter."), true, errors))
                    (input("singular", "Label, singular", "text", &form.singular, Some("For example “Car”."), true, errors))
                    (input("plural", "Label, plural", "text", &form.plural, Some("For example “Cars”."), true, errors))
                    (input("primary_name", "Display property, internal name", "text", &form.primary_name, Some("The text property that names each record, such as car_name: lower-case letters, digits and underscores."), true, errors))
                    (input("primary_label", "Display property, label", "text", &form.primary_label, Some("For example “Car name”."), true, errors))
                    p { button type="submit" { "Create object" } }
                }
            }
        },
    ))
}

pub async fn objects(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    objects_view(&c, &ObjectForm::default(), &Errors::default(), notice(&q)).await
}

pub async fn create_object(c: Console, Form(f): Form<ObjectForm>) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let mut errors = Errors::default();
    let mut status = StatusCode::BAD_REQUEST;
    for (id, value, message) in [
        ("name", &f.name, "Enter a name."),
        ("singular", &f.singular, "Enter the singular label."),
        ("plural", &f.plural, "Enter the plural label."),
        (
            "primary_name",
            &f.primary_name,
            "Enter the display property's internal name.",
        ),
        (
            "primary_label",
            &f.primary_label,
            "Enter the display property's label.",
        ),
    ] {
        if value.trim().is_empty() {
            errors.add(id, message);
        }
    }
    if errors.is_empty() {
        let primary = f.primary_name.trim();
        let input: SchemaInput = serde_json::from_value(json!({
            "name": f.name.trim(),
            "labels": {"singular": f.singular.trim(), "plural": f.plural.trim()},
            "primaryDisplayProperty": primary,
            "requiredProperties": [primary],
            "searchableProperties": [primary],
            "properties": [{"name": primary, "label": f.primary_label.trim(), "type": "string", "fieldType": "text"}],
        }))
        .map_err(StoreError::from)?;
        let fields = [
            ("name", "name"),
            ("labels.singular", "singular"),
            ("labels.plural", "plural"),
            ("labels", "singular"),
            ("properties[0].label", "primary_label"),
            ("properties[0]", "primary_name"),
            ("primaryDisplayProperty", "primary_name"),
            ("requiredProperties", "primary_name"),
            ("searchableProperties", "primary_name"),
        ];
        match c.store.create_schema(c.id(), input).await {
            Ok(s) => {
                log_action(
                    &c,
                    "schema.create",
                    &s.object_type_id,
                    json!({"name": s.name, "labels": {"singular": s.label_singular, "plural": s.label_plural}, "primaryDisplayProperty": primary}),
                )
                .await?;
                return Ok(Redirect::to("/app/settings/objects?done=object").into_response());
            }
            Err(e) => status = place_error(e, &fields, "name", &mut errors)?,
        }
    }
    Ok(reply(
        status,
        objects_view(&c, &f, &errors, html! {}).await?,
    ))
}

// ---- account ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountForm {
    name: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

fn account_view(c: &Console, name: &str, errors: &Errors, top: Markup) -> Markup {
    let a = &c.account;
    let region = match a.region {
        Region::Us => "United States (US)",
        Region::Eu => "European Union (EU)",
    };
    let tier = a.tier.as_str();
    c.page(
        "Account defaults",
        "/app/settings/account",
        html! {
            h1 { "Account defaults" }
            (top)
            section.card aria-labelledby="account-name" {
                h2 #account-name { "Account name" }
                @if c.role() == Role::SuperAdmin {
                    form method="post" action="/app/settings/account" {
                        (csrf(c))
                        (input("name", "Name", "text", name, Some("Shown at the top of every page of the console."), true, errors))
                        p { button type="submit" { "Save name" } }
                    }
                } @else {
                    p { (a.name) }
                    p.muted { "Only a super admin can rename the account." }
                }
            }
            section.card aria-labelledby="plan" {
                h2 #plan { "Subscription and hosting" }
                dl.props {
                    dt { "Account ID" } dd { (a.id) }
                    dt { "Subscription tier" } dd #tier { (tier[..1].to_uppercase()) (tier[1..]) }
                    dt { "Data-hosting region" } dd #region { (region) }
                    dt { "Created" } dd { (when(a.created_at)) }
                }
                p.muted { "The tier and the region are set by the operator of this kontor installation and cannot be changed here." }
            }
        },
    )
}

pub async fn account(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    Ok(account_view(
        &c,
        &c.account.name,
        &Errors::default(),
        notice(&q),
    ))
}

pub async fn update_account(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<AccountForm>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(&f.csrf)?;
    let name = f.name.trim();
    if name == c.account.name {
        return Ok(Redirect::to("/app/settings/account?done=unchanged").into_response());
    }
    if let Err(e) = state.dir.rename_account(c.id(), name).await {
        let mut errors = Errors::default();
        let status = place_error(e, &[], "name", &mut errors)?;
        return Ok(reply(status, account_view(&c, &f.name, &errors, html! {})));
    }
    log_action(
        &c,
        "account.rename",
        &format!("account:{}", c.id()),
        json!({"from": c.account.name, "to": name}),
    )
    .await?;
    Ok(Redirect::to("/app/settings/account?done=renamed").into_response())
}

// ---- audit log ----

/// A `YYYY-MM-DD` filter as the epoch milliseconds of that day's start (UTC).
fn day_start(q: &QueryParams, key: &str, errors: &mut Errors) -> Option<i64> {
    let value = q.first(key).unwrap_or("").trim();
    if value.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) => Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis()),
        Err(_) => {
            errors.add(key, "Enter a date as YYYY-MM-DD.");
            None
        }
    }
}

pub async fn audit(c: Console, q: QueryParams) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let users = c.store.users(c.id()).await?;
    let mut errors = Errors::default();
    let user_param = q.first("user").unwrap_or("").trim();
    let user = match user_param {
        "" => None,
        v => match v.parse::<i64>() {
            Ok(id) if users.iter().any(|u| u.id == id) => Some(id),
            Ok(_) => return Err(PageError::not_found()),
            Err(_) => {
                errors.add("user", "Choose a user from the list.");
                None
            }
        },
    };
    let action = q.first("action").unwrap_or("").trim();
    let from = day_start(&q, "from", &mut errors);
    // The end date is inclusive: entries before the start of the next day.
    let to = day_start(&q, "to", &mut errors).map(|t| t + DAY_MS);
    if matches!((from, to), (Some(f), Some(t)) if f >= t) {
        errors.add("to", "The end date is before the start date.");
    }
    let entries = if errors.is_empty() {
        let action = (!action.is_empty()).then_some(action);
        c.store
            .audit_log(c.id(), user, action, from, to, AUDIT_LIMIT)
            .await?
    } else {
        Vec::new()
    };
    let mut user_choices = vec![(String::new(), "Anyone".to_string())];
    user_choices.extend(users.iter().map(|u| (u.id.to_string(), u.email.clone())));
    let actor = |e: &kontor_store::AuditEntry| {
        let email = e
            .actor_user_id
            .and_then(|id| users.iter().find(|u| u.id == id))
            .map(|u| u.email.clone());
        match email {
            Some(email) if email != e.actor => {
                html! { (email) " " span.muted { "(" (e.actor) ")" } }
            }
            Some(email) => html! { (email) },
            None => html! { (e.actor) },
        }
    };
    let page = c.page(
        "Audit log",
        "/app/settings/audit",
        html! {
            h1 { "Audit log" }
            form.card method="get" action="/app/settings/audit" aria-label="Filter the audit log" {
                div style="display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:0 16px" {
                    div { (select("user", "User", &user_choices, user_param, &errors)) }
                    div { (input("action", "Action starts with", "text", action, Some("For example user. or token.create"), false, &errors)) }
                    div { (input("from", "From (UTC)", "date", q.first("from").unwrap_or(""), None, false, &errors)) }
                    div { (input("to", "To, inclusive (UTC)", "date", q.first("to").unwrap_or(""), None, false, &errors)) }
                }
                p { button type="submit" { "Filter" } " " a.button.secondary href="/app/settings/audit" { "Clear" } }
            }
            @if errors.is_empty() {
                p.muted role="status" {
                    (entries.len()) " entries"
                    @if entries.len() == AUDIT_LIMIT { ", the newest " (AUDIT_LIMIT) " shown. Narrow the filters to see older ones" }
                    "."
                }
                table {
                    thead { tr {
                        th scope="col" { "Time (UTC)" } th scope="col" { "User" } th scope="col" { "Action" }
                        th scope="col" { "Target" } th scope="col" { "Details" }
                    } }
                    tbody {
                        @for e in &entries {
                            tr {
                                td { time datetime=(iso(e.at)) { (iso(e.at)) } }
                                td { (actor(e)) }
                                td { code { (e.action) } }
                                td { (e.target) }
                                td { @if e.details == "{}" { span.muted { "—" } } @else { code { (e.details) } } }
                            }
                        }
                    }
                }
            }
        },
    );
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(reply(status, page))
}
