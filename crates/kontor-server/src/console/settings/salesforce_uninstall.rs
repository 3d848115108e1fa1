//! Settings → Integrations → Salesforce → Disconnect: the impact preview, the choices and the
//! typed confirmation, the uninstall's progress and outcome; then the reassignment of the
//! Salesforce-only owners' records (proposed users, one revertible job) and the owner cleanup.
//! Admins only; every step is audited (in the store, with what it does).

use super::*;
use crate::salesforce::uninstall::{
    self as un, propose, user_owners, CONFIRMATION, REASONS, SALESFORCE_SIDE,
};
use crate::AppState;
use axum::extract::{Path, State};
use axum::Form;
use kontor_domain::ChangeSource;
use kontor_store::{SalesforceOwner, UninstallImpact, UninstallRequest};

const PAGE: &str = "/app/settings/integrations/salesforce";
const UNINSTALL: &str = "/app/settings/integrations/salesforce/uninstall";
const OWNERS: &str = "/app/settings/integrations/salesforce/owners";
const CLEANUP: &str = "/app/settings/integrations/salesforce/owners/cleanup";

/// "1 company", "3 contacts": a count of records of a type (by name or type id).
fn records(n: i64, type_name: &str) -> String {
    let b = kontor_domain::BuiltinObject::find(type_name);
    let label = match b {
        Some(b) if n == 1 => b.label_singular,
        Some(b) => b.label_plural,
        None => type_name,
    };
    format!("{n} {}", label.to_lowercase())
}

/// "1 owner", "2 owners".
fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn impact_view(i: &UninstallImpact) -> Markup {
    let owned: i64 = i.owned_by_salesforce_only.values().sum();
    html! {
        section.card aria-labelledby="impact" {
            h2 #impact { "What uninstalling does" }
            h3 { "Stays in kontor" }
            ul #impact-stays {
                @for (t, n) in &i.records { li { (records(*n, t)) " synced with Salesforce" } }
                @if i.records.is_empty() { li { "No records were synced with Salesforce." } }
                li #impact-properties { (count(i.properties, "Salesforce property", "Salesforce properties")) " (the “Salesforce information” group) and the " (count(i.values, "value", "values")) " they hold" }
            }
            h3 { "Removed" }
            ul #impact-removed {
                li #impact-mappings { (count(i.mappings, "field mapping", "field mappings")) " and the integration's settings (inclusion list, budget, stages)" }
                li { "The id crosswalk of " (count(i.links, "linked record", "linked records")) ", the owner map (" (count(i.owner_map, "Salesforce user", "Salesforce users")) ") and the sync state" }
                li { (count(i.errors, "open sync error", "open sync errors")) }
            }
            h3 { "Needs you" }
            ul #impact-needs {
                li #impact-owned {
                    (count(owned, "record", "records")) " owned by " (count(i.salesforce_only_owners, "Salesforce-only owner", "Salesforce-only owners")) " (owners with no user here)"
                    @if owned > 0 {
                        ": " (i.owned_by_salesforce_only.iter().filter(|(_, n)| **n > 0).map(|(t, n)| records(*n, t)).collect::<Vec<_>>().join(", "))
                        ". After the uninstall you reassign them to users."
                    }
                }
                li #impact-pending { (count(i.pending_changes, "change", "changes")) " made in kontor and not yet sent to Salesforce" }
            }
        }
    }
}

