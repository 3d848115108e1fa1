//! Pipelines and their stages, read: `/crm/v3/pipelines/{objectType}` and the older
//! `/crm-pipelines/v1/pipelines/{objectType}`, which every tool that shows or syncs deals and
//! tickets reads first.
//!
//! A deal's pipelines are the options of its `pipeline` property and the stages those of
//! `dealstage` (a ticket's: `hs_pipeline`, `hs_pipeline_stage`), so what the properties API
//! shows and what a record may hold agree with what is read here. Each pipeline lists every
//! stage. Creating, changing and archiving pipelines is not served yet (501).

use crate::auth::Ctx;
use crate::error::ApiError;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::Json;
use kontor_domain::property::PropertyDef;
use kontor_domain::time::iso;
use serde_json::{json, Value};

/// A deal stage's probability of closing, for the stages every account starts with.
const PROBABILITIES: &[(&str, &str)] = &[
    ("appointmentscheduled", "0.2"),
    ("qualifiedtobuy", "0.4"),
    ("presentationscheduled", "0.6"),
    ("decisionmakerboughtin", "0.8"),
    ("contractsent", "0.9"),
    ("closedwon", "1.0"),
    ("closedlost", "0.0"),
];

/// The kind of object whose pipelines are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deals,
    Tickets,
    /// A custom object: none yet.
    Custom,
}

struct Pipelines {
    kind: Kind,
    type_id: String,
    pipeline: Option<PropertyDef>,
    stage: Option<PropertyDef>,
}

async fn load(ctx: &Ctx, object_type: &str) -> Result<Pipelines, ApiError> {
    let ot = ctx.object_type(object_type).await?;
    let (kind, names) = match ot.name.as_str() {
        "deals" => (Kind::Deals, Some(("pipeline", "dealstage"))),
        "tickets" => (Kind::Tickets, Some(("hs_pipeline", "hs_pipeline_stage"))),
        _ if ot.type_id.starts_with("2-") => (Kind::Custom, None),
        other => {
            return Err(ApiError::validation(
                format!("{other} have no pipelines; deals, tickets and custom objects do"),
                "objectType",
            ))
        }
    };
    let (mut pipeline, mut stage) = (None, None);
    if let Some((p, s)) = names {
        for d in ctx.store.properties(ctx.id(), &ot.type_id, false).await? {
            if d.name == p {
                pipeline = Some(d);
            } else if d.name == s {
                stage = Some(d);
            }
        }
    }
    Ok(Pipelines {
        kind,
        type_id: ot.type_id,
        pipeline,
        stage,
    })
}

impl Pipelines {
    /// Each pipeline's id, label and display order.
    fn pipelines(&self) -> Vec<(&str, &str, i64)> {
        let mut out: Vec<_> = self
            .pipeline
            .iter()
            .flat_map(|d| &d.options)
            .filter(|o| !o.hidden)
            .map(|o| (o.value.as_str(), o.label.as_str(), o.display_order))
            .collect();
        out.sort_by_key(|p| p.2);
        out
    }

    fn stage_metadata(&self, id: &str) -> Value {
        match self.kind {
            Kind::Deals => {
                let probability = PROBABILITIES
                    .iter()
                    .find(|(s, _)| *s == id)
                    .map_or("0.5", |(_, p)| p);
                json!({
                    "isClosed": (id == "closedwon" || id == "closedlost").to_string(),
                    "probability": probability,
                })
            }
            _ => {
                // Of the stages tickets start with, "4" (Closed) is the closed one.
                let closed = id == "4";
                json!({
                    "ticketState": if closed { "CLOSED" } else { "OPEN" },
                    "isClosed": closed.to_string(),
                })
            }
        }
    }

