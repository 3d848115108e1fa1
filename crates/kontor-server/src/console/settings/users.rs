use super::*;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::Role;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

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
    let two_factor = c.store.users_with_second_factor(c.id()).await?;
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
                                            label.visually-hidden for=(select_id) { "Role of " (u.email) }
                                            select id=(select_id) name="role" aria-describedby=[err.map(|_| &err_id)] {
                                                @for (value, text) in &roles {
                                                    option value=(value) selected[value == u.role.as_str()] { (text) }
                                                }
                                            }
                                            button.secondary type="submit" { "Change role" }
                                        }
                                        @if u.active {
                                            form method="post" action=(action) {
                                                (csrf(c))
                                                input type="hidden" name="action" value="reset_password";
                                                button.secondary type="submit" aria-label=(format!("Reset the password of {}", u.email)) { "Reset password" }
                                            }
                                            @if two_factor.contains(&u.id) {
                                                form method="post" action=(action) {
                                                    (csrf(c))
                                                    input type="hidden" name="action" value="reset_2fa";
                                                    button.secondary type="submit" aria-label=(format!("Reset two-factor authentication of {}", u.email)) { "Reset two-factor" }
                                                }
                                            }
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
    State(state): State<AppState>,
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
        ("reset_password", _) if target.active => {
            // The old password stops working now (it may be what leaked); the user sets a
            // new one through the e-mailed link.
            c.store.lock_password(c.id(), target.id).await?;
            let token = c.store.create_password_reset(c.id(), target.id).await?;
            log_action(
                &c,
                "user.password_reset_by_admin",
                &target_ref,
                json!({"email": target.email, "message": "Password reset by an admin; sessions ended; a link to set a new one e-mailed"}),
            )
            .await?;
            crate::console::account::mail_user(
                &state,
                &target.email,
                format!("Your kontor password for {} was reset", c.account.name),
                crate::console::forgot::reset_mail(
                    &state,
                    &c.account.name,
                    &target.email,
                    &token,
                    Some(&c.session.user.email),
                ),
            );
            "password-reset"
        }
        ("reset_2fa", _) => {
            if !c.store.remove_second_factor(c.id(), target.id).await? {
                return Ok(Redirect::to("/app/settings/users?done=unchanged").into_response());
            }
            c.store.end_sessions(c.id(), target.id).await?;
            log_action(
                &c,
                "user.2fa_reset_by_admin",
                &target_ref,
                json!({"email": target.email, "message": "Two-factor authentication reset by an admin; sessions ended"}),
            )
            .await?;
            crate::console::account::mail_user(
                &state,
                &target.email,
                format!("Two-factor authentication was reset for your kontor user in {}", c.account.name),
                format!(
                    "Hello,\n\n{}, an admin of {}, reset the two-factor authentication of your kontor user ({}), and your sessions were ended. You now sign in with your password alone; set two-factor authentication up again under Account > Sign-in & security.\n\nIf you did not ask for this, tell an admin of {} now.\n\n-- kontor\n",
                    c.session.user.email, c.account.name, target.email, c.account.name,
                ),
            );
            "2fa-reset"
        }
        ("role" | "deactivate" | "reactivate" | "reset_password", _) => "unchanged",
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
