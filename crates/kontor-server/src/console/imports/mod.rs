//! Data Management → Imports: every import of the account (CSV files from the console or the
//! API, and restores from backups), newest first, each with its own page: progress while it
//! runs, its counts, the rows it rejected as a CSV file, cancelling, and for a finished restore
//! the way back (a revert, reviewed like the restore itself).
//!
//! Admins and super admins see imports; restores and their reverts are for super admins. The
//! pages work without JavaScript: while anything runs, they reload themselves.

pub(crate) mod restore;
mod upload;

pub use restore::{
    apply_restore, apply_revert, plan_restore_post, restore_page, restore_review, revert,
    revert_review,
};
pub use upload::{mapping_page, mapping_post, new_page, upload};

use super::{Console, PageError};
use crate::params::QueryParams;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{TimeZone, Utc};
use kontor_domain::time::iso;
use kontor_domain::Role;
use kontor_store::imports::{CANCELED, DONE, FAILED, PROCESSING, REVERTED, STARTED};
use kontor_store::{Import, ObjectType, Store, StoreError};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

pub(crate) const PAGE: &str = "/app/imports";
const TITLE: &str = "Imports";
/// Imports per page of the list.
const PER_PAGE: usize = 50;
/// Rejected rows read per query when writing the CSV file.
const ERRORS_CHUNK: usize = 1000;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: String,
}

pub(crate) fn csrf(c: &Console) -> Markup {
    html! { input type="hidden" name="_csrf" value=(c.session.csrf); }
}

/// Who asks, for the jobs crate.
pub(crate) fn requester(c: &Console) -> kontor_jobs::Requester {
    kontor_jobs::Requester {
        user_id: Some(c.session.user.id),
        name: c.session.user.email.clone(),
        operator_override: false,
    }
}

/// An instant with date and time (UTC), machine-readable in `datetime`; the date and the time
/// do not break inside, only between each other.
pub(crate) fn instant(ms: i64) -> Markup {
    let (date, time) = Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| {
            (
                t.format("%Y-%m-%d").to_string(),
                t.format("%H:%M:%S UTC").to_string(),
            )
        })
        .unwrap_or_default();
    html! { time.instant datetime=(iso(ms)) { span { (date) } " " span { (time) } } }
}

pub(crate) fn maybe_instant(ms: Option<i64>) -> Markup {
    match ms {
        Some(ms) => instant(ms),
        None => html! { span.muted { "—" } },
    }
}

/// A response with a status and a page.
pub(crate) fn reply(status: StatusCode, page: Markup) -> Response {
    (status, page).into_response()
}

/// A store message as a sentence: capitalised, with a full stop.
pub(crate) fn sentence(message: &str) -> String {
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

/// How an operation reads in the console.
pub(crate) fn operation_label(op: &str) -> &'static str {
    match op {
        "CREATE" => "Create",
        "UPDATE" => "Update",
        "UPSERT" => "Create and update",
        _ => "—",
    }
}

fn source_label(imp: &Import) -> &'static str {
    if imp.is_restore() {
        "Restore"
    } else {
        "Import"
    }
}

fn state_label(state: &str) -> &'static str {
    match state {
        STARTED => "Queued",
        PROCESSING => "Running",
        DONE => "Done",
        FAILED => "Failed",
        CANCELED => "Canceled",
        REVERTED => "Reverted",
        _ => "Unknown",
    }
}

/// The state, with a progress bar while it runs.
fn status(imp: &Import) -> Markup {
    let pct = imp.percent();
    let label = format!("Import {} progress", imp.id);
    html! {
        span.state data-state=(imp.state) {
            @match imp.state.as_str() {
                STARTED => {
                    progress value="0" max="100" aria-label=(label) { "0%" }
                    "Queued"
                }
                PROCESSING => {
                    progress value=(pct) max="100" aria-label=(label) { (pct) "%" }
                    "Running — " (pct) "%"
                }
                DONE => { strong { "Done" } }
                FAILED => { strong.error { "Failed" } }
                other => { (state_label(other)) }
            }
        }
    }
}

async fn type_labels(c: &Console) -> Result<Vec<ObjectType>, PageError> {
    Ok(c.store.object_types(c.id()).await?)
}

fn type_label(types: &[ObjectType], type_id: &str) -> String {
    types
        .iter()
        .find(|t| t.type_id == type_id)
        .map_or_else(|| type_id.to_string(), |t| t.label_plural.clone())
}

