use super::*;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use kontor_domain::time::iso;
use kontor_domain::Role;
use maud::html;

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
                div.filter-grid {
                    div { (select("user", "User", &user_choices, user_param, &errors)) }
                    div { (input("action", "Action starts with", "text", action, Some("For example user. or token.create"), false, &errors)) }
                    div { (input("from", "From (UTC)", "date", q.first("from").unwrap_or(""), None, false, &errors)) }
                    div { (input("to", "To, inclusive (UTC)", "date", q.first("to").unwrap_or(""), None, false, &errors)) }
                }
                p { button type="submit" { "Filter" } " " a.button.secondary href="/app/settings/audit" { "Clear" } }
            }
            @if errors.is_empty() {
                p.muted role="status" {
                    (entries.len()) (if entries.len() == 1 { " entry" } else { " entries" })
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
                                td { (details(&e.details)) }
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

/// An entry's details: its `message` as text, any other fields as compact JSON.
fn details(stored: &str) -> Markup {
    let mut v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(stored).unwrap_or_default();
    let message = v
        .remove("message")
        .and_then(|m| m.as_str().map(str::to_string));
    let rest = (!v.is_empty()).then(|| serde_json::Value::Object(v).to_string());
    html! {
        @if let Some(m) = &message { (m) }
        @if let Some(rest) = &rest {
            @if message.is_some() { " " }
            code { (rest) }
        }
        @if message.is_none() && rest.is_none() { span.muted { "—" } }
    }
}
