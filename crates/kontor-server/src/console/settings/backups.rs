//! Settings → Data Management → Backup: super admins ask for a backup of every record, follow
//! it while it runs (the page refreshes itself), and download the archive after a confirmation
//! that repeats that sensitive property values are included.
//!
//! Everything works without JavaScript: "Create backup" is a link to a confirmation page, which
//! the console script (`console/app.js`) turns into a `<dialog>` on the list page. A completed
//! backup's Actions → Restore opens the restore panel (`console::imports::restore`) on the right
//! side of the list, or its page without JavaScript.

use super::*;
use crate::console::layout;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{TimeZone, Utc};
use kontor_domain::time::{iso, now_ms};
use kontor_domain::{Role, BACKUP_RETENTION_MS};
use kontor_store::{Backup, StoreError};
use maud::{html, Markup};

const PAGE: &str = "/app/settings/backups";
const TITLE: &str = "Backup";
const RETENTION_DAYS: i64 = BACKUP_RETENTION_MS / DAY_MS;

/// An instant with date and time (UTC), machine-readable in `datetime`.
/// The date and the time do not break inside, only between each other.
fn instant(ms: i64) -> Markup {
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

fn maybe_instant(ms: Option<i64>) -> Markup {
    match ms {
        Some(ms) => instant(ms),
        None => html! { span.muted { "—" } },
    }
}

/// Bytes in decimal units: `812 bytes`, `12.3 kB`, `4.1 MB`, `2.0 GB`.
fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} {}", if bytes == 1 { "byte" } else { "bytes" });
    }
    let mut value = bytes as f64;
    let mut unit = "";
    for u in UNITS {
        value /= 1000.0;
        unit = u;
        if value < 1000.0 {
            break;
        }
    }
    format!("{value:.1} {unit}")
}

fn records(n: i64) -> String {
    if n == 1 {
        "1 record".to_string()
    } else {
        format!("{n} records")
    }
}

fn active(b: &Backup) -> bool {
    matches!(b.state.as_str(), "queued" | "running")
}

/// Completed, but its download period is over: the hourly sweep has not deleted it yet.
fn lapsed(b: &Backup) -> bool {
    b.state == "completed" && b.expires_at.is_some_and(|t| t <= now_ms())
}

fn downloadable(b: &Backup) -> bool {
    b.state == "completed" && !lapsed(b)
}

/// What a backup holds, shown above the list and in the confirmation.
fn explanation() -> Markup {
    html! {
        p {
            "A backup holds every record of your account and all of its property values: contacts, companies, deals, tickets, products, calls, conversations, tasks and custom objects. "
            "Associations between records and activities (notes, meetings, e-mails) are not included, nor are records in the recycle bin."
        }
        p {
            "It is one consistent snapshot of a single instant, taken while everyone keeps working: the time in "
            em { "Data as of" }
            " is the moment the data is from. The backup is a zip archive with one CSV file per object type; it can be downloaded for "
            (RETENTION_DAYS) " days, then it is deleted."
        }
    }
}

fn sensitive_warning(id: &str) -> Markup {
    html! {
        div.warning id=(id) {
            p { strong { "Sensitive property values are included." } }
            p {
                "The archive holds the values of every property, including properties marked as sensitive data. "
                "Anyone who gets the file can read them: keep it somewhere safe, do not forward it, and delete it when you no longer need it."
            }
        }
    }
}

/// The confirmation for a new backup: in a `<dialog>` on the list page, or as its own page.
fn confirm_create(c: &Console, in_dialog: bool) -> Markup {
    let warning_id = if in_dialog {
        "confirm-backup-warning"
    } else {
        "new-backup-warning"
    };
    html! {
        p { "kontor takes a snapshot of all records of " strong { (c.account.name) } " and writes it to a zip archive in the background. You are notified in the console and by e-mail when it is ready." }
        (sensitive_warning(warning_id))
        form method="post" action=(PAGE) {
            (csrf(c))
            div.actions-row {
                button type="submit" aria-describedby=(warning_id) { "Create" }
                @if in_dialog {
                    button.secondary type="submit" formmethod="dialog" formnovalidate value="cancel" { "Cancel" }
                } @else {
                    a.button.secondary href=(PAGE) { "Cancel" }
                }
            }
        }
    }
}

