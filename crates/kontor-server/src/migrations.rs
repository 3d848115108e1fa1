//! `/kontor/v1/migrations`: moving the account's data to another region (super admins, or
//! operator tokens), by the rules of `kontor_jobs::moving::Policy`.
//!
//! - `GET /kontor/v1/migrations`: the account's region, its moves (newest first), whether a
//!   move can be scheduled (or why not) and the dates available for it.
//! - `POST /kontor/v1/migrations` `{to, date}`: schedules a move (201).
//! - `GET /kontor/v1/migrations/{id}`: one move.
//! - `PATCH /kontor/v1/migrations/{id}` `{date}`: reschedules it.
//! - `DELETE /kontor/v1/migrations/{id}`: cancels it (204).

use crate::backups::SuperAdmin;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::time::{iso, now_ms};
use kontor_domain::Region;
use kontor_store::Move;
use serde::Deserialize;
use serde_json::{json, Value};

/// The JSON form of a move.
pub fn move_json(m: &Move) -> Value {
    let t = |v: Option<i64>| v.map(iso);
    json!({
        "id": m.id.to_string(),
        "from": m.from.as_str(),
        "to": m.to.as_str(),
        "status": m.state.as_str().to_uppercase(),
        "phase": (!m.phase.is_empty()).then_some(m.phase.as_str()),
        "startAt": iso(m.start_at),
        "scheduledBy": m.scheduled_by,
        "createdAt": iso(m.created_at),
        "startedAt": t(m.started_at),
        "frozenAt": t(m.frozen_at),
        "switchedAt": t(m.switched_at),
        "finishedAt": t(m.finished_at),
        "canceledAt": t(m.canceled_at),
        "frozenMs": m.frozen_ms(now_ms()),
        "error": m.error,
        "progress": m.progress,
    })
}

/// The other region, where a move would go.
fn other(r: Region) -> Region {
    match r {
        Region::Us => Region::Eu,
        Region::Eu => Region::Us,
    }
}

fn region_field(s: &str) -> Result<Region, ApiError> {
    Region::parse(s).ok_or_else(|| ApiError::validation(format!("unknown region {s:?}"), "to"))
}

async fn own_move(admin: &SuperAdmin, state: &AppState, id: &str) -> Result<Move, ApiError> {
    let missing = || ApiError::not_found(format!("migration {id} does not exist"));
    let id: i64 = id.trim().parse().map_err(|_| missing())?;
    match state.jobs.dir.get_move(id).await? {
        Some(m) if m.account_id == admin.ctx.id() => Ok(m),
        _ => Err(missing()),
    }
}

pub async fn list(
    State(state): State<AppState>,
    admin: SuperAdmin,
) -> Result<Json<Value>, ApiError> {
    let a = &admin.ctx.account;
    let to = other(a.region);
    let refusal = state.jobs.move_refusal(a, to).await?;
    let dates = match refusal {
        None => state.jobs.available_move_days(to).await?,
        Some(_) => Vec::new(),
    };
    let moves = state.jobs.dir.moves_of(a.id).await?;
    Ok(Json(json!({
        "region": a.region.as_str(),
        "canSchedule": refusal.is_none(),
        "refusal": refusal.map(|e| e.to_string()),
        "to": to.as_str(),
        "availableDates": dates,
        "results": moves.iter().map(move_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct ScheduleBody {
    to: String,
    date: String,
}

pub async fn schedule(
    State(state): State<AppState>,
    admin: SuperAdmin,
    Json(b): Json<ScheduleBody>,
) -> Result<Response, ApiError> {
    let to = region_field(&b.to)?;
    let mv = state
        .jobs
        .schedule_move(
            &admin.ctx.account,
            to,
            &b.date,
            &admin.who.name,
            admin.who.user_id,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(move_json(&mv))).into_response())
}

pub async fn get_one(
    State(state): State<AppState>,
    admin: SuperAdmin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(move_json(&own_move(&admin, &state, &id).await?)))
}

#[derive(Deserialize)]
pub struct RescheduleBody {
    date: String,
}

pub async fn reschedule(
    State(state): State<AppState>,
    admin: SuperAdmin,
    Path(id): Path<String>,
    Json(b): Json<RescheduleBody>,
) -> Result<Json<Value>, ApiError> {
    let mv = own_move(&admin, &state, &id).await?;
    let mv = state
        .jobs
        .reschedule_move(
            &admin.ctx.account,
            &mv,
            &b.date,
            &admin.who.name,
            admin.who.user_id,
        )
        .await?;
    Ok(Json(move_json(&mv)))
}

pub async fn cancel(
    State(state): State<AppState>,
    admin: SuperAdmin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mv = own_move(&admin, &state, &id).await?;
    state
        .jobs
        .cancel_move(&admin.ctx.account, &mv, &admin.who.name, admin.who.user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
