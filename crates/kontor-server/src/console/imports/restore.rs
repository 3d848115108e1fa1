//! Restoring from a backup, and reverting a restore: super admins only.
//!
//! From the backup list (Actions → Restore) a super admin chooses one object type and the
//! properties to put back, in a side panel (the page `/app/settings/backups/{id}/restore`
//! without JavaScript). "Review" computes a plan: what the backup's values would change now,
//! pinned to the change log. The review shows it, and the restore starts only after two
//! acknowledgements and a fresh code from the user's authenticator app (not asked of a session
//! that signed in through single sign-on). A finished restore can be reverted from its import's
//! page, through a review of the same kind.

use super::{csrf, detail_view, find_import, instant, reply, requester, sentence, PAGE as IMPORTS};
use crate::console::{CodeCheck, Console, PageError};
use crate::params::QueryParams;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::time::{iso, now_ms, parse_instant};
use kontor_domain::{PropertyDef, Role};
use kontor_jobs::restore::{
    apply_plan, plan_restore, plan_revert, restorable, restorable_property,
};
use kontor_store::{
    AuthMethod, Backup, Import, ObjectType, RestorePlan, StoreError, PLAN_RESTORE, PLAN_REVERT,
};
use maud::{html, Markup};
use serde_json::Value;

const BACKUPS: &str = "/app/settings/backups";
/// Wrong codes wait like wrong sign-ins do.
const FAILURE_DELAY: std::time::Duration = std::time::Duration::from_millis(400);

async fn find_backup(c: &Console, id: &str) -> Result<Backup, PageError> {
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    c.store
        .backup(c.id(), id)
        .await?
        .ok_or_else(PageError::not_found)
}

/// Why a backup cannot be restored, if it cannot.
fn not_restorable(b: &Backup) -> Option<(StatusCode, String)> {
    if b.downloadable(now_ms()) {
        return None;
    }
    Some(match b.effective_state(now_ms()) {
        "expired" => (
            StatusCode::GONE,
            format!(
                "Backup {} has expired and its file was deleted: it can no longer be restored.",
                b.id
            ),
        ),
        "failed" => (
            StatusCode::CONFLICT,
            format!("Backup {} failed and has no file to restore from.", b.id),
        ),
        state => (
            StatusCode::CONFLICT,
            format!(
                "Backup {} is {state}: it can be restored once it is completed.",
                b.id
            ),
        ),
    })
}

fn refused_page(c: &Console, b: &Backup, status: StatusCode, message: &str) -> Response {
    reply(
        status,
        c.page(
            "Restore",
            BACKUPS,
            html! {
                p { a href=(BACKUPS) { "← Backup" } }
                h1 { "Backup " (b.id) " cannot be restored" }
                div.card {
                    p #restore-refused role="alert" { (message) }
                    p { a href=(BACKUPS) { "Back to the backups" } }
                }
            },
        ),
    )
}

/// Whether the user can give the code a restore asks for.
struct CodeNeed {
    /// A code is asked (not for single sign-on sessions).
    asked: bool,
    /// The user has an authenticator app set up.
    set_up: bool,
}

impl CodeNeed {
    fn blocked(&self) -> bool {
        self.asked && !self.set_up
    }
}

async fn code_need(c: &Console) -> Result<CodeNeed, PageError> {
    let set_up = c
        .store
        .second_factor(c.id(), c.session.user.id)
        .await?
        .is_some_and(|f| f.enabled);
    Ok(CodeNeed {
        asked: c.session.auth_method != AuthMethod::Sso,
        set_up,
    })
}

fn set_up_first(id: &str) -> Markup {
    html! {
        div.warning id=(id) role="note" {
            p { strong { "Set up two-factor authentication first." } }
            p {
                "A restore asks for a code from your authenticator app. "
                a href="/app/account/security" { "Set up two-factor authentication" }
                " on your security page, then come back."
            }
        }
    }
}

fn restorable_types(types: Vec<ObjectType>) -> Vec<ObjectType> {
    types.into_iter().filter(restorable).collect()
}