fn status(b: &Backup) -> Markup {
    let pct = b.percent();
    html! {
        @match b.state.as_str() {
            "queued" => {
                progress value="0" max="100" aria-label=(format!("Backup {} progress", b.id)) {}
                "Queued"
            }
            "running" => {
                progress value=(pct) max="100" aria-label=(format!("Backup {} progress", b.id)) { (pct) "%" }
                "Running — " (pct) "%"
            }
            "completed" if lapsed(b) => {
                "Expired — the file is being deleted"
            }
            "completed" => {
                strong { "Completed" }
                @if let Some(until) = b.expires_at {
                    br; span.muted { "Download until " (instant(until)) }
                }
            }
            "failed" => {
                strong.error { "Failed" }
                @if let Some(e) = &b.error { br; span.error { (e) } }
            }
            "expired" => {
                "Expired — file deleted "
                @match b.deleted_at { Some(at) => (instant(at)), None => "" }
            }
            other => { (other) }
        }
    }
}

fn row(b: &Backup) -> Markup {
    let menu_label = format!("Actions for backup {}", b.id);
    html! {
        tr id=(format!("backup-{}", b.id)) {
            td { (b.id) }
            td {
                // A long address may wrap after its `@`, not inside a word.
                @match b.requested_by_name.split_once('@') {
                    Some((local, domain)) => { (local) "@" wbr; (domain) }
                    None => { (b.requested_by_name) }
                }
                br; span.muted { "asked " (instant(b.requested_at)) }
            }
            td { (maybe_instant(b.started_at)) }
            td { (maybe_instant(b.completed_at)) }
            td {
                @match b.size_bytes.filter(|_| b.state == "completed" || b.state == "expired") {
                    Some(size) => {
                        span.nowrap { (human_size(size)) }
                        @if let Some(n) = b.rows { br; span.muted { (records(n)) } }
                    }
                    None => span.muted { "—" },
                }
            }
            td { (maybe_instant(b.snapshot_at)) }
            td.status { (status(b)) }
            td {
                // Only a backup whose file is still there can be downloaded or restored from.
                @if downloadable(b) {
                    div.menu {
                        button.secondary type="button" aria-label=(menu_label) { "Actions" }
                        ul.menu-items {
                            li { a href=(format!("{PAGE}/{}/download", b.id)) { "Download" } }
                            li {
                                a href=(format!("{PAGE}/{}/restore", b.id)) data-restore
                                    data-title=(format!("Restore from backup {}", b.id)) { "Restore" }
                            }
                        }
                    }
                } @else {
                    span.muted { "—" }
                }
            }
        }
    }
}