fn sync_errors_warning() -> Markup {
    html! {
        p.warning #not-a-fix role="note" {
            "Uninstalling and reinstalling is not a fix for sync errors: a reinstall starts from the same data and meets the same errors. "
            a href=(format!("{PAGE}#sf-errors")) { "See the sync errors" }
            " and their reasons, and retry them after fixing the cause."
        }
    }
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct UninstallForm {
    reason: String,
    details: String,
    pending: String,
    data: String,
    confirmation: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

fn confirm_form(c: &Console, f: &UninstallForm, i: &UninstallImpact, errors: &Errors) -> Markup {
    let pending = if f.pending.is_empty() {
        "push"
    } else {
        f.pending.as_str()
    };
    let data = if f.data.is_empty() {
        "keep"
    } else {
        f.data.as_str()
    };
    html! {
        section.card aria-labelledby="confirm" {
            h2 #confirm { "Uninstall Salesforce" }
            form #uninstall-form method="post" action=(UNINSTALL) {
                (csrf(c))
                (select("reason", "Why are you uninstalling?", &std::iter::once((String::new(), "Choose a reason".to_string())).chain(REASONS.iter().map(|r| (r.to_string(), r.to_string()))).collect::<Vec<_>>(), &f.reason, errors))
                (input("details", "Anything to add (optional)", "text", &f.details, None, false, errors))
                fieldset #pending-choice {
                    legend { "The " (count(i.pending_changes, "change", "changes")) " not yet sent to Salesforce" }
                    label { input type="radio" name="pending" value="push" checked[pending == "push"]; " Send them to Salesforce first, then disconnect" }
                    label { input type="radio" name="pending" value="discard" checked[pending == "discard"]; " Discard them: Salesforce never gets them" }
                }
                fieldset #data-choice {
                    legend { "The integration's own data (settings, mappings, id crosswalk, owner map, sync state)" }
                    label { input type="radio" name="data" value="keep" checked[data == "keep"]; " Keep it for 48 hours: connecting the same org again within that time re-links the records instead of duplicating them" }
                    label { input type="radio" name="data" value="delete" checked[data == "delete"]; " Delete it now" }
                    p.muted { "What is not kept cannot be recovered later: after 48 hours, or at once if you delete it now, a new connection starts from nothing and matches records by e-mail only. Records, the Salesforce properties and their values stay either way." }
                }
                (input("confirmation", &format!("Type “{CONFIRMATION}” to confirm"), "text", &f.confirmation, None, true, errors))
                (error("uninstall", errors))
                div.actions-row {
                    button.danger #uninstall-button type="submit" { "Uninstall Salesforce" }
                    a.button.secondary href=(PAGE) { "Cancel" }
                }
            }
        }
    }
}

/// `GET …/uninstall`: the preview, and with `?step=confirm` the choices and confirmation.
pub async fn page(c: Console, q: QueryParams) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    if let Some(u) = c.store.open_salesforce_uninstall(c.id()).await? {
        return Ok(Redirect::to(&format!("{UNINSTALL}/{}", u.id)).into_response());
    }
    let conn = c
        .store
        .salesforce_connection(c.id())
        .await?
        .filter(|s| s.state != kontor_store::SF_UNINSTALLED);
    let Some(conn) = conn else {
        return Ok(Redirect::to(PAGE).into_response());
    };
    let impact = c.store.salesforce_uninstall_impact(c.id()).await?;
    let confirm = q.first("step") == Some("confirm");
    Ok(view(
        &c,
        &conn.org_name,
        &impact,
        confirm,
        &UninstallForm::default(),
        &Errors::default(),
    )
    .into_response())
}

fn view(
    c: &Console,
    org: &str,
    impact: &UninstallImpact,
    confirm: bool,
    f: &UninstallForm,
    errors: &Errors,
) -> Markup {
    c.page(
        "Uninstall Salesforce",
        PAGE,
        html! {
            h1 { "Disconnect Salesforce (" (org) ")" }
            (sync_errors_warning())
            (impact_view(impact))
            @if confirm {
                (confirm_form(c, f, impact, errors))
            } @else {
                div.actions-row {
                    a.button #continue href=(format!("{UNINSTALL}?step=confirm")) { "Continue" }
                    a.button.secondary href=(PAGE) { "Cancel" }
                }
            }
        },
    )
}