fn notice(q: &QueryParams) -> Markup {
    let message = match q.first("done") {
        Some("started") => {
            "Import started. It runs in the background: this page follows it, and you get a notification when it has finished."
        }
        Some("restore") => {
            "Restore started. It runs in the background: this page follows it, and you get a notification when it has finished."
        }
        Some("revert") => {
            "Revert started. It runs in the background: this page follows it, and you get a notification when it has finished."
        }
        Some("canceled") => "Import canceled. Rows already imported stay as they are.",
        Some("discarded") => "The uploaded file was discarded; nothing was imported.",
        _ => return html! {},
    };
    html! { p.flash #import-notice role="status" { (message) } }
}

/// The list of imports.
pub async fn list(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let before: Option<i64> = q.first("before").and_then(|v| v.parse().ok());
    let mut list = c.store.imports(c.id(), before, PER_PAGE + 1).await?;
    let more = list.len() > PER_PAGE;
    list.truncate(PER_PAGE);
    let types = type_labels(&c).await?;
    let running = list.iter().any(Import::is_open);
    let refresh = match before {
        Some(b) => format!("{PAGE}?before={b}"),
        None => PAGE.to_string(),
    };
    let head = html! {
        @if running { meta http-equiv="refresh" content=(format!("2;url={refresh}")); }
    };
    let body = html! {
        h1 { (TITLE) }
        (notice(&q))
        section.card aria-labelledby="about-imports" {
            h2 #about-imports { "Bring records in from a file" }
            p {
                "Import a CSV file into one object type: each column fills a property. Rows can create records, update existing ones "
                "(found by their record ID, or by a unique property such as a contact's e-mail or a company's domain), or both. "
                "You see what each row will do before anything changes. Restores from a backup are listed here too."
            }
            p { a.button #import-file href=(format!("{PAGE}/new")) { "Import a file" } }
            @if running {
                p.muted #imports-running { "An import is running. This page updates itself every 2 seconds until it has finished." }
            }
        }
        h2 { "Imports" }
        @if list.is_empty() {
            p.muted #no-imports { "No imports yet." }
        } @else {
            div.scroll { table.imports {
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Object" }
                    th scope="col" { "Source" }
                    th scope="col" { "State" }
                    th scope="col" { "Created" }
                    th scope="col" { "Updated" }
                    th scope="col" { "Unchanged" }
                    th scope="col" { "Conflicts" }
                    th scope="col" { "Rejected" }
                    th scope="col" { "Started" }
                    th scope="col" { "Finished" }
                } }
                tbody {
                    @for imp in &list {
                        tr id=(format!("import-{}", imp.id)) {
                            td {
                                a href=(format!("{PAGE}/{}", imp.id)) { (imp.name) }
                                br;
                                // A long address may wrap after its `@`, not inside a word.
                                span.muted {
                                    "by "
                                    @match imp.created_by_name.split_once('@') {
                                        Some((local, domain)) => { (local) "@" wbr; (domain) }
                                        None => { (imp.created_by_name) }
                                    }
                                }
                            }
                            td { (type_label(&types, &imp.object_type)) }
                            td { (source_label(imp)) }
                            td.status { (status(imp)) }
                            td.num { (imp.created) }
                            td.num { (imp.updated) }
                            td.num { (imp.unchanged) }
                            td.num { (imp.conflicts) }
                            td.num { (imp.errors) }
                            td { (instant(imp.created_at)) }
                            td { (maybe_instant(imp.finished_at)) }
                        }
                    }
                }
            } }
            @if more {
                @if let Some(last) = list.last() {
                    div.pager { a.button.secondary rel="next" href=(format!("{PAGE}?before={}", last.id)) { "Older imports" } }
                }
            }
        }
    };
    Ok(super::layout::page_with_head(&c, TITLE, PAGE, head, body))
}

pub(crate) async fn find_import(c: &Console, id: &str) -> Result<Import, PageError> {
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    c.store
        .import(c.id(), id)
        .await?
        .ok_or_else(PageError::not_found)
}

/// What a restore (or revert) import's request says.
struct RestoreFacts {
    backup_id: Option<i64>,
    reverts: Option<i64>,
    properties: Vec<String>,
    overwrite_newer: bool,
}

