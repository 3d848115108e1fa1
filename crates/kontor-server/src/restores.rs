//! `/kontor/v1/restores`: the admin API for restores (super admins, or operator tokens).
//!
//! - `POST /kontor/v1/restores/plans` `{backupId, objectType, properties}`: computes a plan.
//! - `GET /kontor/v1/restores/plans/{id}`: a plan.
//! - `POST /kontor/v1/restores` `{planId, acknowledgeChanges, acknowledgeRevertOnly,
//!   overwriteNewer, totpCode}`: applies a plan as an import job (202); 409 while another
//!   restore runs. A user's token needs that user's current TOTP code, as the console does;
//!   an operator's token does not (the operator is audited as such).
//! - `GET /kontor/v1/restores`, `GET /kontor/v1/restores/{id}`: restores (imports), newest first.
//! - `POST /kontor/v1/restores/{id}/revert`: the plan that reverts a finished restore, to apply
//!   like any plan.

use crate::backups::SuperAdmin;
use crate::console::CodeCheck;
use crate::error::ApiError;
use crate::imports::import_json;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::time::iso;
use kontor_jobs::restore::{apply_plan, plan_restore, plan_revert};
use kontor_store::RestorePlan;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn plan_json(p: &RestorePlan) -> Value {
    json!({
        "id": p.id.to_string(),
        "kind": p.kind,
        "backupId": p.backup_id.map(|b| b.to_string()),
        "revertsImport": p.reverts_import.map(|b| b.to_string()),
        "objectTypeId": p.object_type,
        "properties": p.properties,
        "changeSequence": p.seq,
        "summary": p.summary,
        "createdBy": p.created_by_name,
        "createdAt": iso(p.created_at),
        "expiresAt": iso(p.expires_at),
        "appliedBy": p.import_id.map(|i| i.to_string()),
    })
}

fn id_of(s: &str, what: &str) -> Result<i64, ApiError> {
    s.trim()
        .parse()
        .map_err(|_| ApiError::not_found(format!("{what} {s} does not exist")))
}

/// Ids arrive as strings (as HubSpot's do) or numbers.
fn id_field(v: &Value, field: &str) -> Result<i64, ApiError> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| ApiError::validation(format!("{field} must be an id"), field))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanBody {
    backup_id: Value,
    object_type: String,
    properties: Vec<String>,
}

pub async fn plan(
    State(state): State<AppState>,
    admin: SuperAdmin,
    Json(b): Json<PlanBody>,
) -> Result<Response, ApiError> {
    let backup = id_field(&b.backup_id, "backupId")?;
    let plan = plan_restore(
        &state.jobs,
        &admin.ctx.store,
        &admin.ctx.account,
        backup,
        &b.object_type,
        &b.properties,
        &admin.who,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(plan_json(&plan))).into_response())
}

pub async fn get_plan(admin: SuperAdmin, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let n = id_of(&id, "restore plan")?;
    let plan = admin
        .ctx
        .store
        .restore_plan(admin.ctx.id(), n)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("restore plan {id} does not exist")))?;
    Ok(Json(plan_json(&plan)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyBody {
    plan_id: Value,
    #[serde(default)]
    acknowledge_changes: bool,
    #[serde(default)]
    acknowledge_revert_only: bool,
    #[serde(default)]
    overwrite_newer: bool,
    #[serde(default)]
    totp_code: Option<String>,
}

pub async fn apply(
    State(state): State<AppState>,
    admin: SuperAdmin,
    Json(b): Json<ApplyBody>,
) -> Result<Response, ApiError> {
    let plan_id = id_field(&b.plan_id, "planId")?;
    if !b.acknowledge_changes || !b.acknowledge_revert_only {
        return Err(ApiError::validation(
            "A restore changes data, and the values it overwrites come back only by reverting it: set acknowledgeChanges and acknowledgeRevertOnly to true to go ahead.",
            if b.acknowledge_changes { "acknowledgeRevertOnly" } else { "acknowledgeChanges" },
        ));
    }
    // A user's token: that user's second factor, as in the console.
    if let Some(user_id) = admin.who.user_id {
        let store = &admin.ctx.store;
        let user = store
            .users(admin.ctx.id())
            .await?
            .into_iter()
            .find(|u| u.id == user_id)
            .ok_or_else(|| ApiError::not_found("the token's user no longer exists"))?;
        let enabled = store
            .second_factor(admin.ctx.id(), user_id)
            .await?
            .is_some_and(|f| f.enabled);
        if !enabled {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "TWO_FACTOR_REQUIRED",
                "Restoring needs two-factor authentication: set it up for this user (Account > Security) and send the current code as totpCode.",
            ));
        }
        let code = b.totp_code.as_deref().unwrap_or("");
        match crate::console::verify_second_factor(&state, store, admin.ctx.id(), &user, code, false)
            .await?
        {
            CodeCheck::Accepted => {}
            CodeCheck::Refused => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "TWO_FACTOR_REQUIRED",
                    "totpCode is missing, wrong, or already used: send the current code of the authenticator app.",
                ))
            }
            CodeCheck::Locked(until) => {
                return Err(kontor_store::StoreError::TooSoon {
                    message: "Too many wrong two-factor codes for this user: wait before trying again.".into(),
                    retry_at: until,
                }
                .into())
            }
        }
    }
    let imp = apply_plan(
        &admin.ctx.store,
        &admin.ctx.account,
        plan_id,
        b.overwrite_newer,
        &admin.who,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(import_json(&imp))).into_response())
}

pub async fn list(admin: SuperAdmin) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = admin.ctx.store.imports(admin.ctx.id(), before, 500).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        out.extend(page.iter().filter(|i| i.is_restore()).map(import_json));
    }
    Ok(Json(json!({ "results": out })))
}

pub async fn get_one(admin: SuperAdmin, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let n = id_of(&id, "restore")?;
    let imp = admin
        .ctx
        .store
        .import(admin.ctx.id(), n)
        .await?
        .filter(|i| i.is_restore())
        .ok_or_else(|| ApiError::not_found(format!("restore {id} does not exist")))?;
    Ok(Json(import_json(&imp)))
}

pub async fn revert(admin: SuperAdmin, Path(id): Path<String>) -> Result<Response, ApiError> {
    let n = id_of(&id, "restore")?;
    let plan = plan_revert(&admin.ctx.store, &admin.ctx.account, n, &admin.who).await?;
    Ok((StatusCode::CREATED, Json(plan_json(&plan))).into_response())
}
