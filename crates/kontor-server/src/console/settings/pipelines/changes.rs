//! The changes the pipelines page posts: each through `crate::pipelines::Editor`, then back to
//! the page, with the refusal above it and next to what it is about.

use super::*;
use crate::pipelines::StageInput;
use axum::response::{IntoResponse, Response};
use axum::Form;
use std::collections::BTreeMap;

/// After a change: the page again, at the pipeline changed.
fn done(ot: &ObjectType, what: &str, anchor: Option<&str>) -> Response {
    let anchor = anchor.map(|a| format!("#{a}")).unwrap_or_default();
    Redirect::to(&format!("{}?done={what}{anchor}", base(ot))).into_response()
}

/// The page with a refusal, placed under `key` (and above the page).
async fn refused(
    c: &Console,
    ot: &ObjectType,
    e: kontor_store::StoreError,
    fields: &[(&str, &str)],
    key: &str,
    form: &PipelineForm,
    k: &Kept,
) -> Result<Response, PageError> {
    let e = match e {
        kontor_store::StoreError::Validation {
            message,
            code,
            in_field,
        } => kontor_store::StoreError::Validation {
            message: humane(&message),
            code,
            in_field,
        },
        other => other,
    };
    let mut errors = Errors::default();
    let status = place_error(e, fields, key, &mut errors)?;
    let page = pipelines_view(c, ot, form, &errors, k, html! {}).await?;
    Ok(reply(status, page))
}

/// The stages of a new pipeline from the form's lines: `Label`, `Label | 0.4` (deals) or
/// `Label | closed`.
fn parse_stages(kind: Kind, text: &str) -> Vec<StageInput> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (label, extra) = match line.split_once('|') {
                Some((l, x)) => (l.trim(), Some(x.trim())),
                None => (line, None),
            };
            let mut metadata = BTreeMap::new();
            match (kind, extra.filter(|x| !x.is_empty())) {
                (Kind::Deals, Some(x)) => {
                    metadata.insert("probability".to_string(), x.to_string());
                }
                (Kind::Other, Some(x)) => {
                    metadata.insert("ticketState".to_string(), x.to_uppercase());
                }
                _ => {}
            }
            StageInput {
                label: Some(label.to_string()),
                metadata: Some(metadata),
                ..StageInput::default()
            }
        })
        .collect()
}

/// A stage's metadata from the form: a probability (and whether that closes the deal), or a
/// state (and whether it is closed).
fn detail_metadata(kind: Kind, f: &PipelineForm) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    match kind {
        Kind::Deals => {
            let p = f.probability.trim().to_string();
            if let Ok(x) = p.parse::<f64>() {
                m.insert("isClosed".into(), (x == 0.0 || x == 1.0).to_string());
            }
            m.insert("probability".into(), p);
        }
        Kind::Other => {
            let state = f.state.trim().to_uppercase();
            m.insert("isClosed".into(), (state == "CLOSED").to_string());
            m.insert("ticketState".into(), state);
        }
    }
    m
}

pub async fn create_pipeline(
    c: Console,
    Path(name): Path<String>,
    Form(f): Form<PipelineForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let ot = object_type(&c, &name).await?;
    let stages = parse_stages(Kind::of(&ot.name), &f.stages);
    match editor(&c, &ot)
        .create(f.label.trim().to_string(), None, &stages)
        .await
    {
        Ok(p) => Ok(done(
            &ot,
            "pipeline-created",
            Some(&format!("pipeline-{}", p.id)),
        )),
        Err(e) => {
            let fields = [
                ("label", "label"),
                ("stages", "stages"),
                ("pipelineId", "label"),
            ];
            refused(&c, &ot, e, &fields, "label", &f, &Kept::new()).await
        }
    }
}

/// The confirmation page an archive asks for when the console script did not ask already.
fn confirm_archive(c: &Console, ot: &ObjectType, path: &str, title: &str, text: &str) -> Markup {
    confirm_page(
        c,
        &Confirm {
            title,
            text,
            path,
            action: "archive",
            button: "Archive",
            cancel: &base(ot),
            nav: "/app/settings/objects",
        },
    )
}

fn find<'a>(pipelines: &'a [Pipeline], id: &str) -> Result<&'a Pipeline, PageError> {
    pipelines
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(PageError::not_found)
}