/// The list page; `top` holds a flash or a refusal.
async fn backups_view(c: &Console, top: Markup, refresh_url: &str) -> Result<Markup, PageError> {
    let list = c.store.backups(c.id()).await?;
    let running = list.iter().any(active);
    let head = html! {
        @if running { meta http-equiv="refresh" content=(format!("2;url={refresh_url}")); }
    };
    let body = html! {
        h1 { (TITLE) }
        (top)
        section.card aria-labelledby="about-backups" {
            h2 #about-backups { "What a backup holds" }
            (explanation())
            p.muted { "Only super admins can create and download backups." }
            @if running {
                p { button type="button" disabled { "Create backup" } }
                p.muted #backup-running { "A backup is in progress: you can create another when it has finished. This page updates itself every 2 seconds until then." }
            } @else {
                p { a.button #create-backup href=(format!("{PAGE}/new")) { "Create backup" } }
            }
        }
        @if !running {
            dialog.confirm #confirm-backup aria-labelledby="confirm-backup-title" {
                h2 #confirm-backup-title { "Create a backup?" }
                (confirm_create(c, true))
            }
        }
        @if list.iter().any(downloadable) {
            // The restore panel: the Restore action fills it with the page it links to.
            dialog.panel #restore-dialog aria-labelledby="restore-dialog-title" {
                div.panel-head {
                    h2 #restore-dialog-title { "Restore" }
                    button.secondary.panel-close type="button" { "Close" }
                }
                div.panel-body {}
            }
        }
        h2 { "Backups" }
        @if list.is_empty() {
            p.muted #no-backups { "No backups yet." }
        } @else {
            table.backups {
                thead { tr {
                    th scope="col" { "Backup" }
                    th scope="col" { "Created by" }
                    th scope="col" { "Started" }
                    th scope="col" { "Completed" }
                    th scope="col" { "Size" }
                    th scope="col" { "Data as of" }
                    th scope="col" { "Status" }
                    th scope="col" { "Actions" }
                } }
                tbody { @for b in &list { (row(b)) } }
            }
        }
    };
    Ok(layout::page_with_head(c, TITLE, PAGE, head, body))
}

fn backups_notice(q: &QueryParams) -> Markup {
    match q.first("done") {
        Some("requested") => html! {
            p.flash role="status" {
                "Backup requested. It runs in the background; you will get a notification and an e-mail when it is ready."
            }
        },
        _ => html! {},
    }
}

pub async fn backups(c: Console, q: QueryParams) -> Result<Markup, PageError> {
    c.require(Role::SuperAdmin)?;
    let refresh = match q.first("done") {
        Some("requested") => format!("{PAGE}?done=requested"),
        _ => PAGE.to_string(),
    };
    backups_view(&c, backups_notice(&q), &refresh).await
}

/// The confirmation as a page of its own (what the button leads to without JavaScript).
pub async fn new_backup(c: Console) -> Result<Markup, PageError> {
    c.require(Role::SuperAdmin)?;
    Ok(c.page(
        "Create a backup",
        PAGE,
        html! {
            p { a href=(PAGE) { "← Backup" } }
            h1 { "Create a backup?" }
            section.card {
                (confirm_create(&c, false))
            }
            section.card aria-labelledby="about-backups" {
                h2 #about-backups { "What a backup holds" }
                (explanation())
            }
        },
    ))
}

pub async fn create_backup(c: Console, Form(f): Form<CsrfForm>) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(&f.csrf)?;
    let me = &c.session.user;
    let who = kontor_jobs::Requester {
        user_id: Some(me.id),
        name: me.email.clone(),
        operator_override: false,
    };
    // `request_backup` writes the backup.create audit entry itself.
    let (status, message) = match kontor_jobs::request_backup(&c.store, &c.account, &who).await {
        Ok(b) => {
            return Ok(
                Redirect::to(&format!("{PAGE}?done=requested#backup-{}", b.id)).into_response(),
            )
        }
        Err(StoreError::Conflict { message, .. }) => (StatusCode::CONFLICT, message),
        Err(StoreError::TooSoon { message, .. }) => (StatusCode::TOO_MANY_REQUESTS, message),
        Err(other) => return Err(other.into()),
    };
    let top = html! {
        div.flash.warn #backup-refused role="alert" {
            strong { "No backup was created. " } (message)
        }
    };
    Ok(reply(status, backups_view(&c, top, PAGE).await?))
}

async fn find(c: &Console, id: &str) -> Result<Backup, PageError> {
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    c.store
        .backup(c.id(), id)
        .await?
        .ok_or_else(PageError::not_found)
}

