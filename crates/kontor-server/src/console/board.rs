//! The board of an object type with pipelines (deals, tickets, custom objects): one column per
//! stage of the chosen pipeline, in display order, with the count of records in it (and for
//! deals the sum of their amounts) and a card per record, the most recently changed first and
//! at most [`CARDS`] per column (a column's "Show more" raises that to [`MORE_CARDS`]).
//!
//! Moving a card is an ordinary record update (`Store::update_records` of the stage property,
//! as a console user), so the change log, the checks of the stage against the record's
//! pipeline and the history behave as for any edit. Each card has a stage select and a
//! "Move" button that post the change; the console script turns dropping a card on another
//! column into the same post and puts the board the server answers with in place.

use super::{Console, PageError};
use crate::params::QueryParams;
use crate::pipelines::has_pipelines;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::pipeline::{self, Pipeline};
use kontor_domain::{ChangeSource, Role};
use kontor_store::{Actor, ObjectType, Record, StageTotal, StoreError, UpdateInput};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Cards shown per column.
pub const CARDS: usize = 50;
/// Cards shown in the column whose "Show more" was followed.
pub const MORE_CARDS: usize = 500;

async fn object_type(c: &Console, name: &str) -> Result<ObjectType, PageError> {
    c.store
        .object_type(c.id(), name)
        .await?
        .ok_or_else(PageError::not_found)
}

/// The property that names a record on its card.
fn name_property(ot: &ObjectType) -> Option<String> {
    match ot.name.as_str() {
        "deals" => Some("dealname".into()),
        "tickets" => Some("subject".into()),
        _ => ot
            .primary_display
            .clone()
            .or_else(|| ot.default_properties.first().cloned()),
    }
}

fn record_name(ot: &ObjectType, r: &Record) -> String {
    name_property(ot)
        .and_then(|p| r.props.get(&p).cloned())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("{} {}", ot.label_singular, r.id))
}

/// A number with thousands separators and at most two decimals: `12,500`, `1,234.5`.
pub fn amount(x: f64) -> String {
    let rounded = (x * 100.0).round() / 100.0;
    let negative = rounded < 0.0;
    let text = format!("{:.2}", rounded.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let frac = frac.trim_end_matches('0');
    format!(
        "{}{grouped}{}{frac}",
        if negative { "-" } else { "" },
        if frac.is_empty() { "" } else { "." }
    )
}

fn plural(n: i64, ot: &ObjectType) -> String {
    let noun = if n == 1 {
        &ot.label_singular
    } else {
        &ot.label_plural
    };
    format!("{n} {}", noun.to_lowercase())
}

fn board_href(ot: &ObjectType, pipeline: &str, more: Option<&str>) -> String {
    let mut href = format!(
        "/app/objects/{}/board?pipeline={}",
        ot.name,
        urlencode(pipeline)
    );
    if let Some(s) = more {
        href.push_str(&format!("&more={}#column-{s}", urlencode(s)));
    }
    href
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The pipeline asked for, or the one records without a pipeline go in, or the first.
fn chosen<'a>(
    ot: &ObjectType,
    pipelines: &'a [Pipeline],
    asked: Option<&str>,
) -> Option<&'a Pipeline> {
    let by_id = |id: &str| pipelines.iter().find(|p| p.id == id);
    asked
        .and_then(by_id)
        .or_else(|| ot.defaults.iter().find_map(|(_, v)| by_id(v)))
        .or_else(|| pipelines.first())
}

/// A message above the board: what was moved, or why a move was refused.
enum Message {
    None,
    Moved(String),
    Refused(String),
}