/// Rename, move up or down, or archive a pipeline.
pub async fn change_pipeline(
    c: Console,
    Path((name, id)): Path<(String, String)>,
    Form(f): Form<PipelineForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let ot = object_type(&c, &name).await?;
    let pipelines = c.store.pipelines(c.id(), &ot).await?;
    let p = find(&pipelines, &id)?;
    let key = format!("pipeline-{id}");
    let ed = editor(&c, &ot);
    let result = match f.action.as_str() {
        "rename" => ed
            .update(&id, Some(f.label.trim().to_string()), None)
            .await
            .map(|_| "pipeline-saved"),
        "up" | "down" => ed
            .move_pipeline(&id, f.action == "up")
            .await
            .map(|_| "moved"),
        "archive" if f.confirm != "yes" => {
            let text = format!("The pipeline “{}” and its {} stages will no longer be offered for {}. A pipeline that records are in cannot be archived: move them to another pipeline first.", p.label, p.stages.len(), ot.label_plural.to_lowercase());
            let title = format!("Archive the pipeline “{}”?", p.label);
            let path = format!("{}/{id}", base(&ot));
            return Ok(confirm_archive(&c, &ot, &path, &title, &text).into_response());
        }
        "archive" => ed.archive(&id).await.map(|_| "pipeline-archived"),
        _ => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "Unknown action.",
            ))
        }
    };
    match result {
        Ok("pipeline-archived") => Ok(done(&ot, "pipeline-archived", None)),
        Ok(what) => Ok(done(&ot, what, Some(&key))),
        Err(e) => {
            let mut k = Kept::new();
            if f.action == "rename" {
                k.insert(format!("pipeline-label-{id}"), f.label.clone());
            }
            refused(&c, &ot, e, &[], &key, &PipelineForm::default(), &k).await
        }
    }
}

pub async fn add_stage(
    c: Console,
    Path((name, id)): Path<(String, String)>,
    Form(f): Form<PipelineForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let ot = object_type(&c, &name).await?;
    let kind = Kind::of(&ot.name);
    let mut metadata = detail_metadata(kind, &f);
    if kind == Kind::Deals && f.probability.trim().is_empty() {
        // Left to the rules, which ask for one.
        metadata.clear();
    }
    let input = StageInput {
        label: Some(f.label.trim().to_string()),
        metadata: Some(metadata),
        ..StageInput::default()
    };
    match editor(&c, &ot).create_stage(&id, &input).await {
        Ok(_) => Ok(done(&ot, "stage-added", Some(&format!("pipeline-{id}")))),
        Err(e) => {
            let k: Kept = [
                (format!("add-label-{id}"), f.label.clone()),
                (
                    format!("add-detail-{id}"),
                    if kind == Kind::Deals {
                        f.probability.clone()
                    } else {
                        f.state.clone()
                    },
                ),
            ]
            .into();
            refused(
                &c,
                &ot,
                e,
                &[],
                &format!("add-{id}"),
                &PipelineForm::default(),
                &k,
            )
            .await
        }
    }
}

/// Save (label and probability or state), move up or down, or archive a stage.
pub async fn change_stage(
    c: Console,
    Path((name, id, stage)): Path<(String, String, String)>,
    Form(f): Form<PipelineForm>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    c.check_csrf(&f.csrf)?;
    let ot = object_type(&c, &name).await?;
    let kind = Kind::of(&ot.name);
    let pipelines = c.store.pipelines(c.id(), &ot).await?;
    let p = find(&pipelines, &id)?;
    let s = p.stage(&stage).ok_or_else(PageError::not_found)?;
    let key = format!("stage-{stage}");
    let ed = editor(&c, &ot);
    let result = match f.action.as_str() {
        "save" => {
            let input = StageInput {
                label: Some(f.label.trim().to_string()),
                metadata: Some(detail_metadata(kind, &f)),
                ..StageInput::default()
            };
            ed.change_stage(&id, &stage, &input, false)
                .await
                .map(|_| "stage-saved")
        }
        "up" | "down" => ed
            .move_stage(&id, &stage, f.action == "up")
            .await
            .map(|_| "moved"),
        "archive" if f.confirm != "yes" => {
            let text = format!("The stage “{}” will no longer be part of the pipeline “{}” or its board. A stage that records are in cannot be archived: move them to another stage first.", s.label, p.label);
            let title = format!("Archive the stage “{}”?", s.label);
            let action = format!("{}/{id}/stages/{stage}", base(&ot));
            return Ok(confirm_archive(&c, &ot, &action, &title, &text).into_response());
        }
        "archive" => ed
            .archive_stage(&id, &stage)
            .await
            .map(|_| "stage-archived"),
        _ => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "Unknown action.",
            ))
        }
    };
    match result {
        Ok(what) => Ok(done(&ot, what, Some(&format!("pipeline-{id}")))),
        Err(e) => {
            let mut k = Kept::new();
            if f.action == "save" {
                k.insert(format!("stage-label-{stage}"), f.label.clone());
                let detail = if kind == Kind::Deals {
                    &f.probability
                } else {
                    &f.state
                };
                k.insert(format!("stage-detail-{stage}"), detail.clone());
            }
            refused(&c, &ot, e, &[], &key, &PipelineForm::default(), &k).await
        }
    }
}