/// The panel: the object, then its properties.
async fn panel(
    c: &Console,
    b: &Backup,
    object: Option<&str>,
    chosen: &[String],
    error: Option<&str>,
) -> Result<Markup, PageError> {
    let types = restorable_types(c.store.object_types(c.id()).await?);
    let ot = object.and_then(|o| types.iter().find(|t| t.name == o));
    let need = code_need(c).await?;
    let action = format!("{BACKUPS}/{}/restore", b.id);
    let mut groups: Vec<(String, Vec<PropertyDef>)> = Vec::new();
    if let Some(ot) = ot {
        let defs: Vec<PropertyDef> = c
            .store
            .properties(c.id(), &ot.type_id, false)
            .await?
            .into_iter()
            .filter(|d| restorable_property(ot, d))
            .collect();
        let known = c.store.property_groups(c.id(), &ot.type_id).await?;
        for g in &known {
            let mut in_group: Vec<PropertyDef> = defs
                .iter()
                .filter(|d| d.group_name == g.name)
                .cloned()
                .collect();
            in_group.sort_by_key(|d| d.label.to_lowercase());
            if !in_group.is_empty() {
                groups.push((g.label.clone(), in_group));
            }
        }
        let mut rest: Vec<PropertyDef> = defs
            .iter()
            .filter(|d| !known.iter().any(|g| g.name == d.group_name))
            .cloned()
            .collect();
        rest.sort_by_key(|d| d.label.to_lowercase());
        if !rest.is_empty() {
            groups.push(("Other properties".into(), rest));
        }
    }
    Ok(html! {
        section #restore-panel {
            p {
                "Puts the values a backup holds back into the records that still exist, for "
                strong { "one object type" } " and the properties you choose. "
                "Records deleted since the backup are not brought back, and records created after it are left as they are. You review every change before anything is written."
            }
            dl.props {
                dt { "Backup" } dd { (b.id) }
                dt { "Data as of" } dd { @match b.snapshot_at { Some(t) => (instant(t)), None => "—" } }
            }
            @if need.blocked() { (set_up_first("restore-2fa-needed")) }
            form.restore-object method="get" action=(action) {
                label for="restore-object" { "1. Object" }
                div.toolbar {
                    select #restore-object name="object" {
                        option value="" selected[ot.is_none()] { "Choose an object…" }
                        @for t in &types {
                            option value=(t.name) selected[ot.is_some_and(|o| o.name == t.name)] { (t.label_plural) }
                        }
                    }
                    button.secondary.js-hide type="submit" { "Show properties" }
                }
            }
            @if let Some(ot) = ot {
                form method="post" action=(action) {
                    (csrf(c))
                    input type="hidden" name="object" value=(ot.name);
                    fieldset #restore-properties aria-describedby=[error.map(|_| "restore-error")] {
                        legend { "2. Properties of " (ot.label_plural.to_lowercase()) " to restore" }
                        p.muted { "Only the properties you tick get the backup's values back; the others stay as they are. Properties kontor maintains (record ID, dates of creation and change) are not restored." }
                        input #property-filter type="search" data-filter placeholder="Find a property" aria-label="Find a property";
                        @for (label, defs) in &groups {
                            fieldset.prop-group {
                                legend { (label) }
                                @for d in defs {
                                    @let id = format!("prop-{}", d.name);
                                    div.prop-choice data-search=(format!("{} {}", d.label.to_lowercase(), d.name.to_lowercase())) {
                                        input type="checkbox" id=(id) name="property" value=(d.name) checked[chosen.contains(&d.name)];
                                        label for=(id) { (d.label) " " span.muted { (d.name) } }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(e) = error { p.error #restore-error role="alert" { (e) } }
                    div.actions-row {
                        button type="submit" { "Review" }
                        a.button.secondary href=(BACKUPS) { "Cancel" }
                    }
                }
            } @else {
                @if let Some(e) = error { p.error #restore-error role="alert" { (e) } }
                p.muted { "Choose an object to see its properties." }
            }
        }
    })
}

fn restore_title(b: &Backup) -> String {
    format!("Restore from backup {}", b.id)
}

async fn panel_page(
    c: &Console,
    b: &Backup,
    object: Option<&str>,
    chosen: &[String],
    error: Option<&str>,
) -> Result<Markup, PageError> {
    let panel = panel(c, b, object, chosen, error).await?;
    Ok(c.page(
        &restore_title(b),
        BACKUPS,
        html! {
            p { a href=(BACKUPS) { "← Backup" } }
            h1 { (restore_title(b)) }
            div.card { (panel) }
        },
    ))
}

/// The restore panel as a page (what the backup list's panel shows).
pub async fn restore_page(
    c: Console,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    let b = find_backup(&c, &id).await?;
    if let Some((status, message)) = not_restorable(&b) {
        return Ok(refused_page(&c, &b, status, &message));
    }
    let chosen: Vec<String> =
        q.0.iter()
            .filter(|(k, _)| k == "property")
            .map(|(_, v)| v.clone())
            .collect();
    let object = q.first("object").filter(|o| !o.is_empty());
    Ok(panel_page(&c, &b, object, &chosen, None)
        .await?
        .into_response())
}

fn field<'a>(form: &'a [(String, String)], k: &str) -> &'a str {
    form.iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// "Review": computes the plan, then shows it.
pub async fn plan_restore_post(
    State(state): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(field(&form, "_csrf"))?;
    let b = find_backup(&c, &id).await?;
    if let Some((status, message)) = not_restorable(&b) {
        return Ok(refused_page(&c, &b, status, &message));
    }
    let object = field(&form, "object").to_string();
    let chosen: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "property")
        .map(|(_, v)| v.clone())
        .collect();
    let again = |status: StatusCode, message: String| {
        let (c, b, object, chosen) = (&c, &b, &object, &chosen);
        async move {
            Ok::<_, PageError>(reply(
                status,
                panel_page(c, b, Some(object), chosen, Some(&message)).await?,
            ))
        }
    };
    if chosen.is_empty() {
        return again(
            StatusCode::BAD_REQUEST,
            "Choose at least one property to restore.".into(),
        )
        .await;
    }
    match plan_restore(
        &state.jobs,
        &c.store,
        &c.account,
        b.id,
        &object,
        &chosen,
        &requester(&c),
    )
    .await
    {
        Ok(plan) => {
            Ok(Redirect::to(&format!("{BACKUPS}/{}/restore/{}", b.id, plan.id)).into_response())
        }
        Err(StoreError::Validation { message, .. }) | Err(StoreError::Conflict { message, .. }) => {
            again(StatusCode::BAD_REQUEST, sentence(&message)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Where a review comes from.
enum Origin<'a> {
    Restore(&'a Backup),
    Revert(&'a Import),
}

impl Origin<'_> {
    fn action(&self, plan: &RestorePlan) -> String {
        match self {
            Origin::Restore(b) => format!("{BACKUPS}/{}/restore/{}", b.id, plan.id),
            Origin::Revert(i) => format!("{IMPORTS}/{}/revert/{}", i.id, plan.id),
        }
    }
    fn is_revert(&self) -> bool {
        matches!(self, Origin::Revert(_))
    }
    fn nav(&self) -> &'static str {
        match self {
            Origin::Restore(_) => BACKUPS,
            Origin::Revert(_) => IMPORTS,
        }
    }
}

/// What was ticked and typed on the review.
#[derive(Default)]
struct Answers {
    understand_changes: bool,
    understand_revert: bool,
    overwrite_newer: bool,
}

#[derive(Default)]
struct ReviewErrors {
    top: Option<String>,
    changes: Option<String>,
    revert: Option<String>,
    code: Option<String>,
}

fn n(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

fn shown(v: &Value) -> Markup {
    match v {
        Value::Null => html! { span.muted { "(empty)" } },
        Value::String(s) if s.is_empty() => html! { span.muted { "(empty)" } },
        Value::String(s) => html! { (s) },
        other => html! { (other.to_string()) },
    }
}

fn count_row(id: &str, label: Markup, value: i64) -> Markup {
    html! { dt { (label) } dd id=(id) { (value) } }
}

/// The review of a plan (a restore or a revert), with the form that applies it.
async fn review_view(
    c: &Console,
    plan: &RestorePlan,
    origin: &Origin<'_>,
    answers: &Answers,
    errors: &ReviewErrors,
) -> Result<Markup, PageError> {
    let s = &plan.summary;
    let revert = origin.is_revert();
    let object_label = s["objectLabel"].as_str().unwrap_or("records").to_string();
    let object_name = s["objectType"].as_str().unwrap_or("").to_string();
    let title = match origin {
        Origin::Restore(b) => format!(
            "Review: restore {} from backup {}",
            object_label.to_lowercase(),
            b.id
        ),
        Origin::Revert(i) => format!("Review: revert restore {}", i.id),
    };
    let need = code_need(c).await?;
    let running = c.store.running_restore(c.id()).await?;
    let expired = plan.expires_at <= now_ms();
    let applied = plan.import_id;
    let props = s["properties"].as_array().cloned().unwrap_or_default();
    let sample = s["sample"].as_array().cloned().unwrap_or_default();
    let snapshot = s["snapshotAt"].as_str().map(str::to_string);
    let back = match origin {
        Origin::Restore(b) => {
            html! { a href=(format!("{BACKUPS}/{}/restore?object={}", b.id, object_name)) { "← Choose other properties" } }
        }
        Origin::Revert(i) => html! { a href=(format!("{IMPORTS}/{}", i.id)) { "← " (i.name) } },
    };
    let verb = if revert { "revert" } else { "restore" };
    let body = html! {
        p { (back) }
        h1 { (title) }
        @if let Some(t) = &errors.top { div.flash.warn #review-refused role="alert" { (t) } }
        section.card aria-labelledby="review-what" {
            h2 #review-what { "What changes" }
            dl.props #review-facts {
                @match origin {
                    Origin::Restore(b) => {
                        dt { "Backup" } dd { a href=(format!("{BACKUPS}#backup-{}", b.id)) { "Backup " (b.id) } }
                        dt { "Data as of" }
                        dd #review-snapshot {
                            @match snapshot.as_deref().and_then(parse_instant).or(b.snapshot_at) {
                                Some(t) => (instant(t)),
                                None => "—",
                            }
                        }
                    }
                    Origin::Revert(i) => {
                        dt { "Restore" } dd { a href=(format!("{IMPORTS}/{}", i.id)) { (i.name) " (import " (i.id) ")" } }
                        @if let Some(b) = i.request.get("backupId").and_then(Value::as_i64) {
                            dt { "Backup" } dd { "Backup " (b) }
                        }
                    }
                }
                dt { "Object" } dd #review-object { (object_label) }
                dt { "Pinned to change" }
                dd #review-seq {
                    (plan.seq)
                    span.muted { " — the last change in the CRM when this review was made, " (instant(plan.created_at)) ". A value changed after it is " @if revert { "a conflict and is left as it is." } @else { "a conflict unless you choose to overwrite it." } }
                }
                dt { "Review valid until" } dd { (instant(plan.expires_at)) }
            }
            table #review-properties {
                thead { tr {
                    th scope="col" { "Property" }
                    th scope="col" { "Values changed" }
                    th scope="col" { @if revert { "Values cleared" } @else { "Values cleared (empty in the backup)" } }
                } }
                tbody {
                    @for p in &props {
                        tr data-property=(p["name"].as_str().unwrap_or("")) {
                            th scope="row" { (p["label"].as_str().unwrap_or("")) " " span.muted { (p["name"].as_str().unwrap_or("")) } }
                            td.changed { (n(&p["changed"])) }
                            td.cleared { (n(&p["cleared"])) }
                        }
                    }
                }
            }
            dl.props #review-records {
                @if revert {
                    (count_row("records-in-backup", html! { "Records the restore changed" }, n(&s["recordsInBackup"])))
                    (count_row("records-to-change", html! { "Records that change back" }, n(&s["recordsToChange"])))
                    (count_row("records-unchanged", html! { "Records already as before the restore" }, n(&s["recordsUnchanged"])))
                    (count_row("records-conflicts", html! { "Records changed since the restore (conflicts, left as they are)" }, n(&s["conflicts"])))
                    (count_row("records-missing", html! { "Records deleted since the restore (not changed)" }, n(&s["recordsMissing"])))
                } @else {
                    (count_row("records-in-backup", html! { "Records in the backup" }, n(&s["recordsInBackup"])))
                    (count_row("records-to-change", html! { "Records whose values change" }, n(&s["recordsToChange"])))
                    (count_row("records-unchanged", html! { "Records already as in the backup (unchanged)" }, n(&s["recordsUnchanged"])))
                    (count_row("records-created-after", html! { "Records created after the backup (left as they are)" }, n(&s["recordsNotInBackup"])))
                    (count_row("records-missing", html! { "Records in the backup that no longer exist (not restored)" }, n(&s["recordsMissing"])))
                }
            }
            @if !revert {
                p.muted #review-missing-help {
                    "A restore only changes records that exist. Deleted records wait in the "
                    a href=(format!("/app/recycle-bin?type={object_name}")) { "recycle bin" }
                    " for " (kontor_store::RECYCLE_BIN_DAYS) " days; a record deleted for good comes back with an "
                    a href=(IMPORTS) { "import" }
                    " that gives its record ID."
                }
            }
        }
        section.card aria-labelledby="review-sample" {
            h2 #review-sample { "Examples" }
            @if sample.is_empty() {
                p.muted #review-no-changes { "Nothing would change: the records already hold these values." }
            } @else {
                table #review-sample-table {
                    thead { tr {
                        th scope="col" { "Record" }
                        th scope="col" { "Property" }
                        th scope="col" { "Now" }
                        th scope="col" { @if revert { "After the revert" } @else { "After the restore" } }
                    } }
                    tbody {
                        @for row in &sample {
                            @let id = row["id"].as_str().map(str::to_string).unwrap_or_else(|| row["id"].to_string());
                            tr {
                                td { a href=(format!("/app/objects/{object_name}/{id}")) { (id) } }
                                @let name = row["property"].as_str().unwrap_or("");
                                td {
                                    (props.iter().find(|p| p["name"].as_str() == Some(name)).and_then(|p| p["label"].as_str()).unwrap_or(name))
                                    " " span.muted { (name) }
                                }
                                td { (shown(&row["before"])) }
                                td { (shown(&row["after"])) }
                            }
                        }
                    }
                }
                p.muted { "The first " (sample.len()) " changes; the counts above cover all of them." }
            }
        }
        section.card aria-labelledby="review-apply" {
            h2 #review-apply { @if revert { "Revert" } @else { "Restore" } }
            @if let Some(i) = applied {
                p #review-applied { "This review was applied: " a href=(format!("{IMPORTS}/{i}")) { "see import " (i) } "." }
            } @else if expired {
                p #review-expired role="alert" {
                    "This review expired at " (iso(plan.expires_at)) ": the data may have changed since. "
                    a href=(match origin { Origin::Restore(b) => format!("{BACKUPS}/{}/restore?object={object_name}", b.id), Origin::Revert(i) => format!("{IMPORTS}/{}", i.id) }) { "Review again" } "."
                }
            } @else {
                @if let Some(r) = &running {
                    div.warning #restore-running role="note" {
                        p { "Restore " a href=(format!("{IMPORTS}/{}", r.id)) { (r.name) " (import " (r.id) ")" } " is running. Only one restore runs at a time: you can start this one when it has finished." }
                    }
                }
                form method="post" action=(origin.action(plan)) novalidate {
                    (csrf(c))
                    div.warning {
                        @if revert {
                            p { "The revert writes back the values the restore replaced, in " strong { (n(&s["recordsToChange"])) } " records. Values changed since the restore stay as they are and are reported as conflicts." }
                        } @else {
                            p { "The restore writes the backup's values into " strong { (n(&s["recordsToChange"])) } " records. The values they hold now are kept in the change log: only reverting this restore brings them back." }
                        }
                    }
                    div.check {
                        input #understand-changes type="checkbox" name="understand_changes" value="yes" required checked[answers.understand_changes]
                            aria-invalid=[errors.changes.as_ref().map(|_| "true")] aria-describedby=[errors.changes.as_ref().map(|_| "understand-changes-error")];
                        label for="understand-changes" { "I understand this " (verb) " changes my data" }
                    }
                    @if let Some(e) = &errors.changes { p.error #understand-changes-error role="alert" { (e) } }
                    div.check {
                        input #understand-revert type="checkbox" name="understand_revert" value="yes" required checked[answers.understand_revert]
                            aria-invalid=[errors.revert.as_ref().map(|_| "true")] aria-describedby=[errors.revert.as_ref().map(|_| "understand-revert-error")];
                        label for="understand-revert" {
                            @if revert { "I understand a reverted restore cannot be applied again: bringing the backup's values back takes a new restore" }
                            @else { "I understand the overwritten values come back only by reverting this restore" }
                        }
                    }
                    @if let Some(e) = &errors.revert { p.error #understand-revert-error role="alert" { (e) } }
                    @if !revert {
                        div.check {
                            input #overwrite-newer type="checkbox" name="overwrite_newer" value="yes" checked[answers.overwrite_newer] aria-describedby="overwrite-newer-hint";
                            label for="overwrite-newer" { "Overwrite values changed after this review" }
                        }
                        p.muted #overwrite-newer-hint { "Off: a value someone changes after this review is reported as a conflict and left as it is." }
                    }
                    @if need.blocked() {
                        (set_up_first("review-2fa-needed"))
                    } @else if need.asked {
                        label for="restore-code" { "Code from your authenticator app" }
                        input #restore-code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7" required
                            aria-invalid=[errors.code.as_ref().map(|_| "true")] aria-describedby=[errors.code.as_ref().map(|_| "restore-code-error")];
                        @if let Some(e) = &errors.code { p.error #restore-code-error role="alert" { (e) } }
                    }
                    div.actions-row {
                        button.danger type="submit" disabled[need.blocked()] aria-disabled=[need.blocked().then_some("true")] {
                            @if revert { "Revert data" } @else { "Restore data" }
                        }
                        a.button.secondary href=(origin.nav()) { "Cancel" }
                    }
                }
            }
        }
    };
    Ok(c.page(&title, origin.nav(), body))
}

async fn find_plan(c: &Console, id: &str, kind: &str) -> Result<RestorePlan, PageError> {
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    c.store
        .restore_plan(c.id(), id)
        .await?
        .filter(|p| p.kind == kind)
        .ok_or_else(PageError::not_found)
}

/// The review of a restore plan.
pub async fn restore_review(
    c: Console,
    Path((id, plan)): Path<(String, String)>,
) -> Result<Markup, PageError> {
    c.require(Role::SuperAdmin)?;
    let b = find_backup(&c, &id).await?;
    let plan = find_plan(&c, &plan, PLAN_RESTORE).await?;
    if plan.backup_id != Some(b.id) {
        return Err(PageError::not_found());
    }
    review_view(
        &c,
        &plan,
        &Origin::Restore(&b),
        &Answers::default(),
        &ReviewErrors::default(),
    )
    .await
}

/// The review of a revert plan.
pub async fn revert_review(
    c: Console,
    Path((id, plan)): Path<(String, String)>,
) -> Result<Markup, PageError> {
    c.require(Role::SuperAdmin)?;
    let imp = find_import(&c, &id).await?;
    let plan = find_plan(&c, &plan, PLAN_REVERT).await?;
    if plan.reverts_import != Some(imp.id) {
        return Err(PageError::not_found());
    }
    review_view(
        &c,
        &plan,
        &Origin::Revert(&imp),
        &Answers::default(),
        &ReviewErrors::default(),
    )
    .await
}

/// How a code checked out.
enum Code {
    Accepted,
    NotAsked,
    Missing,
    NotSetUp,
    Locked(i64),
    /// Wrong, or already used once.
    Wrong,
}

/// Checks a code from the user's authenticator app as the second sign-in step does: one step
/// of clock skew either way, and a step once accepted is spent for good. Wrong codes count like
/// failed sign-ins (and lock like them).
async fn check_code(state: &AppState, c: &Console, code: &str) -> Result<Code, PageError> {
    if c.session.auth_method == AuthMethod::Sso {
        return Ok(Code::NotAsked);
    }
    let user = &c.session.user;
    if !c
        .store
        .second_factor(c.id(), user.id)
        .await?
        .is_some_and(|f| f.enabled)
    {
        return Ok(Code::NotSetUp);
    }
    let code = code.trim().replace(' ', "");
    if code.is_empty() {
        return Ok(Code::Missing);
    }
    // The sign-in's own check: one step of clock skew either way, a step spent once.
    match crate::console::verify_second_factor(state, &c.store, c.id(), user, &code, false).await? {
        CodeCheck::Accepted => return Ok(Code::Accepted),
        CodeCheck::Locked(until) => return Ok(Code::Locked(until)),
        CodeCheck::Refused => {}
    }
    c.store
        .audit(
            c.id(),
            Some(user.id),
            &user.email,
            "restore.code_failed",
            &format!("user:{}", user.id),
            serde_json::json!({"message": "A wrong two-factor code was given to start a restore"}),
        )
        .await?;
    tokio::time::sleep(FAILURE_DELAY).await;
    Ok(Code::Wrong)
}

/// Applies a reviewed plan once everything is confirmed.
async fn apply(
    state: &AppState,
    c: &Console,
    plan: &RestorePlan,
    origin: &Origin<'_>,
    form: &[(String, String)],
) -> Result<Response, PageError> {
    let answers = Answers {
        understand_changes: !field(form, "understand_changes").is_empty(),
        understand_revert: !field(form, "understand_revert").is_empty(),
        overwrite_newer: !origin.is_revert() && !field(form, "overwrite_newer").is_empty(),
    };
    let mut errors = ReviewErrors::default();
    let given = &answers;
    let page = |status: StatusCode, errors: ReviewErrors| async move {
        Ok::<_, PageError>(reply(
            status,
            review_view(c, plan, origin, given, &errors).await?,
        ))
    };
    if let Some(i) = plan.import_id {
        errors.top = Some(format!(
            "This review was already applied (import {i}). Review again to restore more."
        ));
        return page(StatusCode::CONFLICT, errors).await;
    }
    if plan.expires_at <= now_ms() {
        errors.top =
            Some("This review has expired. Review again: the data may have changed since.".into());
        return page(StatusCode::CONFLICT, errors).await;
    }
    let verb = if origin.is_revert() {
        "revert"
    } else {
        "restore"
    };
    if !answers.understand_changes {
        errors.changes = Some(format!(
            "Tick this box to confirm that the {verb} changes your data."
        ));
    }
    if !answers.understand_revert {
        errors.revert = Some(if origin.is_revert() {
            "Tick this box to confirm that a reverted restore cannot be applied again.".into()
        } else {
            "Tick this box to confirm that the values it replaces come back only by reverting the restore.".into()
        });
    }
    if errors.changes.is_some() || errors.revert.is_some() {
        // The code is not looked at (nor spent) until both boxes are ticked.
        errors.top = Some(format!(
            "Nothing was changed: confirm both statements to {verb}."
        ));
        return page(StatusCode::BAD_REQUEST, errors).await;
    }
    match check_code(state, c, field(form, "code")).await? {
        Code::Accepted | Code::NotAsked => {}
        Code::NotSetUp => {
            errors.top = Some("Set up two-factor authentication first: a restore asks for a code from your authenticator app.".into());
            return page(StatusCode::FORBIDDEN, errors).await;
        }
        Code::Locked(until) => {
            errors.code = Some(format!(
                "Too many wrong codes. Try again after {} (UTC).",
                iso(until).get(11..16).unwrap_or("")
            ));
            return page(StatusCode::TOO_MANY_REQUESTS, errors).await;
        }
        Code::Missing => {
            errors.code = Some("Enter the code from your authenticator app.".into());
            return page(StatusCode::BAD_REQUEST, errors).await;
        }
        Code::Wrong => {
            errors.code = Some(
                "That code is not right, or was used already. Codes change every 30 seconds."
                    .into(),
            );
            return page(StatusCode::UNAUTHORIZED, errors).await;
        }
    }
    match apply_plan(
        &c.store,
        &c.account,
        plan.id,
        answers.overwrite_newer,
        &requester(c),
    )
    .await
    {
        Ok(imp) => {
            let done = if origin.is_revert() {
                "revert"
            } else {
                "restore"
            };
            Ok(Redirect::to(&format!("{IMPORTS}/{}?done={done}", imp.id)).into_response())
        }
        Err(StoreError::Conflict { message, .. }) => {
            // The plan may have been taken meanwhile: show it as it is now.
            let plan = c
                .store
                .restore_plan(c.id(), plan.id)
                .await?
                .unwrap_or_else(|| plan.clone());
            errors.top = Some(format!("Nothing was changed. {}", sentence(&message)));
            Ok(reply(
                StatusCode::CONFLICT,
                review_view(c, &plan, origin, &answers, &errors).await?,
            ))
        }
        Err(StoreError::Validation { message, .. }) => {
            errors.top = Some(format!("Nothing was changed. {}", sentence(&message)));
            page(StatusCode::BAD_REQUEST, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

/// "Restore data".
pub async fn apply_restore(
    State(state): State<AppState>,
    c: Console,
    Path((id, plan)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(field(&form, "_csrf"))?;
    let b = find_backup(&c, &id).await?;
    let plan = find_plan(&c, &plan, PLAN_RESTORE).await?;
    if plan.backup_id != Some(b.id) {
        return Err(PageError::not_found());
    }
    if let Some((status, message)) = not_restorable(&b) {
        return Ok(refused_page(&c, &b, status, &message));
    }
    apply(&state, &c, &plan, &Origin::Restore(&b), &form).await
}

/// "Revert data".
pub async fn apply_revert(
    State(state): State<AppState>,
    c: Console,
    Path((id, plan)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(field(&form, "_csrf"))?;
    let imp = find_import(&c, &id).await?;
    let plan = find_plan(&c, &plan, PLAN_REVERT).await?;
    if plan.reverts_import != Some(imp.id) {
        return Err(PageError::not_found());
    }
    apply(&state, &c, &plan, &Origin::Revert(&imp), &form).await
}

/// "Revert this restore": computes the revert's plan, then shows its review.
pub async fn revert(
    c: Console,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(field(&form, "_csrf"))?;
    let imp = find_import(&c, &id).await?;
    match plan_revert(&c.store, &c.account, imp.id, &requester(&c)).await {
        Ok(plan) => {
            Ok(Redirect::to(&format!("{IMPORTS}/{}/revert/{}", imp.id, plan.id)).into_response())
        }
        Err(StoreError::Validation { message, .. }) | Err(StoreError::Conflict { message, .. }) => {
            let top = html! { div.flash.warn #import-refused role="alert" { "This restore cannot be reverted. " (sentence(&message)) } };
            Ok(reply(
                StatusCode::CONFLICT,
                detail_view(&c, &imp, top).await?,
            ))
        }
        Err(e) => Err(e.into()),
    }
}