/// `POST …/uninstall`: checks the form and starts the uninstall job.
pub async fn start(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<UninstallForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let Some(conn) = c
        .store
        .salesforce_connection(c.id())
        .await?
        .filter(|s| s.state != kontor_store::SF_UNINSTALLED)
    else {
        return Ok(Redirect::to(PAGE).into_response());
    };
    let mut errors = Errors::default();
    if !REASONS.contains(&f.reason.as_str()) {
        errors.add("reason", "Choose the reason for uninstalling.");
    }
    if f.pending != "push" && f.pending != "discard" {
        errors.add(
            "uninstall",
            "Choose what happens to the changes not yet sent.",
        );
    }
    if f.data != "keep" && f.data != "delete" {
        errors.add(
            "uninstall",
            "Choose whether the integration's data is kept for 48 hours.",
        );
    }
    if f.confirmation.trim() != CONFIRMATION {
        errors.add(
            "confirmation",
            format!("Type the words “{CONFIRMATION}” exactly."),
        );
    }
    if errors.is_empty() {
        let reason = if f.details.trim().is_empty() {
            f.reason.clone()
        } else {
            format!("{}: {}", f.reason, f.details.trim())
        };
        let me = &c.session.user;
        let req = UninstallRequest {
            reason,
            push_pending: f.pending == "push",
            keep_data: f.data == "keep",
        };
        match un::start(
            &state.dir,
            &c.store,
            &c.account,
            &req,
            CONFIRMATION,
            Some(me.id),
            &me.email,
        )
        .await
        {
            Ok(u) => return Ok(Redirect::to(&format!("{UNINSTALL}/{}", u.id)).into_response()),
            Err(e) => {
                let status = place_error(
                    e,
                    &[("reason", "reason"), ("confirmation", "confirmation")],
                    "uninstall",
                    &mut errors,
                )?;
                let impact = c.store.salesforce_uninstall_impact(c.id()).await?;
                return Ok(reply(
                    status,
                    view(&c, &conn.org_name, &impact, true, &f, &errors),
                ));
            }
        }
    }
    let impact = c.store.salesforce_uninstall_impact(c.id()).await?;
    Ok(reply(
        StatusCode::BAD_REQUEST,
        view(&c, &conn.org_name, &impact, true, &f, &errors),
    ))
}

/// `GET …/uninstall/{id}`: the uninstall's progress (the page refreshes itself) and outcome.
pub async fn status(c: Console, Path(id): Path<String>) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let u = match id.parse::<i64>() {
        Ok(id) => c.store.salesforce_uninstall(c.id(), id).await?,
        Err(_) => None,
    };
    let Some(u) = u else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such uninstall.",
        ));
    };
    let open = u.state == "queued" || u.state == "running";
    let owned = u
        .outcome
        .as_ref()
        .and_then(|o| o["salesforceOnlyOwners"].as_i64())
        .unwrap_or(0);
    Ok(c.page(
        "Uninstalling Salesforce",
        PAGE,
        html! {
            @if open { meta http-equiv="refresh" content="2"; }
            h1 { "Uninstall of Salesforce (" (u.org_name) ")" }
            section.card aria-labelledby="progress" {
                h2 #progress { "Progress" }
                dl.facts {
                    dt { "State" }
                    dd #uninstall-state {
                        @match u.state.as_str() {
                            "queued" => "Waiting to start",
                            "running" => @if u.pending == "push" { "Sending the pending changes, then disconnecting…" } @else { "Disconnecting…" },
                            "done" => "Uninstalled",
                            _ => "Stopped",
                        }
                    }
                    dt { "Reason" } dd { (u.reason) }
                    dt { "Pending changes" } dd { @if u.pending == "push" { "Sent first" } @else { "Discarded" } }
                    dt { "The integration's data" } dd { @if u.keep_data { "Kept for 48 hours" } @else { "Deleted at once" } }
                    dt { "Asked by" } dd { (u.requested_by_name) " · " (when(u.created_at)) }
                }
                @if let Some(o) = &u.outcome { p #uninstall-outcome role="status" { (o["summary"].as_str().unwrap_or_default()) } }
                @if let Some(e) = &u.error { p.error #uninstall-error role="alert" { (e) " The integration is still connected, paused." } }
            }
            @if u.state == "done" {
                @if owned > 0 {
                    section.card aria-labelledby="owners-next" {
                        h2 #owners-next { "Reassign the Salesforce owners' records" }
                        p { "Contacts, companies and deals are still owned by owners that came from Salesforce and have no user here. You were sent an e-mail with these steps." }
                        p { a.button #reassign-link href=(OWNERS) { "Reassign owners" } }
                    }
                }
                section.card aria-labelledby="sf-side" {
                    h2 #sf-side { "To remove in Salesforce" }
                    ul #salesforce-side { @for s in SALESFORCE_SIDE { li { (s) } } }
                }
            }
            p { a href=(PAGE) { "Back to Salesforce" } }
        },
    )
    .into_response())
}

fn owner_counts(o: &SalesforceOwner) -> Markup {
    html! {
        @for (t, (live, binned)) in &o.records {
            span.count { (records(*live, t)) @if *binned > 0 { " (+" (binned) " in the recycle bin)" } } " "
        }
        @if o.records.is_empty() { span.muted { "No records" } }
    }
}

fn owner_name(o: &kontor_store::Owner) -> String {
    let n = format!("{} {}", o.first_name, o.last_name)
        .trim()
        .to_string();
    if n.is_empty() {
        o.email.clone()
    } else {
        format!("{n} ({})", o.email)
    }
}

/// `GET …/owners`: the reassignment page.
pub async fn owners(c: Console, q: QueryParams) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    owners_view(&c, &q, &Errors::default(), StatusCode::OK).await
}

