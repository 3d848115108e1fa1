//! Settings → Account defaults → Data hosting: where the account's data lives, its data moves
//! (scheduled, running, past), and for super admins scheduling, rescheduling and cancelling a
//! move to the other region, by the rules of `kontor_jobs::moving::Policy`.

use super::*;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::time::{iso, now_ms};
use kontor_domain::{Region, Role};
use kontor_store::{Move, MoveState};
use maud::{html, Markup};
use serde::Deserialize;

const PATH: &str = "/app/settings/account/data-hosting";

fn region_name(r: Region) -> &'static str {
    match r {
        Region::Us => "United States (US)",
        Region::Eu => "European Union (EU)",
    }
}

fn other(r: Region) -> Region {
    match r {
        Region::Us => Region::Eu,
        Region::Eu => Region::Us,
    }
}

/// What a move does, in plain words, shown before anyone confirms one.
fn effects(to: Region) -> Markup {
    html! {
        ul #move-effects {
            li { "All of the account's data moves to " (to.label()) ": records and their history, properties, custom objects, owners, users, API tokens, associations, imports, restores, backups with their files, and the audit log. Record IDs and the account ID stay the same." }
            li { "The account stays usable while its data is copied. For a short final step (usually under a second) it is closed: API calls answer 477 with Retry-After, and the console shows that a data transfer is in progress." }
            li { "Imports are not accepted from 24 hours before the move starts until it ends." }
            li { "Forms keep accepting submissions throughout; those sent during the short final step are processed right after it (the submitter is told it may take up to a day). Form addresses stay the same." }
            li { "In-app notifications are not carried over to the new region." }
            li { "The search index is built anew in the new region from the records; until it has caught up (minutes for a million records), searches there take longer. Their answers are complete throughout." }
            li { "Integrations that call the API keep working with the same tokens; if they pin a region-specific address, update it after the move." }
            li { "Every super admin is told by e-mail when the move is scheduled, the week it happens, the day before, and when it is done." }
        }
    }
}

/// What a super admin should do after a move: (key, text). Keys are stored with the ticks.
fn checklist(sso: bool) -> Vec<(&'static str, &'static str)> {
    let mut items = vec![
        ("integrations", "Reconnect integrations (such as Salesforce) and check that they sync again."),
        ("addresses", "Update any region-specific API or console addresses your tools, bookmarks and scripts use."),
        ("smtp", "Check the e-mail (SMTP) settings the account's notifications are sent with."),
        ("settings", "Tell users that their notifications from before the move were not carried over, and that per-user notification settings start afresh."),
        ("embeds", "Check embed codes and form addresses on your websites and in e-mails."),
    ];
    if sso {
        items.push((
            "sso",
            "Confirm that single sign-on works with the sign-in address shown above.",
        ));
    }
    items
}

