//! Settings → Objects → Pipelines of one object type (deals, tickets, a custom object): the
//! pipelines with their stages; create a pipeline with its first stages, rename and reorder
//! pipelines and stages, add stages, change a deal stage's probability or another stage's
//! open/closed state, archive stages and pipelines (after a confirmation).
//!
//! Every change goes through `crate::pipelines::Editor`, as the API's do: the same rules
//! (`kontor_domain::pipeline::check`, nothing archived that records hold, not the default
//! pipeline) and the same audit entries, with the signed-in user as the actor. A refusal
//! comes back on the page, above it and next to what it is about.

use super::*;
use crate::console::{Console, PageError};
use crate::params::QueryParams;
use crate::pipelines::{has_pipelines, Editor};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Redirect;
use kontor_domain::pipeline::{Kind, Pipeline, Stage};
use kontor_domain::Role;
use kontor_store::{ObjectType, StageTotal};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::HashMap;

mod changes;
pub use changes::{add_stage, change_pipeline, change_stage, create_pipeline};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PipelineForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    /// What a button asks for: `rename`, `save`, `up`, `down`, `archive`.
    action: String,
    label: String,
    /// The new pipeline's stages, one per line.
    stages: String,
    probability: String,
    state: String,
    /// `yes` once an archive was confirmed.
    confirm: String,
}

fn base(ot: &ObjectType) -> String {
    format!("/app/settings/objects/{}/pipelines", ot.name)
}

async fn object_type(c: &Console, name: &str) -> Result<ObjectType, PageError> {
    let ot = c
        .store
        .object_type(c.id(), name)
        .await?
        .ok_or_else(PageError::not_found)?;
    if !has_pipelines(&ot) {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "No pipelines",
            format!(
                "{} have no pipelines; deals, tickets and custom objects do.",
                ot.label_plural
            ),
        ));
    }
    Ok(ot)
}

fn editor<'a>(c: &'a Console, ot: &'a ObjectType) -> Editor<'a> {
    Editor {
        store: &c.store,
        account: c.id(),
        ot,
        user_id: Some(c.session.user.id),
        actor: c.session.user.email.clone(),
    }
}

/// The rules' messages speak of the API's fields; people read words.
fn humane(message: &str) -> String {
    message
        .replace("needs metadata.probability,", "needs a probability,")
        .replace("ticketState is OPEN or CLOSED", "a stage is open or closed")
}

/// Input values sent back with a refusal, by input id.
type Kept = HashMap<String, String>;

fn kept<'a>(kept: &'a Kept, id: &str, stored: &'a str) -> &'a str {
    kept.get(id).map_or(stored, String::as_str)
}

/// The probability (deals) or the open/closed state of a stage, as its input shows it.
fn stage_detail(kind: Kind, s: &Stage) -> String {
    match kind {
        Kind::Deals => s.metadata.get("probability").cloned().unwrap_or_default(),
        Kind::Other => s
            .metadata
            .get("ticketState")
            .cloned()
            .unwrap_or_else(|| "OPEN".into()),
    }
}

/// The input for a stage's probability or state; `id` is the input's id, `form` the form it
/// belongs to when it stands outside it.
fn detail_input(kind: Kind, id: &str, form: Option<&str>, value: &str, label: &str) -> Markup {
    html! {
        label.visually-hidden for=(id) { (label) }
        @match kind {
            Kind::Deals => {
                input id=(id) form=[form] name="probability" type="text" inputmode="decimal" size="4" value=(value) placeholder="0.5";
            }
            Kind::Other => {
                select id=(id) form=[form] name="state" {
                    option value="OPEN" selected[value != "CLOSED"] { "Open" }
                    option value="CLOSED" selected[value == "CLOSED"] { "Closed" }
                }
            }
        }
    }
}

fn records_cell(ot: &ObjectType, t: StageTotal) -> Markup {
    let noun = |n: i64| {
        if n == 1 {
            ot.label_singular.to_lowercase()
        } else {
            ot.label_plural.to_lowercase()
        }
    };
    html! {
        (t.live) " " (noun(t.live))
        @if t.binned > 0 { br; span.muted { (t.binned) " in the recycle bin" } }
    }
}

/// A one-button form posting `action` to `href`.
fn button(
    c: &Console,
    href: &str,
    action: &str,
    text: &str,
    label: &str,
    disabled: bool,
) -> Markup {
    html! {
        form method="post" action=(href) {
            (csrf(c))
            input type="hidden" name="action" value=(action);
            button.secondary type="submit" aria-label=(label) disabled[disabled] { (text) }
        }
    }
}