async fn owners_view(
    c: &Console,
    q: &QueryParams,
    errors: &Errors,
    status: StatusCode,
) -> Result<Response, PageError> {
    let list = c.store.salesforce_only_owners(c.id()).await?;
    let users = user_owners(&c.store, c.id()).await?;
    let runs = c.store.reassignments(c.id(), 10).await?;
    let running = runs
        .iter()
        .any(|r| r.state == "queued" || r.state == "running");
    let with_records: Vec<&SalesforceOwner> = list.iter().filter(|o| o.live() > 0).collect();
    let flash = match (q.first("done"), running) {
        (Some("reassign"), true) => {
            Some("The reassignment has started; this page shows its progress.")
        }
        (Some("revert"), true) => {
            Some("The revert has started: records go back to the owners they had.")
        }
        (Some("reassign" | "revert"), false) => Some("Done: see the reassignments below."),
        _ => None,
    };
    let page = c.page(
        "Reassign Salesforce owners",
        PAGE,
        html! {
            @if running { meta http-equiv="refresh" content="2"; }
            h1 { "Reassign Salesforce owners" }
            @if let Some(m) = flash { p.flash role="status" { (m) } }
            p { "These owners came from Salesforce and have no user in kontor. Give their contacts, companies, deals and tasks to owners who are users; the reassignment runs in the background and can be reverted." }
            (error("reassign", errors))
            @if with_records.is_empty() {
                p #no-owned { "No live record is owned by a Salesforce-only owner." }
            } @else {
                form #reassign-form method="post" action=(OWNERS) {
                    (csrf(c))
                    input type="hidden" name="action" value="reassign";
                    table #owner-list {
                        thead { tr { th { "Salesforce owner" } th { "Records" } th { "Give them to" } } }
                        tbody {
                            @for o in &with_records {
                                @let proposed = propose(&o.owner, &users);
                                tr data-owner=(o.owner.id) {
                                    td { (owner_name(&o.owner)) }
                                    td { (owner_counts(o)) }
                                    td {
                                        label.visually-hidden for=(format!("to-{}", o.owner.id)) { "New owner for " (owner_name(&o.owner)) }
                                        select id=(format!("to-{}", o.owner.id)) name=(format!("to_{}", o.owner.id)) {
                                            option value="" selected[proposed.is_none()] { "Leave as is" }
                                            @for u in &users {
                                                option value=(u.id) selected[proposed.is_some_and(|p| p.id == u.id)] { (owner_name(u)) }
                                            }
                                        }
                                        @if proposed.is_some() { " " span.muted.proposed { "proposed" } }
                                    }
                                }
                            }
                        }
                    }
                    p { button #reassign-button type="submit" disabled[running] { "Reassign records" } }
                }
            }
            @if !runs.is_empty() {
                section.card aria-labelledby="runs" {
                    h2 #runs { "Reassignments" }
                    table #reassignments {
                        thead { tr { th { "#" } th { "State" } th { "Moved" } th { "Left as they were" } th { "When" } th {} } }
                        tbody {
                            @for r in &runs {
                                tr data-reassignment=(r.id) {
                                    td { (r.id) @if let Some(o) = r.reverts { " (reverts " (o) ")" } }
                                    td.state { (r.state) @if let Some(e) = &r.error { ": " (e) } @if let Some(b) = r.reverted_by { " · reverted by " (b) } }
                                    td.moved { (r.moved) }
                                    td { (r.skipped) }
                                    td { (when(r.created_at)) }
                                    td {
                                        @if r.state == "done" && r.reverts.is_none() && r.reverted_by.is_none() && !running {
                                            form.inline method="post" action=(OWNERS) data-confirm="Give every record this reassignment moved back to the Salesforce owner it had? Records someone has given another owner since are left alone." {
                                                (csrf(c))
                                                input type="hidden" name="action" value="revert";
                                                input type="hidden" name="id" value=(r.id);
                                                button.secondary type="submit" { "Revert" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p { a.button #cleanup-link href=(CLEANUP) { "Go to owner cleanup page" } }
            (confirm_dialog("Revert the reassignment?", "Revert"))
        },
    );
    Ok((status, page).into_response())
}

/// `POST …/owners`: `reassign` (one `to_{owner}` per row) or `revert` (`id`).
pub async fn owners_action(
    c: Console,
    Form(f): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let get = |k: &str| {
        f.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    c.check_csrf(get("_csrf"))?;
    let me = &c.session.user;
    let mut errors = Errors::default();
    let result = match get("action") {
        "reassign" => {
            let pairs: Vec<(i64, i64)> = f
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("to_")?.parse().ok()?, v.parse().ok()?)))
                .collect();
            c.store
                .request_owner_reassignment(
                    c.id(),
                    &pairs,
                    ChangeSource::Ui,
                    Some(me.id),
                    &me.email,
                )
                .await
                .map(|_| "reassign")
        }
        "revert" => {
            let id = get("id").parse::<i64>().unwrap_or_default();
            c.store
                .request_reassignment_revert(c.id(), id, ChangeSource::Ui, Some(me.id), &me.email)
                .await
                .map(|_| "revert")
        }
        _ => return Ok(Redirect::to(OWNERS).into_response()),
    };
    match result {
        Ok(done) => Ok(Redirect::to(&format!("{OWNERS}?done={done}")).into_response()),
        Err(e) => {
            let status = place_error(e, &[], "reassign", &mut errors)?;
            owners_view(&c, &QueryParams::default(), &errors, status).await
        }
    }
}

/// `GET …/owners/cleanup`: the Salesforce-only owners and what still references them.
pub async fn cleanup(c: Console, q: QueryParams) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let list = c.store.salesforce_only_owners(c.id()).await?;
    let removed = q.first("removed").and_then(|n| n.parse::<usize>().ok());
    Ok(c.page(
        "Owner cleanup",
        PAGE,
        html! {
            h1 { "Owner cleanup" }
            @if let Some(n) = removed { p.flash #removed role="status" { (n) " Salesforce owner(s) removed." } }
            p { "Salesforce-only owners that no record references, live or in the recycle bin, are removed. One that records still reference stays, with the records named here: reassign them first." }
            @if list.is_empty() {
                p #no-salesforce-owners { "There are no Salesforce-only owners." }
            } @else {
                table #cleanup-list {
                    thead { tr { th { "Salesforce owner" } th { "Still referenced by" } } }
                    tbody {
                        @for o in &list {
                            tr data-owner=(o.owner.id) { td { (owner_name(&o.owner)) } td { (owner_counts(o)) } }
                        }
                    }
                }
                form method="post" action=(CLEANUP) data-confirm="Remove every Salesforce owner that no record references? Owners still referenced stay." {
                    (csrf(&c))
                    input type="hidden" name="action" value="remove";
                    button.danger #remove-owners type="submit" { "Remove Salesforce owners" }
                }
            }
            p { a href=(OWNERS) { "Back to the reassignment" } }
            (confirm_dialog("Remove the Salesforce owners?", "Remove"))
        },
    )
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CleanupForm {
    action: String,
    confirm: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

/// `POST …/owners/cleanup`: removes the owners nothing references, after a confirmation.
pub async fn cleanup_action(c: Console, Form(f): Form<CleanupForm>) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    if f.action != "remove" {
        return Ok(Redirect::to(CLEANUP).into_response());
    }
    if f.confirm != "yes" {
        let q = Confirm {
            title: "Remove the Salesforce owners?",
            text: "Every Salesforce-only owner that no record references is removed. Owners still referenced stay.",
            path: CLEANUP,
            action: "remove",
            button: "Remove",
            cancel: CLEANUP,
            nav: PAGE,
        };
        return Ok(confirm_page(&c, &q).into_response());
    }
    let me = &c.session.user;
    let (removed, _) = c
        .store
        .remove_salesforce_owners(c.id(), Some(me.id), &me.email)
        .await?;
    Ok(Redirect::to(&format!("{CLEANUP}?removed={}", removed.len())).into_response())
}