fn restore_facts(imp: &Import) -> RestoreFacts {
    let r = &imp.request;
    RestoreFacts {
        backup_id: r.get("backupId").and_then(Value::as_i64),
        reverts: r.get("revertsImport").and_then(Value::as_i64),
        properties: r
            .get("properties")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        overwrite_newer: r
            .get("overwriteNewer")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

/// The columns of a CSV import as its request names them, and the key column.
fn csv_columns(imp: &Import) -> (Vec<String>, Option<(String, String)>) {
    let mappings = imp
        .request
        .pointer("/files/0/fileImportPage/columnMappings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names = mappings
        .iter()
        .map(|m| {
            m.get("columnName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let key = mappings.iter().find_map(|m| {
        let kind = m.get("idColumnType").and_then(Value::as_str)?;
        let column = m.get("columnName").and_then(Value::as_str).unwrap_or("");
        let property = m.get("propertyName").and_then(Value::as_str).unwrap_or("");
        (kind == "HUBSPOT_OBJECT_ID" || kind == "HUBSPOT_ALTERNATE_ID")
            .then(|| (column.to_string(), property.to_string()))
    });
    (names, key)
}

/// Whether a restore can be reverted now.
fn revertible(imp: &Import) -> bool {
    imp.is_restore()
        && imp.state == DONE
        && imp.reverted_by.is_none()
        && imp.request.get("revertsImport").is_none()
}

/// The page of one import; `top` holds a flash or a refusal.
pub(crate) async fn detail_view(
    c: &Console,
    imp: &Import,
    top: Markup,
) -> Result<Markup, PageError> {
    let types = type_labels(c).await?;
    let ot = types.iter().find(|t| t.type_id == imp.object_type);
    let object = type_label(&types, &imp.object_type);
    let here = format!("{PAGE}/{}", imp.id);
    let head = html! {
        @if imp.is_open() { meta http-equiv="refresh" content=(format!("2;url={here}")); }
    };
    let facts = imp.is_restore().then(|| restore_facts(imp));
    let labels: Vec<(String, String)> = match (&facts, ot) {
        (Some(f), Some(ot)) => {
            let defs = c.store.properties(c.id(), &ot.type_id, false).await?;
            f.properties
                .iter()
                .map(|p| {
                    let label = defs
                        .iter()
                        .find(|d| &d.name == p)
                        .map_or_else(|| p.clone(), |d| d.label.clone());
                    (p.clone(), label)
                })
                .collect()
        }
        (Some(f), None) => f
            .properties
            .iter()
            .map(|p| (p.clone(), p.clone()))
            .collect(),
        _ => Vec::new(),
    };
    let is_super = c.role() == Role::SuperAdmin;
    let may_cancel = imp.is_open() && (!imp.is_restore() || is_super);
    let key = match csv_columns(imp).1 {
        Some((column, p)) if p != "hs_object_id" => {
            let label = match ot {
                Some(ot) => c
                    .store
                    .properties(c.id(), &ot.type_id, false)
                    .await?
                    .into_iter()
                    .find(|d| d.name == p)
                    .map_or(p.clone(), |d| d.label),
                None => p.clone(),
            };
            Some((column, p, label))
        }
        Some((column, p)) => Some((column, p, "Record ID".to_string())),
        None => None,
    };
    let rejected = imp.errors + imp.conflicts;
    // Housekeeping deletes the rejected rows a while after the import ended (its counts stay).
    let kept_days = kontor_store::IMPORT_ERRORS_DAYS;
    let rows_deleted = imp
        .finished_at
        .is_some_and(|f| kontor_domain::time::now_ms() - f >= kept_days * 86_400_000);
    let body = html! {
        p { a href=(PAGE) { "← Imports" } }
        h1 { (imp.name) }
        (top)
        section.card aria-labelledby="import-summary" {
            h2 #import-summary {
                @if facts.as_ref().is_some_and(|f| f.reverts.is_some()) { "Revert" }
                @else if imp.is_restore() { "Restore" }
                @else { "Import" }
                " " (imp.id)
            }
            dl.props #import-facts {
                dt { "Object" } dd #import-object { (object) }
                dt { "Source" } dd { (source_label(imp)) @if !imp.is_restore() { span.muted { " · " (source_name(&imp.source)) } } }
                @if let Some(f) = &facts {
                    @if let Some(reverts) = f.reverts {
                        dt { "Reverts" } dd #import-reverts { a href=(format!("{PAGE}/{reverts}")) { "Restore " (reverts) } }
                    }
                    @if let Some(b) = f.backup_id {
                        dt { "Backup" } dd #import-backup { a href=(format!("/app/settings/backups#backup-{b}")) { "Backup " (b) } }
                    }
                    dt { "Properties restored" }
                    dd #import-properties {
                        @for (i, (name, label)) in labels.iter().enumerate() {
                            @if i > 0 { ", " }
                            (label) " " span.muted { "(" (name) ")" }
                        }
                    }
                    @if f.reverts.is_none() {
                        dt { "Newer changes" }
                        dd #import-overwrite {
                            @if f.overwrite_newer { "Overwritten: values changed after the review were replaced by the backup's" }
                            @else { "Kept: values changed after the review were left as they are and reported as conflicts" }
                        }
                    }
                } @else {
                    dt { "Operation" } dd #import-operation { (operation_label(&imp.operation)) }
                    @if let Some(f) = &imp.file_name { dt { "File" } dd { (f) } }
                    dt { "Records found by" }
                    dd {
                        @match &key {
                            Some((column, _, label)) => { (label) " (column " (column) ")" }
                            None => { "No key: every row creates a record" }
                        }
                    }
                }
                dt { "State" } dd.status #import-state { (status(imp)) }
                dt { "Progress" }
                dd #import-progress {
                    progress value=(imp.percent()) max="100" aria-label="Progress" { (imp.percent()) "%" }
                    " " (imp.percent()) "% · " (imp.rows_done) " of " (imp.rows_total) " rows"
                }
                dt { "Started by" } dd #import-by { (imp.created_by_name) }
                dt { "Started" } dd { (instant(imp.created_at)) }
                dt { "Finished" } dd { (maybe_instant(imp.finished_at)) }
                @if let Some(by) = imp.reverted_by {
                    dt { "Reverted by" } dd #import-reverted-by { a href=(format!("{PAGE}/{by}")) { "Revert " (by) } }
                }
                @if let Some(e) = &imp.error { dt { "Error" } dd.error { (e) } }
            }
            @if imp.is_open() {
                p.muted { "This page updates itself every 2 seconds while the import runs." }
            }
        }
        section.card aria-labelledby="import-counts" {
            h2 #import-counts { "Results" }
            table.counts #counts {
                thead { tr {
                    th scope="col" { "Created" }
                    th scope="col" { "Updated" }
                    th scope="col" { "Unchanged" }
                    th scope="col" { "Conflicts" }
                    th scope="col" { "Rejected" }
                } }
                tbody { tr {
                    td #count-created { (imp.created) }
                    td #count-updated { (imp.updated) }
                    td #count-unchanged { (imp.unchanged) }
                    td #count-conflicts { (imp.conflicts) }
                    td #count-rejected { (imp.errors) }
                } }
            }
            @if rejected > 0 && rows_deleted {
                p.muted #rejected-rows-deleted { "The rejected rows were deleted " (kept_days) " days after the import ended; the counts above remain." }
            } @else if rejected > 0 {
                p {
                    a.button.secondary #rejected-rows href=(format!("{here}/rejected-rows")) download {
                        @if imp.is_restore() { "Download conflicts and rejected rows" } @else { "Download rejected rows" }
                    }
                }
                p.muted { "A CSV file with each row as it was" @if imp.is_restore() { " (record ID and the values to restore)" } ", its line, the error type and the reason. Kept for " (kept_days) " days after the import ended." }
            } @else if !imp.is_open() {
                p.muted #no-rejected { "No row was rejected." }
            }
            @if imp.is_restore() && imp.errors > 0 {
                p.muted { "Records deleted after the backup were not restored: find them in the " a href="/app/recycle-bin" { "recycle bin" } ", or bring them back with an import that gives their record ID." }
            }
        }
        @if may_cancel {
            section.card aria-labelledby="cancel-import" {
                h2 #cancel-import { "Cancel" }
                p { "Stops the import before its next batch of rows. Rows already imported stay as they are." }
                form method="post" action=(format!("{here}/cancel")) {
                    (csrf(c))
                    button.danger type="submit" { "Cancel import" }
                }
            }
        }
        @if is_super && revertible(imp) {
            section.card aria-labelledby="revert-restore" {
                h2 #revert-restore { "Revert this restore" }
                p { "Puts back the values this restore replaced, for every record it changed. A value someone changed since the restore is a conflict and stays as it is. You review what changes before anything is written." }
                form method="post" action=(format!("{here}/revert")) {
                    (csrf(c))
                    button.secondary type="submit" { "Revert this restore" }
                }
            }
        }
    };
    Ok(super::layout::page_with_head(
        c, &imp.name, PAGE, head, body,
    ))
}