    fn stages(&self) -> Vec<Value> {
        let Some(d) = &self.stage else {
            return Vec::new();
        };
        let mut options: Vec<_> = d.options.iter().filter(|o| !o.hidden).collect();
        options.sort_by_key(|o| o.display_order);
        options
            .into_iter()
            .map(|o| {
                json!({
                    "id": o.value,
                    "label": o.label,
                    "displayOrder": o.display_order,
                    "metadata": self.stage_metadata(&o.value),
                    "createdAt": iso(d.created_at),
                    "updatedAt": iso(d.updated_at),
                    "archived": false,
                    "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                })
            })
            .collect()
    }

    fn pipeline_json(&self, (id, label, order): (&str, &str, i64)) -> Value {
        let d = self
            .pipeline
            .as_ref()
            .expect("a pipeline comes from its property");
        json!({
            "id": id,
            "label": label,
            "displayOrder": order,
            "stages": self.stages(),
            "createdAt": iso(d.created_at),
            "updatedAt": iso(d.updated_at),
            "archived": false,
        })
    }

    fn find(&self, id: &str) -> Result<(&str, &str, i64), ApiError> {
        self.pipelines()
            .into_iter()
            .find(|p| p.0 == id)
            .ok_or_else(|| ApiError::not_found(format!("pipeline {id} does not exist")))
    }
}

/// `GET /crm/v3/pipelines/{objectType}`.
pub async fn list(ctx: Ctx, Path(object_type): Path<String>) -> Result<Json<Value>, ApiError> {
    let p = load(&ctx, &object_type).await?;
    let results: Vec<Value> = p
        .pipelines()
        .into_iter()
        .map(|x| p.pipeline_json(x))
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// `GET /crm/v3/pipelines/{objectType}/{pipelineId}`.
pub async fn get_one(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = load(&ctx, &object_type).await?;
    let found = p.find(&id)?;
    Ok(Json(p.pipeline_json(found)))
}

/// `GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages`.
pub async fn stages(
    ctx: Ctx,
    Path((object_type, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = load(&ctx, &object_type).await?;
    p.find(&id)?;
    Ok(Json(json!({ "results": p.stages() })))
}

/// `GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}`.
pub async fn stage(
    ctx: Ctx,
    Path((object_type, id, stage)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = load(&ctx, &object_type).await?;
    p.find(&id)?;
    p.stages()
        .into_iter()
        .find(|s| s["id"] == stage.as_str())
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("stage {stage} does not exist in {id}")))
}

/// `GET /crm-pipelines/v1/pipelines/{objectType}`: the same, as the v1 API shaped it.
pub async fn list_v1(ctx: Ctx, Path(object_type): Path<String>) -> Result<Json<Value>, ApiError> {
    let p = load(&ctx, &object_type).await?;
    let object = match p.kind {
        Kind::Deals => "DEAL",
        Kind::Tickets => "TICKET",
        Kind::Custom => "CUSTOM",
    };
    let stages: Vec<Value> = p
        .stages()
        .into_iter()
        .map(|s| {
            let mut v = json!({
                "stageId": s["id"],
                "label": s["label"],
                "displayOrder": s["displayOrder"],
                "active": true,
                "metadata": s["metadata"],
            });
            if p.kind == Kind::Deals {
                let probability: f64 = s["metadata"]["probability"]
                    .as_str()
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0.0);
                v["probability"] = json!(probability);
                v["closedWon"] = json!(s["id"] == "closedwon");
            }
            v
        })
        .collect();
    let results: Vec<Value> = p
        .pipelines()
        .into_iter()
        .enumerate()
        .map(|(i, (id, label, order))| {
            json!({
                "pipelineId": id,
                "label": label,
                "displayOrder": order,
                "active": true,
                "default": i == 0,
                "objectType": object,
                "objectTypeId": p.type_id,
                "stages": stages,
            })
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// Creating, replacing, changing or archiving a pipeline or a stage: not served yet (to a
/// token of the account, like the rest of the API).
pub async fn not_served(_: Ctx, method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NOT_IMPLEMENTED",
        format!(
            "kontor serves pipelines for reading only: {method} {} is not served yet; a record's pipeline and stage are the options of its pipeline and stage properties",
            uri.path()
        ),
    )
}