fn archive_button(c: &Console, href: &str, text: &str, confirm: &str) -> Markup {
    html! {
        form method="post" action=(href) data-confirm=(confirm) {
            (csrf(c))
            input type="hidden" name="action" value="archive";
            button.danger type="submit" { (text) }
        }
    }
}

/// What every part of the page draws from.
struct Sheet<'a> {
    c: &'a Console,
    ot: &'a ObjectType,
    totals: &'a HashMap<String, StageTotal>,
    errors: &'a Errors,
    kept: &'a Kept,
}

impl Sheet<'_> {
    fn stage_row(&self, p: &Pipeline, i: usize, s: &Stage) -> Markup {
        let Sheet {
            c,
            ot,
            errors,
            kept: k,
            ..
        } = *self;
        let t = self.totals.get(&s.id).copied().unwrap_or_default();
        let kind = Kind::of(&ot.name);
        let href = format!("{}/{}/stages/{}", base(ot), p.id, s.id);
        let form_id = format!("save-{}", s.id);
        let key = format!("stage-{}", s.id);
        let label_id = format!("stage-label-{}", s.id);
        let detail_id = format!("stage-detail-{}", s.id);
        let detail = stage_detail(kind, s);
        let what = if kind == Kind::Deals {
            "Probability"
        } else {
            "State"
        };
        html! {
            tr id=(key) {
                td {
                    label.visually-hidden for=(label_id) { "Label of stage " (s.label) }
                    input id=(label_id) form=(form_id) name="label" type="text" value=(kept(k, &label_id, &s.label))
                        aria-invalid=[errors.get(&key).map(|_| "true")]
                        aria-describedby=[errors.get(&key).map(|_| format!("{key}-error"))];
                    @if let Some(e) = errors.get(&key) { p.error id=(format!("{key}-error")) { (e) } }
                }
                td { (detail_input(kind, &detail_id, Some(&form_id), kept(k, &detail_id, &detail), &format!("{what} of stage {}", s.label))) }
                td.num { (records_cell(ot, t)) }
                td {
                    div.toolbar {
                        form id=(form_id) method="post" action=(href) {
                            (csrf(c))
                            input type="hidden" name="action" value="save";
                            button type="submit" aria-label=(format!("Save stage {}", s.label)) { "Save" }
                        }
                        (button(c, &href, "up", "↑", &format!("Move stage {} up", s.label), i == 0))
                        (button(c, &href, "down", "↓", &format!("Move stage {} down", s.label), i + 1 == p.stages.len()))
                        (archive_button(c, &href, "Archive", &format!("Archive the stage “{}” of {}? It disappears from the pipeline and its board. A stage that records are in cannot be archived.", s.label, p.label)))
                    }
                }
            }
        }
    }

    fn pipeline_card(&self, p: &Pipeline, i: usize, count: usize) -> Markup {
        let Sheet {
            c,
            ot,
            errors,
            kept: k,
            ..
        } = *self;
        let kind = Kind::of(&ot.name);
        let href = format!("{}/{}", base(ot), p.id);
        let key = format!("pipeline-{}", p.id);
        let add_key = format!("add-{}", p.id);
        let is_default = ot.defaults.iter().any(|(_, v)| *v == p.id);
        let rename_id = format!("pipeline-label-{}", p.id);
        let add_label = format!("add-label-{}", p.id);
        let add_detail = format!("add-detail-{}", p.id);
        let what = if kind == Kind::Deals {
            "Probability"
        } else {
            "State"
        };
        html! {
            section.card.pipeline id=(key) aria-labelledby=(format!("{key}-title")) {
                h2 id=(format!("{key}-title")) {
                    (p.label)
                    @if is_default { " " span.muted { "(default)" } }
                }
                p.muted { "Pipeline ID " code { (p.id) } " · " a href=(format!("/app/objects/{}/board?pipeline={}", ot.name, p.id)) { "Open the board" } }
                @if let Some(e) = errors.get(&key) { p.error id=(format!("{key}-error")) { (e) } }
                div.toolbar {
                    form method="post" action=(href) {
                        (csrf(c))
                        input type="hidden" name="action" value="rename";
                        label.visually-hidden for=(rename_id) { "Label of pipeline " (p.label) }
                        input id=(rename_id) name="label" type="text" value=(kept(k, &rename_id, &p.label))
                            aria-describedby=[errors.get(&key).map(|_| format!("{key}-error"))];
                        button.secondary type="submit" aria-label=(format!("Rename pipeline {}", p.label)) { "Rename" }
                    }
                    (button(c, &href, "up", "Move up", &format!("Move pipeline {} up", p.label), i == 0))
                    (button(c, &href, "down", "Move down", &format!("Move pipeline {} down", p.label), i + 1 == count))
                    @if !is_default {
                        (archive_button(c, &href, "Archive pipeline", &format!("Archive the pipeline “{}” with its {} stages? A pipeline that records are in cannot be archived.", p.label, p.stages.len())))
                    }
                }
                table.stages {
                    thead { tr {
                        th scope="col" { "Stage" } th scope="col" { (what) }
                        th scope="col" { "Records" } th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for (j, s) in p.stages.iter().enumerate() {
                            (self.stage_row(p, j, s))
                        }
                    }
                }
                form.toolbar method="post" action=(format!("{href}/stages")) aria-label=(format!("Add a stage to {}", p.label)) {
                    (csrf(c))
                    label for=(add_label) { "New stage" }
                    input id=(add_label) name="label" type="text" value=(kept(k, &add_label, ""))
                        aria-invalid=[errors.get(&add_key).map(|_| "true")]
                        aria-describedby=[errors.get(&add_key).map(|_| format!("{add_key}-error"))];
                    (detail_input(kind, &add_detail, None, kept(k, &add_detail, ""), &format!("{what} of the new stage")))
                    button type="submit" aria-label=(format!("Add stage to {}", p.label)) { "Add stage" }
                }
                @if let Some(e) = errors.get(&add_key) { p.error id=(format!("{add_key}-error")) { (e) } }
            }
        }
    }
}