async fn board_page(
    c: &Console,
    ot: &ObjectType,
    asked: Option<&str>,
    more: Option<&str>,
    message: Message,
) -> Result<Markup, PageError> {
    let pipelines = c.store.pipelines(c.id(), ot).await?;
    let list_href = format!("/app/objects/{}", ot.name);
    let deals = ot.name == "deals";
    let Some(p) = chosen(ot, &pipelines, asked) else {
        return Ok(c.page(
            &ot.label_plural,
            &list_href,
            html! {
                h1 { (ot.label_plural) }
                div.toolbar { a.button.secondary href=(list_href) { "List" } }
                div.card {
                    p { (ot.label_plural) " have no pipelines yet, so there is no board to show." }
                    @if c.role().includes(Role::Admin) {
                        p { a href=(format!("/app/settings/objects/{}/pipelines", ot.name)) { "Create a pipeline" } }
                    }
                }
            },
        ));
    };
    let stage_ids: Vec<String> = p.stages.iter().map(|s| s.id.clone()).collect();
    let totals = c
        .store
        .stage_totals(c.id(), ot, deals.then_some("amount"))
        .await?;
    let cards = c
        .store
        .stage_records(c.id(), ot, &stage_ids, CARDS, more, MORE_CARDS)
        .await?;
    let mut owners: HashMap<String, String> = HashMap::new();
    for r in cards.values().flatten() {
        let Some(o) = r.props.get("hubspot_owner_id") else {
            continue;
        };
        if owners.contains_key(o) {
            continue;
        }
        if let Ok(id) = o.parse::<i64>() {
            if let Some(owner) = c.store.owner(c.id(), id, false, false).await? {
                let name = format!("{} {}", owner.first_name, owner.last_name);
                let name = if name.trim().is_empty() {
                    owner.email
                } else {
                    name.trim().to_string()
                };
                owners.insert(o.clone(), name);
            }
        }
    }
    let in_pipeline: i64 = p
        .stages
        .iter()
        .map(|s| totals.get(&s.id).map_or(0, |t| t.live))
        .sum();
    let none = StageTotal::default();
    Ok(c.page(
        &format!("{} board", ot.label_plural),
        &list_href,
        html! {
            h1 { (ot.label_plural) }
            div.toolbar {
                a.button.secondary href=(list_href) { "List" }
                span.button aria-current="page" { "Board" }
                form method="get" action=(format!("/app/objects/{}/board", ot.name)) {
                    label.visually-hidden for="pipeline" { "Pipeline" }
                    select #pipeline name="pipeline" data-autosubmit {
                        @for x in &pipelines { option value=(x.id) selected[x.id == p.id] { (x.label) } }
                    }
                    button.secondary type="submit" { "Show" }
                }
                span.muted { (plural(in_pipeline, ot)) " in " (p.label) }
                @if c.role().includes(Role::Admin) {
                    a href=(format!("/app/settings/objects/{}/pipelines#pipeline-{}", ot.name, p.id)) { "Edit pipelines" }
                }
            }
            div #board-area {
                @match &message {
                    Message::None => {}
                    Message::Moved(m) => { p.flash #board-message role="status" { (m) } }
                    Message::Refused(m) => { p.flash.warn #board-message role="alert" { (m) } }
                }
                div.board #board role="region" data-pipeline=(p.id) aria-label=(format!("{} board of {}", ot.label_plural, p.label)) {
                    @for s in &p.stages {
                        @let t = totals.get(&s.id).unwrap_or(&none);
                        @let shown = cards.get(&s.id).map_or(&[][..], Vec::as_slice);
                        section.board-column id=(format!("column-{}", s.id)) data-stage=(s.id) aria-labelledby=(format!("column-{}-label", s.id)) {
                            header {
                                h2 id=(format!("column-{}-label", s.id)) { (s.label) }
                                p.totals {
                                    span.count { (plural(t.live, ot)) }
                                    @if deals { " · " span.sum title="Sum of the amounts" { (amount(t.sum)) } }
                                }
                            }
                            ol.cards {
                                @for r in shown {
                                    @let name = record_name(ot, r);
                                    li.board-card draggable="true" id=(format!("card-{}", r.id)) data-id=(r.id) data-stage=(s.id) {
                                        a.card-name href=(format!("/app/objects/{}/{}", ot.name, r.id)) draggable="false" { (name) }
                                        @if deals {
                                            @if let Some(a) = r.props.get("amount").and_then(|a| a.parse::<f64>().ok()) {
                                                div.meta.card-amount { "Amount " (amount(a)) }
                                            }
                                        }
                                        @if let Some(o) = r.props.get("hubspot_owner_id").and_then(|o| owners.get(o)) {
                                            div.meta.card-owner { "Owner " (o) }
                                        }
                                        form.move method="post" action=(format!("/app/objects/{}/{}/stage", ot.name, r.id)) {
                                            input type="hidden" name="_csrf" value=(c.session.csrf);
                                            input type="hidden" name="pipeline" value=(p.id);
                                            @if let Some(m) = more { input type="hidden" name="more" value=(m); }
                                            label.visually-hidden for=(format!("stage-of-{}", r.id)) { "Stage of " (name) }
                                            select id=(format!("stage-of-{}", r.id)) name="stage" {
                                                @for o in &p.stages { option value=(o.id) selected[o.id == s.id] { (o.label) } }
                                            }
                                            button.secondary type="submit" { "Move" }
                                        }
                                    }
                                }
                            }
                            @if (shown.len() as i64) < t.live {
                                p.muted.more {
                                    "Showing " (shown.len()) " of " (t.live) ". "
                                    @if more != Some(s.id.as_str()) {
                                        a href=(board_href(ot, &p.id, Some(&s.id))) { "Show more" }
                                    } @else {
                                        "Search the list for the others."
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

pub async fn board(
    c: Console,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Response, PageError> {
    let ot = object_type(&c, &name).await?;
    if !has_pipelines(&ot) {
        return Ok(Redirect::to(&format!("/app/objects/{}", ot.name)).into_response());
    }
    let message = match q.first("moved").and_then(|id| id.parse::<i64>().ok()) {
        Some(id) => match c.store.record(c.id(), &ot, id, false).await? {
            Some(r) => {
                let (_, stage_prop) = pipeline::property_names(&ot.name);
                let pipelines = c.store.pipelines(c.id(), &ot).await?;
                let stage = r
                    .props
                    .get(stage_prop)
                    .and_then(|s| pipeline::pipeline_of(&pipelines, s).and_then(|p| p.stage(s)))
                    .map_or_else(String::new, |s| s.label.clone());
                Message::Moved(format!("“{}” is now in {stage}.", record_name(&ot, &r)))
            }
            None => Message::None,
        },
        None => Message::None,
    };
    Ok(
        board_page(&c, &ot, q.first("pipeline"), q.first("more"), message)
            .await?
            .into_response(),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MoveForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    stage: String,
    pipeline: String,
    more: String,
}

/// Why the store refused a move, in words: the first value message, or the whole message.
fn reason(e: &StoreError, ot: &ObjectType) -> Option<String> {
    let (message, code) = match e {
        StoreError::Validation { message, code, .. } => (message, code.as_str()),
        StoreError::Conflict { message, .. } => (message, ""),
        _ => return None,
    };
    if code == "INVALID_OPTION" {
        return Some(format!(
            "That stage is not in this {}'s pipeline (it may have been archived). The board shows the pipeline as it is now.",
            ot.label_singular.to_lowercase()
        ));
    }
    let listed = message
        .strip_prefix("Property values were not valid: ")
        .and_then(|l| serde_json::from_str::<Vec<Value>>(l).ok())
        .map(|v| {
            v.iter()
                .filter_map(|x| x["message"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|m| !m.is_empty());
    Some(super::settings::sentence(
        &listed.unwrap_or_else(|| message.clone()),
    ))
}

/// Moves a record to another stage of its pipeline.
pub async fn move_record(
    c: Console,
    Path((name, id)): Path<(String, String)>,
    Form(f): Form<MoveForm>,
) -> Result<Response, PageError> {
    c.check_csrf(&f.csrf)?;
    let ot = object_type(&c, &name).await?;
    if !has_pipelines(&ot) {
        return Err(PageError::not_found());
    }
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    let r = c
        .store
        .record(c.id(), &ot, id, false)
        .await?
        .ok_or_else(PageError::not_found)?;
    let (_, stage_prop) = pipeline::property_names(&ot.name);
    let more = (!f.more.is_empty()).then_some(f.more.as_str());
    let back = |moved: bool| {
        let mut href = board_href(&ot, &f.pipeline, None);
        if moved {
            href.push_str(&format!("&moved={id}"));
        }
        if let Some(m) = more {
            href.push_str(&format!("&more={}", urlencode(m)));
        }
        href
    };
    if r.props.get(stage_prop) == Some(&f.stage) {
        return Ok(Redirect::to(&back(false)).into_response());
    }
    let pipelines = c.store.pipelines(c.id(), &ot).await?;
    let stage_label = pipeline::pipeline_of(&pipelines, &f.stage)
        .and_then(|p| p.stage(&f.stage))
        .map_or_else(
            || format!("Stage {}", f.stage),
            |s| format!("“{}”", s.label),
        );
    let mut props = Map::new();
    props.insert(stage_prop.to_string(), Value::String(f.stage.clone()));
    let actor = Actor {
        source: ChangeSource::Ui,
        source_id: Some(c.session.user.email.clone()),
        user_id: Some(c.session.user.id),
    };
    match c
        .store
        .update_records(
            c.id(),
            &ot,
            vec![UpdateInput {
                id,
                properties: props,
            }],
            &actor,
        )
        .await
    {
        Ok(_) => Ok(Redirect::to(&back(true)).into_response()),
        Err(e) => match reason(&e, &ot) {
            Some(why) => {
                let message = Message::Refused(format!(
                    "“{}” was not moved to {stage_label}. {why}",
                    record_name(&ot, &r)
                ));
                let page = board_page(&c, &ot, Some(&f.pipeline), more, message).await?;
                Ok((StatusCode::BAD_REQUEST, page).into_response())
            }
            None => Err(e.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::amount;

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(amount(0.0), "0");
        assert_eq!(amount(12500.0), "12,500");
        assert_eq!(amount(1234.5), "1,234.5");
        assert_eq!(amount(-1234567.891), "-1,234,567.89");
        assert_eq!(amount(999.999), "1,000");
    }
}
