//! Browsing records: a list per object type (paging, sorting, search) and a record page
//! (properties by group, associations, history from the change log).

use super::{Console, PageError};
use crate::params::QueryParams;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use kontor_domain::search::SearchRequest;
use kontor_domain::time::iso;
use kontor_store::ObjectType;
use maud::{html, Markup};
use serde_json::json;
use std::collections::BTreeMap;

const PAGE: usize = 25;

async fn object_type(c: &Console, name: &str) -> Result<ObjectType, PageError> {
    c.store
        .object_type(c.id(), name)
        .await?
        .ok_or_else(PageError::not_found)
}

/// Columns of the list: the type's default properties, or a custom object's display ones.
fn columns(ot: &ObjectType) -> Vec<String> {
    let mut cols: Vec<String> = if ot.default_properties.is_empty() {
        ot.primary_display
            .iter()
            .cloned()
            .chain(ot.searchable.iter().cloned())
            .collect()
    } else {
        ot.default_properties.clone()
    };
    cols.dedup();
    cols.truncate(5);
    cols.push(ot.create_date.clone());
    cols
}

pub async fn list(
    c: Console,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Markup, PageError> {
    let ot = object_type(&c, &name).await?;
    let defs = c.store.properties(c.id(), &ot.type_id, false).await?;
    let label = |n: &str| {
        defs.iter()
            .find(|d| d.name == n)
            .map_or(n.to_string(), |d| d.label.clone())
    };
    let query = q.first("q").unwrap_or("").trim().to_string();
    let sort = q
        .first("sort")
        .filter(|s| defs.iter().any(|d| d.name == s.trim_start_matches('-')))
        .unwrap_or("hs_object_id")
        .to_string();
    let offset: usize = q
        .first("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0)
        .min(kontor_domain::search::MAX_RESULTS - PAGE);
    let req = SearchRequest::parse(
        &json!({"query": query, "sorts": [sort], "limit": PAGE, "after": offset}),
    )
    .map_err(|e| {
        PageError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "Bad request",
            e.to_string(),
        )
    })?;
    let (total, records) = c.store.search(c.id(), &ot, &req).await?;
    let cols = columns(&ot);
    let link = |offset: usize, sort: &str| {
        format!(
            "/app/objects/{}?q={}&sort={}&offset={offset}",
            ot.name,
            urlencode(&query),
            urlencode(sort)
        )
    };
    let current = format!("/app/objects/{}", ot.name);
    Ok(c.page(
        &ot.label_plural,
        &current,
        html! {
            h1 { (ot.label_plural) }
            @if let Some(id) = q.first("deleted") {
                p.flash role="status" { (ot.label_singular) " " (id) " was moved to the recycle bin. " a href=(format!("/app/recycle-bin?type={}", ot.name)) { "Open the recycle bin" } }
            }
            div.toolbar {
                a.button href=(format!("/app/objects/{}/new", ot.name)) { "Create " (ot.label_singular.to_lowercase()) }
                @if crate::pipelines::has_pipelines(&ot) {
                    a.button.secondary href=(format!("/app/objects/{}/board", ot.name)) { "Board" }
                }
                form method="get" action=(current) role="search" {
                    label.visually-hidden for="q" { "Search " (ot.label_plural) }
                    input #q type="search" name="q" value=(query) placeholder=(format!("Search {}", ot.label_plural.to_lowercase()));
                    input type="hidden" name="sort" value=(sort);
                    button.secondary type="submit" { "Search" }
                }
                span.muted { (total) (if total == 1 { " record" } else { " records" }) }
            }
            table {
                thead { tr {
                    th { a href=(link(0, if sort == "hs_object_id" { "-hs_object_id" } else { "hs_object_id" })) { "ID" } }
                    @for col in &cols {
                        @let next = if sort == *col { format!("-{col}") } else { col.clone() };
                        th aria-sort=[if sort == *col { Some("ascending") } else if sort == format!("-{col}") { Some("descending") } else { None }] {
                            a href=(link(0, &next)) { (label(col)) }
                        }
                    }
                } }
                tbody {
                    @for r in &records {
                        tr {
                            td { a href=(format!("/app/objects/{}/{}", ot.name, r.id)) { (r.id) } }
                            @for col in &cols { td { (r.props.get(col).map(String::as_str).unwrap_or("")) } }
                        }
                    }
                }
            }
            @if records.is_empty() { p.muted { "No records match." } }
            div.pager {
                @if offset > 0 { a.button.secondary href=(link(offset.saturating_sub(PAGE), &sort)) rel="prev" { "Previous" } }
                span.muted { "Showing " (if total == 0 { 0 } else { offset + 1 }) "–" (offset + records.len()) " of " (total) }
                @if offset + PAGE < total { a.button.secondary href=(link(offset + PAGE, &sort)) rel="next" { "Next" } }
            }
        },
    ))
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn view(
    c: Console,
    Path((name, id)): Path<(String, String)>,
    q: QueryParams,
) -> Result<Response, PageError> {
    let ot = object_type(&c, &name).await?;
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    let Some(r) = c.store.record(c.id(), &ot, id, false).await? else {
        // A record merged into another: its page is the other's.
        return match c.store.merged_into(c.id(), &ot, &[id]).await?.get(&id) {
            Some(primary) => {
                Ok(Redirect::to(&format!("/app/objects/{}/{primary}", ot.name)).into_response())
            }
            None => Err(PageError::not_found()),
        };
    };
    let defs = c.store.properties(c.id(), &ot.type_id, false).await?;
    let groups = c.store.property_groups(c.id(), &ot.type_id).await?;
    let mut by_group: BTreeMap<String, Vec<&kontor_domain::PropertyDef>> = BTreeMap::new();
    for d in &defs {
        by_group.entry(d.group_name.clone()).or_default().push(d);
    }
    let names: Vec<String> = defs.iter().map(|d| d.name.clone()).collect();
    let history = c
        .store
        .history(c.id(), &[id], &names)
        .await?
        .remove(&id)
        .unwrap_or_default();
    let mut changes: Vec<(i64, String, Option<String>, String)> = history
        .iter()
        .flat_map(|(p, es)| {
            es.iter()
                .map(move |e| (e.timestamp, p.clone(), e.value.clone(), e.source.clone()))
        })
        .collect();
    changes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut assoc = Vec::new();
    for other in c.store.object_types(c.id()).await? {
        let (found, _) = c
            .store
            .associated(c.id(), &ot, id, &other, None, 50)
            .await?;
        if !found.is_empty() {
            assoc.push((other, found));
        }
    }
    let name = [r.props.get("firstname"), r.props.get("lastname")]
        .into_iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let title = (ot.name == "contacts" && !name.is_empty())
        .then_some(name)
        .or_else(|| {
            ot.primary_display
                .as_ref()
                .or(ot.default_properties.first())
                .and_then(|p| r.props.get(p))
                .cloned()
        })
        .unwrap_or_else(|| format!("{} {id}", ot.label_singular));
    Ok(c.page(
        &title,
        &format!("/app/objects/{}", ot.name),
        html! {
            p { a href=(format!("/app/objects/{}", ot.name)) { "← " (ot.label_plural) } }
            h1 { (title) }
            div.toolbar {
                a.button href=(format!("/app/objects/{}/{}/edit", ot.name, r.id)) { "Edit" }
                form method="post" action=(format!("/app/objects/{}/{}/delete", ot.name, r.id)) {
                    input type="hidden" name="_csrf" value=(c.session.csrf);
                    button.danger type="submit" { "Delete" }
                }
            }
            @if let Some(other) = q.first("merged") {
                p.flash role="status" { (ot.label_singular) " " (other) " was merged into this one." }
            }
            @if kontor_domain::object_type::MERGEABLE.contains(&ot.name.as_str()) {
                details.card {
                    summary { "Merge another " (ot.label_singular.to_lowercase()) " into this one" }
                    p.muted { "This record keeps its ID and values; the other's values fill the properties this one has none for, its associations move here, and its ID leads here afterwards. A merge cannot be undone." }
                    form method="post" action=(format!("/app/objects/{}/{}/merge", ot.name, r.id)) {
                        input type="hidden" name="_csrf" value=(c.session.csrf);
                        label { "Record ID to merge " input name="other" inputmode="numeric" required; }
                        " "
                        button.danger type="submit" { "Merge" }
                    }
                }
            }
            @for g in &groups {
                @if let Some(props) = by_group.get(&g.name) {
                    section.card aria-labelledby=(format!("group-{}", g.name)) {
                        h2 #(format!("group-{}", g.name)) { (g.label) }
                        dl.props {
                            @for d in props {
                                dt { (d.label) @if d.sensitivity.is_sensitive() { " " span.muted title="Sensitive data" { "(sensitive)" } } }
                                dd data-property=(d.name) { (shown(d, r.props.get(&d.name))) }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="associations" {
                h2 #associations { "Associations" }
                @if assoc.is_empty() { p.muted { "None." } }
                @for (other, found) in &assoc {
                    h3 { (other.label_plural) }
                    ul { @for a in found {
                        li {
                            a href=(format!("/app/objects/{}/{}", other.name, a.to_id)) { (other.label_singular) " " (a.to_id) }
                            @let labels: Vec<&str> = a.types.iter().filter_map(|t| t.label.as_deref()).collect();
                            @if !labels.is_empty() { " · " (labels.join(", ")) }
                        }
                    } }
                }
            }
            section.card aria-labelledby="history" {
                h2 #history { "History" }
                table {
                    thead { tr { th { "When" } th { "Property" } th { "Value" } th { "Source" } } }
                    tbody { @for (at, p, v, src) in changes.iter().take(200) {
                        tr { td { (iso(*at)) } td { (p) } td { (v.as_deref().unwrap_or("(cleared)")) } td { (src) } }
                    } }
                }
            }
        },
    )
    .into_response())
}

/// A stored value as people read it: option labels rather than internal values.
fn shown(d: &kontor_domain::PropertyDef, v: Option<&String>) -> String {
    let Some(v) = v else { return "—".into() };
    if d.options.is_empty() {
        return v.clone();
    }
    v.split(';')
        .map(|part| {
            d.options
                .iter()
                .find(|o| o.value == part)
                .map_or(part, |o| o.label.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}
