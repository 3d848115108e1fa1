//! The recycle bin: archived records per object type, restored with the same id and values
//! or deleted for good. Records older than the retention period are purged by a background
//! task (`purge_expired_records`).

use super::{Console, PageError};
use crate::params::QueryParams;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::time::iso;
use kontor_domain::{ChangeSource, Role};
use kontor_store::{Actor, StoreError, RECYCLE_BIN_DAYS};
use maud::html;

const PAGE: usize = 50;

pub async fn page(c: Console, q: QueryParams) -> Result<Response, PageError> {
    let types = c.store.object_types(c.id()).await?;
    let name = q.first("type").unwrap_or("contacts");
    let ot = types
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(PageError::not_found)?;
    let offset: usize = q.first("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let (total, records) = c.store.recycle_bin(c.id(), ot, offset, PAGE).await?;
    let label_prop = ot
        .primary_display
        .clone()
        .or_else(|| ot.default_properties.first().cloned());
    let message = q.first("done");
    let error = q.first("error");
    let body = html! {
        h1 { "Recycle bin" }
        p.muted { "Deleted records stay here for " (RECYCLE_BIN_DAYS) " days, then they are deleted for good." }
        @if let Some(m) = message { p.flash role="status" { (m) } }
        @if let Some(e) = error { p.flash.warn role="alert" { (e) } }
        form.toolbar method="get" action="/app/recycle-bin" {
            label for="type" { "Object" }
            select #type name="type" {
                @for t in &types { option value=(t.name) selected[t.name == ot.name] { (t.label_plural) } }
            }
            button.secondary type="submit" { "Show" }
        }
        form method="post" action="/app/recycle-bin" {
            input type="hidden" name="_csrf" value=(c.session.csrf);
            input type="hidden" name="type" value=(ot.name);
            table {
                thead { tr { th { span.visually-hidden { "Select" } } th { "ID" } th { "Name" } th { "Deleted" } } }
                tbody {
                    @for r in &records {
                        tr {
                            td { input type="checkbox" name="id" value=(r.id) id=(format!("pick-{}", r.id)) aria-label=(format!("Select {} {}", ot.label_singular, r.id)); }
                            td { label for=(format!("pick-{}", r.id)) { (r.id) } }
                            td { (label_prop.as_ref().and_then(|p| r.props.get(p)).map(String::as_str).unwrap_or("")) }
                            td { (r.archived_at.map(iso).unwrap_or_default()) }
                        }
                    }
                }
            }
            @if records.is_empty() { p.muted { "No deleted " (ot.label_plural.to_lowercase()) "." } }
            @else {
                p {
                    button type="submit" name="action" value="restore" { "Restore" } " "
                    @if c.role() != Role::User { button.danger type="submit" name="action" value="purge" { "Delete permanently" } }
                }
                p.muted { (total) " deleted " (noun(ot, total as usize)) }
            }
        }
    };
    Ok(c.page("Recycle bin", "/app/recycle-bin", body)
        .into_response())
}

pub async fn act(
    c: Console,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    c.check_csrf(get("_csrf"))?;
    let types = c.store.object_types(c.id()).await?;
    let ot = types
        .iter()
        .find(|t| t.name == get("type"))
        .ok_or_else(PageError::not_found)?;
    let ids: Vec<i64> = form
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let back = |key: &str, msg: &str| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("type", &ot.name)
            .append_pair(key, msg)
            .finish();
        Redirect::to(&format!("/app/recycle-bin?{q}")).into_response()
    };
    if ids.is_empty() {
        return Ok(back("error", "Select at least one record."));
    }
    let actor = Actor {
        source: ChangeSource::Ui,
        source_id: Some(c.session.user.email.clone()),
        user_id: Some(c.session.user.id),
    };
    let user = &c.session.user;
    match get("action") {
        "restore" => match c.store.restore_records(c.id(), ot, &ids, &actor).await {
            Ok(done) => {
                let list = done
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                c.store
                    .audit(
                        c.id(),
                        Some(user.id),
                        &user.email,
                        "record.restore",
                        &format!("{}:{list}", ot.type_id),
                        serde_json::json!({}),
                    )
                    .await?;
                Ok(back(
                    "done",
                    &format!(
                        "Restored {} {}.",
                        done.len(),
                        ot.label_plural.to_lowercase()
                    ),
                ))
            }
            Err(StoreError::Conflict { message, .. }) => Ok(back("error", &message)),
            Err(e) => Err(e.into()),
        },
        "purge" => {
            // Permanent deletion cannot be undone: admins only, and always audited.
            c.require(Role::Admin)?;
            let done = c.store.purge_records(c.id(), ot, &ids, &actor).await?;
            let list = done
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            c.store
                .audit(
                    c.id(),
                    Some(user.id),
                    &user.email,
                    "record.purge",
                    &format!("{}:{list}", ot.type_id),
                    serde_json::json!({}),
                )
                .await?;
            Ok(back(
                "done",
                &format!(
                    "Deleted {} {} permanently.",
                    done.len(),
                    ot.label_plural.to_lowercase()
                ),
            ))
        }
        _ => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "Unknown action.",
        )),
    }
}

fn noun(ot: &kontor_store::ObjectType, n: usize) -> String {
    if n == 1 {
        ot.label_singular.to_lowercase()
    } else {
        ot.label_plural.to_lowercase()
    }
}