/// A short span of time as people read it: milliseconds below a second.
fn span(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn state_label(m: &Move) -> String {
    match m.state {
        MoveState::Running => format!("Running ({})", m.phase.replace('_', "-")),
        MoveState::Scheduled => "Scheduled".into(),
        MoveState::Done => "Done".into(),
        MoveState::Failed => "Failed".into(),
        MoveState::Canceled => "Cancelled".into(),
    }
}

async fn view(
    state: &AppState,
    c: &Console,
    top: Markup,
    error: Option<String>,
) -> Result<Markup, PageError> {
    let a = &c.account;
    let to = other(a.region);
    let moves = state.jobs.dir.moves_of(a.id).await?;
    let refusal = state.jobs.move_refusal(a, to).await?;
    let super_admin = c.role() == Role::SuperAdmin;
    let dates = if refusal.is_none() && super_admin {
        state.jobs.available_move_days(to).await?
    } else {
        Vec::new()
    };
    let sso = c.store.sso_config(a.id).await?;
    let cancel_hours = state.jobs.policy.cancel_hours;
    let ticks = match moves.iter().find(|m| m.state == MoveState::Done) {
        Some(m) => c.store.move_checklist(a.id, m.id).await?,
        None => Vec::new(),
    };
    Ok(c.page(
        "Data hosting",
        "/app/settings/account",
        html! {
            h1 { "Data hosting" }
            (top)
            @if let Some(e) = &error { p.error role="alert" { (e) } }
            section.card aria-labelledby="where" {
                h2 #where { "Where the data lives" }
                p #hosted { "This account's data is hosted in " strong { (region_name(a.region)) } "." }
            }
            section.card aria-labelledby="move" {
                h2 #move { "Moving the data to another region" }
                @if let Some(r) = &refusal {
                    p #move-refused { (r.to_string()) }
                } @else if !super_admin {
                    p.muted { "Only a super admin can move the account's data." }
                } @else if dates.is_empty() {
                    p { "No date is available for a move at the moment." }
                } @else {
                    p { "Before you confirm, this is what a move does:" }
                    (effects(to))
                    form method="post" action=(PATH) {
                        (csrf(c))
                        input type="hidden" name="to" value=(to.as_str());
                        label for="date" { "Date" }
                        select #date name="date" required {
                            @for d in &dates { option value=(d) { (d) } }
                        }
                        p.hint { "Only dates with room for a move are listed. The move starts at " (state.jobs.policy.start_hour_utc) ":00 UTC; it can be cancelled or moved until " (cancel_hours) " hours before." }
                        @if sso.is_some() {
                            p #sso-note { "This account signs in with single sign-on. After the move, the identity provider must list this sign-in address: " code { (crate::console::sso::redirect_uri(state)) } }
                            label { input type="checkbox" name="sso_confirmed" value="1" required; " The identity provider lists this sign-in address." }
                        }
                        label { input type="checkbox" name="confirm" value="1" required; " I have read what the move does." }
                        p { button type="submit" { "Move data to " (to.label()) } }
                    }
                }
            }
            @if let Some(done) = moves.iter().find(|m| m.state == MoveState::Done) {
                section.card aria-labelledby="after" {
                    h2 #after { "After the move" }
                    p { "Moved to " (region_name(done.to)) " on " (when(done.finished_at.unwrap_or(done.start_at))) ", scheduled by " (done.scheduled_by) "; the account was closed for " (span(done.frozen_ms(now_ms()).unwrap_or(0))) "." }
                    ul #move-checklist {
                        @for (key, text) in checklist(sso.is_some()) {
                            @let ticked = ticks.iter().find(|(k, _, _)| k == key);
                            li {
                                form method="post" action=(format!("{PATH}/{}/checklist", done.id)) {
                                    (csrf(c))
                                    input type="hidden" name="item" value=(key);
                                    input type="hidden" name="done" value=(if ticked.is_some() { "0" } else { "1" });
                                    @if let Some((_, by, at)) = ticked {
                                        s { (text) } " — done by " (by) " " (when(*at)) " "
                                        @if super_admin { button type="submit" { "Undo" } }
                                    } @else {
                                        (text) " "
                                        @if super_admin { button type="submit" { "Mark done" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="moves" {
                h2 #moves { "Data moves" }
                @if moves.is_empty() {
                    p.muted { "None yet." }
                } @else {
                    table #move-list {
                        thead { tr { th { "Move" } th { "To" } th { "Status" } th { "Starts" } th { "Scheduled by" } th { "Unavailable for" } th { "Finished" } th {} } }
                        tbody {
                            @for m in &moves {
                                tr {
                                    td { (m.id) }
                                    td { (region_name(m.to)) }
                                    td.status { (state_label(m)) @if let Some(e) = &m.error { @if m.state == MoveState::Failed { br; span.error { (e) } } } }
                                    td { time datetime=(iso(m.start_at)) { (iso(m.start_at)) } }
                                    td { (m.scheduled_by) }
                                    td { @if let Some(f) = m.frozen_ms(now_ms()) { (span(f)) } }
                                    td { @if let Some(f) = m.finished_at { (when(f)) } }
                                    td {
                                        @if super_admin && m.state == MoveState::Scheduled {
                                            form method="post" action=(format!("{PATH}/{}/cancel", m.id)) {
                                                (csrf(c))
                                                button type="submit" { "Cancel move" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

pub async fn hosting(
    State(state): State<AppState>,
    c: Console,
    q: QueryParams,
) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let top = match q.first("done") {
        Some("scheduled") => {
            html! { p.flash role="status" { "Data move scheduled. Every super admin has been told." } }
        }
        Some("canceled") => html! { p.flash role="status" { "Data move cancelled." } },
        _ => html! {},
    };
    view(&state, &c, top, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ScheduleForm {
    to: String,
    date: String,
    confirm: String,
    sso_confirmed: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

pub async fn schedule_move(
    State(state): State<AppState>,
    c: Console,
    Form(f): Form<ScheduleForm>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(&f.csrf)?;
    let refuse = |message: String| async {
        let page = view(&state, &c, html! {}, Some(message)).await?;
        Ok::<_, PageError>(reply(axum::http::StatusCode::BAD_REQUEST, page))
    };
    if f.confirm != "1" {
        return refuse("Confirm that you have read what the move does.".into()).await;
    }
    if c.store.sso_config(c.id()).await?.is_some() && f.sso_confirmed != "1" {
        return refuse(
            "Confirm that the identity provider lists the sign-in address shown.".into(),
        )
        .await;
    }
    let Some(to) = Region::parse(&f.to) else {
        return refuse(format!("Unknown region {:?}.", f.to)).await;
    };
    let me = &c.session.user;
    match state
        .jobs
        .schedule_move(&c.account, to, &f.date, &me.email, Some(me.id))
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("{PATH}?done=scheduled")).into_response()),
        Err(kontor_store::StoreError::Validation { message, .. }) => refuse(message).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: String,
}

pub async fn cancel_move(
    State(state): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(&f.csrf)?;
    let mv = own_move(&state, &c, &id).await?;
    let me = &c.session.user;
    match state
        .jobs
        .cancel_move(&c.account, &mv, &me.email, Some(me.id))
        .await
    {
        Ok(()) => Ok(Redirect::to(&format!("{PATH}?done=canceled")).into_response()),
        Err(kontor_store::StoreError::Validation { message, .. }) => {
            let page = view(&state, &c, html! {}, Some(message)).await?;
            Ok(reply(axum::http::StatusCode::CONFLICT, page))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TickForm {
    item: String,
    done: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

/// Ticks an item of the checklist after a move off (or on again); audited.
pub async fn tick_item(
    State(state): State<AppState>,
    c: Console,
    Path(id): Path<String>,
    Form(f): Form<TickForm>,
) -> Result<Response, PageError> {
    c.require(Role::SuperAdmin)?;
    c.check_csrf(&f.csrf)?;
    let mv = own_move(&state, &c, &id).await?;
    if mv.state != MoveState::Done {
        return Err(PageError::not_found());
    }
    let sso = c.store.sso_config(c.id()).await?.is_some();
    let Some((key, text)) = checklist(sso).into_iter().find(|(k, _)| *k == f.item) else {
        return Err(PageError::not_found());
    };
    let done = f.done == "1";
    let me = &c.session.user;
    c.store
        .tick_move_item(c.id(), mv.id, key, &me.email, done)
        .await?;
    log_action(
        &c,
        "data_move.checklist",
        &format!("move {}", mv.id),
        serde_json::json!({"item": key, "done": done, "message": format!("{} \"{text}\"", if done { "Ticked off" } else { "Unticked" })}),
    )
    .await?;
    Ok(Redirect::to(&format!("{PATH}#after")).into_response())
}

/// A move of the signed-in account by the id in the path; 404 for anything else.
async fn own_move(state: &AppState, c: &Console, id: &str) -> Result<Move, PageError> {
    let mv = match id.parse::<i64>() {
        Ok(id) => state.jobs.dir.get_move(id).await?,
        Err(_) => None,
    };
    mv.filter(|m| m.account_id == c.id())
        .ok_or_else(PageError::not_found)
}