fn source_name(source: &str) -> &str {
    match source {
        kontor_store::imports::SOURCE_UI => "console",
        kontor_store::imports::SOURCE_API => "API",
        other => other,
    }
}

/// An import's page.
pub async fn detail(
    c: Console,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let imp = find_import(&c, &id).await?;
    detail_view(&c, &imp, notice(&q)).await
}

/// Cancels a queued or running import.
pub async fn cancel(
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let imp = find_import(&c, &id).await?;
    if imp.is_restore() {
        c.require(Role::SuperAdmin)?;
    }
    match c.store.cancel_import(c.id(), imp.id).await {
        Ok(done) => {
            let me = &c.session.user;
            c.store
                .audit(
                    c.id(),
                    Some(me.id),
                    &me.email,
                    "import.cancel",
                    &format!("import {}", done.id),
                    serde_json::json!({"message": format!("{:?} canceled after {} rows", done.name, done.rows_done)}),
                )
                .await?;
            Ok(Redirect::to(&format!("{PAGE}/{}?done=canceled", done.id)).into_response())
        }
        Err(StoreError::Conflict { message, .. }) => {
            let top =
                html! { div.flash.warn #import-refused role="alert" { (sentence(&message)) } };
            Ok(reply(
                StatusCode::CONFLICT,
                detail_view(&c, &imp, top).await?,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// One CSV field, quoted when it needs to be.
fn csv_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) || v.starts_with(' ') || v.ends_with(' ') {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

fn csv_line(out: &mut String, fields: &[String]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push_str("\r\n");
}

/// The header of the rejected-rows file: the file's columns (or a restore's), then ours.
fn rejected_header(imp: &Import, width: usize) -> Vec<String> {
    let mut cols: Vec<String> = if imp.is_restore() {
        std::iter::once("Record ID".to_string())
            .chain(restore_facts(imp).properties)
            .collect()
    } else {
        csv_columns(imp).0
    };
    while cols.len() < width {
        cols.push(format!("Column {}", cols.len() + 1));
    }
    cols.extend(["Line", "Error type", "Reason"].map(String::from));
    cols
}

/// Every row an import rejected (and a restore's conflicts) as a CSV file, read from the
/// database in chunks as it is sent.
pub async fn rejected_rows(c: Console, Path(id): Path<String>) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let imp = find_import(&c, &id).await?;
    let first = c
        .store
        .import_errors(c.id(), imp.id, 0, ERRORS_CHUNK)
        .await?;
    // The file's width: the header, or the widest of the first rows.
    let width = first.iter().map(|e| e.row_data.len()).max().unwrap_or(0);
    let header = rejected_header(&imp, width);
    let columns = header.len() - 3;
    let mut head = String::new();
    // A byte-order mark, so that spreadsheet programs read the file as UTF-8.
    head.push('\u{feff}');
    csv_line(&mut head, &header);

    struct Cursor {
        store: Store,
        account: i64,
        import: i64,
        pending: Option<Vec<kontor_store::ImportError>>,
        after: i64,
        done: bool,
    }
    let cursor = Cursor {
        store: c.store.clone(),
        account: c.id(),
        import: imp.id,
        pending: Some(first),
        after: 0,
        done: false,
    };
    let rows = futures_util::stream::unfold(cursor, move |mut cur| async move {
        if cur.done {
            return None;
        }
        let chunk = match cur.pending.take() {
            Some(c) => c,
            None => match cur
                .store
                .import_errors(cur.account, cur.import, cur.after, ERRORS_CHUNK)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    cur.done = true;
                    tracing::error!(import = cur.import, error = %e, "rejected rows download");
                    return Some((Err(std::io::Error::other(e.to_string())), cur));
                }
            },
        };
        if chunk.len() < ERRORS_CHUNK {
            cur.done = true;
        }
        if chunk.is_empty() {
            return None;
        }
        cur.after = chunk.last().map_or(cur.after, |e| e.id);
        let mut out = String::new();
        for e in &chunk {
            let mut fields = e.row_data.clone();
            fields.resize(columns.max(fields.len()), String::new());
            fields.push(e.line.to_string());
            fields.push(e.error_type.clone());
            fields.push(e.message.clone());
            csv_line(&mut out, &fields);
        }
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from(out)), cur))
    });
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::once(
            async move { Ok::<_, std::io::Error>(bytes::Bytes::from(head)) },
        ),
        rows,
    );
    let file = format!("kontor-import-{}-rejected-rows.csv", imp.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut s = String::new();
        csv_line(
            &mut s,
            &[
                "plain".into(),
                "a,b".into(),
                "say \"hi\"".into(),
                "two\nlines".into(),
                String::new(),
            ],
        );
        assert_eq!(s, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\r\n");
    }

    #[test]
    fn sentences() {
        assert_eq!(sentence("the file is empty"), "The file is empty.");
        assert_eq!(sentence("Done."), "Done.");
    }
}