async fn pipelines_view(
    c: &Console,
    ot: &ObjectType,
    form: &PipelineForm,
    errors: &Errors,
    k: &Kept,
    top: Markup,
) -> Result<Markup, PageError> {
    let kind = Kind::of(&ot.name);
    let pipelines = c.store.pipelines(c.id(), ot).await?;
    let totals = c.store.stage_totals(c.id(), ot, None).await?;
    let sheet = Sheet {
        c,
        ot,
        totals: &totals,
        errors,
        kept: k,
    };
    let types: Vec<ObjectType> = c
        .store
        .object_types(c.id())
        .await?
        .into_iter()
        .filter(has_pipelines)
        .collect();
    let stages_hint = match kind {
        Kind::Deals => "One stage per line, with its probability of closing (0 to 1) after a bar: “Qualified | 0.4”. A probability of 1 is closed won, 0 closed lost.",
        Kind::Other => "One stage per line. Add “| closed” to a stage that closes the record: “Resolved | closed”.",
    };
    Ok(c.page(
        &format!("Pipelines of {}", ot.label_plural.to_lowercase()),
        "/app/settings/objects",
        html! {
            p { a href="/app/settings/objects" { "← Objects" } }
            h1 { "Pipelines of " (ot.label_plural.to_lowercase()) }
            (top)
            @if let Some((_, e)) = errors.0.first() {
                div.flash.warn #pipelines-error role="alert" { "Nothing was changed. " (e) }
            }
            form.toolbar method="get" action="/app/settings/objects/pipelines" {
                label for="type" { "Object" }
                select #type name="type" data-autosubmit {
                    @for t in &types { option value=(t.name) selected[t.name == ot.name] { (t.label_plural) } }
                }
                button.secondary type="submit" { "Show" }
            }
            p.muted {
                "Stages are listed in the order the board shows them. A pipeline or stage that records are in (in the recycle bin too) cannot be archived: move them first. "
                @if kind == Kind::Deals { "A deal stage's probability is a number from 0 to 1." }
            }
            @if pipelines.is_empty() { p.muted { (ot.label_plural) " have no pipelines yet." } }
            @for (i, p) in pipelines.iter().enumerate() {
                (sheet.pipeline_card(p, i, pipelines.len()))
            }
            section.card aria-labelledby="create-pipeline" {
                h2 #create-pipeline { "Create a pipeline" }
                form method="post" action=(base(ot)) {
                    (csrf(c))
                    (input("label", "Label", "text", &form.label, None, true, errors))
                    (textarea("stages", "Stages", &form.stages, Some(stages_hint), errors))
                    p { button type="submit" { "Create pipeline" } }
                }
            }
            (confirm_dialog("Archive?", "Archive"))
        },
    ))
}

/// The object chooser's target: the pipelines of the object chosen.
pub async fn pipelines_index(c: Console, q: QueryParams) -> Result<Redirect, PageError> {
    c.require(Role::Admin)?;
    let t = q.first("type").unwrap_or("deals");
    Ok(Redirect::to(&format!(
        "/app/settings/objects/{}/pipelines",
        form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
    )))
}

pub async fn pipelines(
    c: Console,
    Path(name): Path<String>,
    q: QueryParams,
) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let ot = object_type(&c, &name).await?;
    pipelines_view(
        &c,
        &ot,
        &PipelineForm::default(),
        &Errors::default(),
        &Kept::new(),
        notice(&q),
    )
    .await
}
