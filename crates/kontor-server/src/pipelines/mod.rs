//! Pipelines and their stages: `/crm/v3/pipelines/{objectType}` (read, create, replace,
//! change, archive) and the older `/crm-pipelines/v1/pipelines/{objectType}`, which every tool
//! that shows or syncs deals and tickets reads first.
//!
//! They live as the options of the pipeline and stage properties (`kontor_domain::pipeline`),
//! so what the properties API shows and what a record may hold agree with what is read here.
//! A pipeline or stage that records use (live or in the recycle bin) cannot be archived: HubSpot
//! refuses that from its settings page and, since its 2026-09 API, by default from the API;
//! kontor always refuses, since a record left in a stage that no longer exists is orphaned.

mod edits;

pub use edits::{has_pipelines, Editor, StageInput};

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::{from_value, JsonBody};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::pipeline::{Pipeline, Stage};
use kontor_domain::time::iso;
use kontor_store::ObjectType;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The object type, if it can have pipelines.
async fn with_pipelines(ctx: &Ctx, name: &str) -> Result<ObjectType, ApiError> {
    let ot = ctx.object_type(name).await?;
    if has_pipelines(&ot) {
        Ok(ot)
    } else {
        Err(ApiError::validation(
            edits::no_pipelines_message(&ot),
            "objectType",
        ))
    }
}

async fn load(ctx: &Ctx, name: &str) -> Result<(ObjectType, Vec<Pipeline>), ApiError> {
    let ot = with_pipelines(ctx, name).await?;
    let pipelines = ctx.store.pipelines(ctx.id(), &ot).await?;
    Ok((ot, pipelines))
}

/// Who changes the pipelines: the request's token, as the audit log names it.
fn editor<'a>(ctx: &'a Ctx, ot: &'a ObjectType) -> Editor<'a> {
    Editor {
        store: &ctx.store,
        account: ctx.id(),
        ot,
        user_id: None,
        actor: format!("token:{}", ctx.token.name),
    }
}

fn find<'a>(pipelines: &'a [Pipeline], id: &str) -> Result<&'a Pipeline, ApiError> {
    pipelines
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| ApiError::not_found(format!("pipeline {id} does not exist")))
}

fn stage_missing(pipeline: &str, stage: &str) -> ApiError {
    ApiError::not_found(format!(
        "stage {stage} does not exist in pipeline {pipeline}"
    ))
}

fn stage_json(s: &Stage) -> Value {
    json!({
        "id": s.id,
        "label": s.label,
        "displayOrder": s.display_order,
        "metadata": s.metadata,
        "createdAt": iso(s.created_at),
        "updatedAt": iso(s.updated_at),
        "archived": false,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    })
}

fn pipeline_json(p: &Pipeline) -> Value {
    json!({
        "id": p.id,
        "label": p.label,
        "displayOrder": p.display_order,
        "stages": p.stages.iter().map(stage_json).collect::<Vec<_>>(),
        "createdAt": iso(p.created_at),
        "updatedAt": iso(p.updated_at),
        "archived": false,
    })
}

/// `PipelineStageInput` and `PipelineStagePatchInput`; an `id` names the stage to keep when a
/// pipeline is replaced.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageBody {
    id: Option<String>,
    label: Option<String>,
    display_order: Option<i64>,
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    archived: bool,
}

impl StageBody {
    fn input(&self) -> Result<StageInput, ApiError> {
        Ok(StageInput {
            id: self.id.clone(),
            label: self.label.clone(),
            display_order: self.display_order,
            metadata: self.metadata.as_ref().map(metadata).transpose()?,
        })
    }
}

/// `PipelineInput` and `PipelinePatchInput`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PipelineBody {
    label: Option<String>,
    display_order: Option<i64>,
    stages: Option<Vec<StageBody>>,
    #[serde(default)]
    archived: bool,
}

impl PipelineBody {
    fn stage_inputs(&self) -> Result<Vec<StageInput>, ApiError> {
        self.stages.iter().flatten().map(StageBody::input).collect()
    }
}

/// Metadata values are strings in HubSpot's API; numbers and booleans are taken as their text.
fn metadata(m: &Map<String, Value>) -> Result<BTreeMap<String, String>, ApiError> {
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            Value::Bool(b) => Ok((k.clone(), b.to_string())),
            _ => Err(ApiError::validation(
                format!("metadata.{k} must be a string"),
                format!("metadata.{k}"),
            )),
        })
        .collect()
}

/// `GET /crm/v3/pipelines/{objectType}`.
pub async fn list(ctx: Ctx, Path(object_type): Path<String>) -> Result<Json<Value>, ApiError> {
    let (_, pipelines) = load(&ctx, &object_type).await?;
    let results: Vec<Value> = pipelines.iter().map(pipeline_json).collect();
    Ok(Json(json!({ "results": results })))
}

/// `GET /crm/v3/pipelines/{objectType}/{pipelineId}`.
pub async fn get_one(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (_, pipelines) = load(&ctx, &object_type).await?;
    Ok(Json(pipeline_json(find(&pipelines, &id)?)))
}

/// `POST /crm/v3/pipelines/{objectType}`: a new pipeline with its stages.
pub async fn create(
    ctx: Ctx,
    Path(object_type): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let input: PipelineBody = from_value(body, "body")?;
    let ot = with_pipelines(&ctx, &object_type).await?;
    let stages = input.stage_inputs()?;
    let created = editor(&ctx, &ot)
        .create(
            input.label.clone().unwrap_or_default(),
            input.display_order,
            &stages,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(pipeline_json(&created))).into_response())
}