/// Why a backup has no file to download, as a page with its status.
fn not_downloadable(c: &Console, b: &Backup) -> Option<Response> {
    let (status, message) = match b.state.as_str() {
        "completed" if lapsed(b) => (
            StatusCode::GONE,
            format!(
                "Backup {} has expired: it could be downloaded for {} days, until {}. Create a new backup to get the current data.",
                b.id,
                RETENTION_DAYS,
                b.expires_at.map(iso).unwrap_or_default()
            ),
        ),
        "completed" => return None,
        "expired" => (
            StatusCode::GONE,
            format!(
                "Backup {} has expired: its file was deleted {} days after it was completed{}. Create a new backup to get the current data.",
                b.id,
                RETENTION_DAYS,
                b.deleted_at
                    .map(|t| format!(" (on {})", date_string(t).unwrap_or_default()))
                    .unwrap_or_default()
            ),
        ),
        "failed" => (
            StatusCode::CONFLICT,
            format!(
                "Backup {} failed and has no file{}. Create a new backup; a failed one does not count against your allowance.",
                b.id,
                b.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        ),
        state => (
            StatusCode::CONFLICT,
            format!(
                "Backup {} is {state}: its file is not ready yet. You will be notified when it is.",
                b.id
            ),
        ),
    };
    Some(message_page(c, status, b.id, &message))
}

fn message_page(c: &Console, status: StatusCode, id: i64, message: &str) -> Response {
    reply(
        status,
        c.page(
            "Download a backup",
            PAGE,
            html! {
                h1 { "Backup " (id) " cannot be downloaded" }
                div.card {
                    p #download-refused role="alert" { (message) }
                    p { a href=(PAGE) { "Back to the backups" } }
                }
            },
        ),
    )
}

/// The confirmation before a download, repeating the sensitive-data warning.
pub async fn download_page(c: Console, Path(id): Path<String>) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    let b = find(&c, &id).await?;
    if let Some(refused) = not_downloadable(&c, &b) {
        return Ok(refused);
    }
    Ok(c.page(
        "Download a backup",
        PAGE,
        html! {
            p { a href=(PAGE) { "← Backup" } }
            h1 { "Download backup " (b.id) "?" }
            section.card {
                dl.props {
                    dt { "Data as of" } dd { (maybe_instant(b.snapshot_at)) }
                    dt { "Records" } dd { (b.rows.unwrap_or(0)) }
                    dt { "Size" } dd { (b.size_bytes.map(human_size).unwrap_or_default()) }
                    dt { "SHA-256" } dd { code { (b.sha256.as_deref().unwrap_or("")) } }
                    dt { "Downloadable until" } dd { (maybe_instant(b.expires_at)) }
                }
                (sensitive_warning("download-warning"))
                p.muted #spreadsheet-note {
                    "The CSV files hold every value exactly as stored, so that a restore puts back what was there. "
                    "To look at them in a spreadsheet, import them as text rather than opening them: "
                    "a value beginning with =, +, - or @ would otherwise be run as a formula."
                }
                p.muted { "The download is recorded in the audit log." }
                form method="post" action=(format!("{PAGE}/{}/download", b.id)) {
                    (csrf(&c))
                    div.actions-row {
                        button type="submit" aria-describedby="download-warning" { "Download" }
                        a.button.secondary href=(PAGE) { "Cancel" }
                    }
                }
            }
        },
    )
    .into_response())
}

/// Streams the archive (audited by `serve_archive`).
pub async fn download(
    State(state): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(&f.csrf)?;
    let b = find(&c, &id).await?;
    if let Some(refused) = not_downloadable(&c, &b) {
        return Ok(refused);
    }
    match crate::backups::serve_archive(
        &state,
        &c.store,
        &c.account,
        &b,
        Some(c.session.user.id),
        &c.session.user.email,
    )
    .await
    {
        Ok(response) => Ok(response),
        Err(e) if e.status.is_server_error() => {
            tracing::error!(backup = b.id, error = %e.message, "console backup download");
            Ok(message_page(
                &c,
                e.status,
                b.id,
                "The backup's file could not be read. Try again later, or create a new backup.",
            ))
        }
        Err(e) => Ok(message_page(&c, e.status, b.id, &e.message)),
    }
}