/// `PUT /crm/v3/pipelines/{objectType}/{pipelineId}`: replaces the pipeline's label, order and
/// stages. A stage given with the `id` of one of the pipeline's stages, or else with one's
/// label, keeps its id (and so its records); stages left out are archived, which records in
/// them prevent.
pub async fn replace(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let input: PipelineBody = from_value(body, "body")?;
    let ot = with_pipelines(&ctx, &object_type).await?;
    let stages = input.stage_inputs()?;
    let replaced = editor(&ctx, &ot)
        .replace(&id, input.label.clone(), input.display_order, &stages)
        .await?;
    Ok(Json(pipeline_json(&replaced)))
}

/// `PATCH /crm/v3/pipelines/{objectType}/{pipelineId}`: label, display order; `archived: true`
/// archives it as `DELETE` does.
pub async fn patch(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let input: PipelineBody = from_value(body, "body")?;
    if input.archived {
        return archive(ctx, Path((object_type, id)))
            .await
            .map(IntoResponse::into_response);
    }
    if input.stages.is_some() {
        return Err(ApiError::validation(
            "a pipeline's stages change through its stages endpoints or PUT",
            "stages",
        ));
    }
    let ot = with_pipelines(&ctx, &object_type).await?;
    let changed = editor(&ctx, &ot)
        .update(&id, input.label, input.display_order)
        .await?;
    Ok(Json(pipeline_json(&changed)).into_response())
}

/// `DELETE /crm/v3/pipelines/{objectType}/{pipelineId}`: refused while records are in it, for
/// the pipeline records created without one go in, and for an object type's last pipeline.
pub async fn archive(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let ot = with_pipelines(&ctx, &object_type).await?;
    editor(&ctx, &ot).archive(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages`.
pub async fn stages(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (_, pipelines) = load(&ctx, &object_type).await?;
    let p = find(&pipelines, &id)?;
    Ok(Json(
        json!({ "results": p.stages.iter().map(stage_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}`.
pub async fn stage(
    ctx: Ctx,
    Path((object_type, id, stage)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (_, pipelines) = load(&ctx, &object_type).await?;
    let p = find(&pipelines, &id)?;
    p.stage(&stage)
        .map(|s| Json(stage_json(s)))
        .ok_or_else(|| stage_missing(&id, &stage))
}

/// `POST /crm/v3/pipelines/{objectType}/{pipelineId}/stages`.
pub async fn create_stage(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let input: StageBody = from_value(body, "body")?;
    let ot = with_pipelines(&ctx, &object_type).await?;
    let created = editor(&ctx, &ot).create_stage(&id, &input.input()?).await?;
    Ok((StatusCode::CREATED, Json(stage_json(&created))).into_response())
}

/// `PUT` and `PATCH /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}`: label,
/// display order, metadata (replaced by `PUT`, merged by `PATCH`); `archived: true` archives it.
async fn change_stage(
    ctx: Ctx,
    (object_type, id, stage): (String, String, String),
    body: Value,
    replace: bool,
) -> Result<Response, ApiError> {
    let input: StageBody = from_value(body, "body")?;
    if input.archived {
        return archive_stage(ctx, Path((object_type, id, stage)))
            .await
            .map(IntoResponse::into_response);
    }
    let ot = with_pipelines(&ctx, &object_type).await?;
    let changed = editor(&ctx, &ot)
        .change_stage(&id, &stage, &input.input()?, replace)
        .await?;
    Ok(Json(stage_json(&changed)).into_response())
}

pub async fn replace_stage(
    ctx: Ctx,
    Path(path): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    change_stage(ctx, path, body, true).await
}

pub async fn patch_stage(
    ctx: Ctx,
    Path(path): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    change_stage(ctx, path, body, false).await
}

/// `DELETE /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}`: refused while records
/// are in the stage, and for a pipeline's last stage.
pub async fn archive_stage(
    ctx: Ctx,
    Path((object_type, id, stage)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let ot = with_pipelines(&ctx, &object_type).await?;
    editor(&ctx, &ot).archive_stage(&id, &stage).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /crm-pipelines/v1/pipelines/{objectType}`: the same, as the v1 API shaped it.
pub async fn list_v1(ctx: Ctx, Path(object_type): Path<String>) -> Result<Json<Value>, ApiError> {
    let (ot, pipelines) = load(&ctx, &object_type).await?;
    let deals = ot.name == "deals";
    // The pipeline a record without one goes in.
    let default = ot.defaults.first().map(|(_, v)| v.as_str());
    let object = match ot.name.as_str() {
        "deals" => "DEAL",
        "tickets" => "TICKET",
        _ => "CUSTOM",
    };
    let results: Vec<Value> = pipelines
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let stages: Vec<Value> = p
                .stages
                .iter()
                .map(|s| {
                    let mut v = json!({
                        "stageId": s.id,
                        "label": s.label,
                        "displayOrder": s.display_order,
                        "active": true,
                        "metadata": s.metadata,
                    });
                    if deals {
                        let probability: f64 = s
                            .metadata
                            .get("probability")
                            .and_then(|x| x.parse().ok())
                            .unwrap_or(0.0);
                        v["probability"] = json!(probability);
                        v["closedWon"] = json!(
                            s.metadata.get("isClosed").is_some_and(|c| c == "true")
                                && probability == 1.0
                        );
                    }
                    v
                })
                .collect();
            json!({
                "pipelineId": p.id,
                "label": p.label,
                "displayOrder": p.display_order,
                "active": true,
                "default": default.map_or(i == 0, |d| d == p.id),
                "objectType": object,
                "objectTypeId": ot.type_id,
                "stages": stages,
            })
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}
