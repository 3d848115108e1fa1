//! Uninstalling the integration and cleaning up after it, shared by the API, the console and
//! the operator's CLI: the start (its checks), the Salesforce-only owners with the user
//! proposed for each, and their JSON. The API's routes under
//! `/kontor/v1/integrations/salesforce/uninstall` and `…/owners` are here too.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::{from_value, JsonBody};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use kontor_domain::time::iso;
use kontor_domain::ChangeSource;
use kontor_store::{
    Account, Directory, MoveState, Owner, Reassignment, SalesforceOwner, SalesforceUninstall,
    Store, StoreError, UninstallRequest,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the admin types to confirm.
pub const CONFIRMATION: &str = "Uninstall Salesforce";
/// The reasons offered (the console's list; the API takes any text).
pub const REASONS: &[&str] = &[
    "We no longer use Salesforce",
    "We are moving to another integration",
    "Sync errors",
    "Reconnecting to another Salesforce org",
    "Other",
];
const WHAT: &str = "manage the Salesforce integration";

/// What to remove on the Salesforce side after an uninstall, as the page lists it.
pub const SALESFORCE_SIDE: &[&str] = &[
    "Setup > Connected Apps OAuth Usage: check that kontor's connected app no longer holds a token for the integration user (kontor revokes it; revoke it there if the uninstall says it could not).",
    "Setup > Object Manager: delete the Kontor_Id__c external-id fields, if you added them, from Lead, Contact, Account, Opportunity and Task.",
    "The integration user: deactivate it or free its licence if it was made only for kontor.",
    "Page layouts and reports that show kontor fields: remove those fields.",
];

fn conflict(message: impl Into<String>) -> StoreError {
    StoreError::Conflict {
        message: message.into(),
        existing_id: None,
    }
}

/// Starts an uninstall after checking what the admin gave and that no region move runs.
pub async fn start(
    dir: &Directory,
    store: &Store,
    account: &Account,
    req: &UninstallRequest,
    confirmation: &str,
    by_user: Option<i64>,
    by_name: &str,
) -> Result<SalesforceUninstall, StoreError> {
    if req.reason.trim().is_empty() {
        return Err(StoreError::validation(
            "INVALID_UNINSTALL",
            "Give the reason for uninstalling.",
            Some("reason".into()),
        ));
    }
    if req.reason.chars().count() > 1000 {
        return Err(StoreError::validation(
            "INVALID_UNINSTALL",
            "The reason is longer than 1,000 characters.",
            Some("reason".into()),
        ));
    }
    if confirmation != CONFIRMATION {
        return Err(StoreError::validation(
            "INVALID_UNINSTALL",
            format!("Type the words “{CONFIRMATION}” to confirm."),
            Some("confirmation".into()),
        ));
    }
    if let Some(mv) = dir
        .moves_of(account.id)
        .await?
        .into_iter()
        .find(|m| m.state == MoveState::Running)
    {
        return Err(conflict(format!(
            "This account's data is moving to {} (move {}). The integration can be uninstalled once the move has ended.",
            mv.to.label(),
            mv.id
        )));
    }
    let impact = store.salesforce_uninstall_impact(account.id).await?;
    store
        .begin_salesforce_uninstall(account.id, req, &impact, by_user, by_name)
        .await
}

pub fn uninstall_json(u: &SalesforceUninstall) -> Value {
    json!({
        "id": u.id.to_string(),
        "state": u.state.to_uppercase(),
        "reason": u.reason,
        "pendingChanges": if u.pending == "push" { "PUSH" } else { "DISCARD" },
        "integrationData": if u.keep_data { "KEEP_48_HOURS" } else { "DELETE_NOW" },
        "org": {"id": u.org_id, "name": u.org_name},
        "impact": u.impact,
        "outcome": u.outcome,
        "error": u.error,
        "requestedBy": u.requested_by_name,
        "createdAt": iso(u.created_at),
        "finishedAt": u.finished_at.map(iso),
    })
}

/// The user an owner's records are proposed to go to: the owner who is a user with the same
/// e-mail, else with the same first and last name.
pub fn propose<'a>(o: &Owner, users: &'a [Owner]) -> Option<&'a Owner> {
    let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
    users.iter().find(|u| same(&u.email, &o.email)).or_else(|| {
        users.iter().find(|u| {
            !o.first_name.trim().is_empty()
                && same(&u.first_name, &o.first_name)
                && same(&u.last_name, &o.last_name)
        })
    })
}

/// Owners who are users, the targets of a reassignment.
pub async fn user_owners(store: &Store, account: i64) -> Result<Vec<Owner>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.owners(account, false, None, after, 500).await?;
        let Some(last) = page.last().map(|o| o.id) else {
            break;
        };
        after = last;
        out.extend(page.into_iter().filter(|o| o.user_id.is_some()));
    }
    Ok(out)
}

fn type_name(type_id: &str) -> String {
    kontor_domain::BuiltinObject::by_type_id(type_id)
        .map(|b| b.name.to_string())
        .unwrap_or_else(|| type_id.to_string())
}

pub fn owner_json(o: &SalesforceOwner, proposed: Option<&Owner>) -> Value {
    let records: serde_json::Map<String, Value> = o
        .records
        .iter()
        .map(|(t, (live, binned))| (type_name(t), json!({"live": live, "inRecycleBin": binned})))
        .collect();
    json!({
        "id": o.owner.id.to_string(),
        "email": o.owner.email,
        "firstName": o.owner.first_name,
        "lastName": o.owner.last_name,
        "records": records,
        "liveRecords": o.live(),
        "recordsInRecycleBin": o.binned(),
        "proposedOwnerId": proposed.map(|p| p.id.to_string()),
        "proposedOwner": proposed.map(|p| json!({"id": p.id.to_string(), "email": p.email, "firstName": p.first_name, "lastName": p.last_name})),
    })
}

pub fn reassignment_json(r: &Reassignment) -> Value {
    json!({
        "id": r.id.to_string(),
        "state": r.state.to_uppercase(),
        "assignments": r.assignments.iter().map(|(f, t)| json!({"fromOwnerId": f.to_string(), "toOwnerId": t.to_string()})).collect::<Vec<_>>(),
        "reverts": r.reverts.map(|x| x.to_string()),
        "revertedBy": r.reverted_by.map(|x| x.to_string()),
        "moved": r.moved,
        "skipped": r.skipped,
        "error": r.error,
        "createdBy": r.created_by_name,
        "createdAt": iso(r.created_at),
        "finishedAt": r.finished_at.map(iso),
    })
}

fn who(ctx: &Ctx) -> (Option<i64>, String) {
    (ctx.token.created_by, ctx.token.name.clone())
}

/// `GET …/uninstall`: the impact an uninstall would have now, and the uninstalls so far.
pub async fn get_uninstall(ctx: Ctx) -> Result<Json<Value>, ApiError> {
    ctx.require_admin(WHAT)?;
    let conn = ctx.store.salesforce_connection(ctx.id()).await?;
    let connected = conn
        .as_ref()
        .is_some_and(|c| c.state != kontor_store::SF_UNINSTALLED);
    let impact = if connected {
        Some(ctx.store.salesforce_uninstall_impact(ctx.id()).await?)
    } else {
        None
    };
    let list = ctx.store.salesforce_uninstalls(ctx.id(), 20).await?;
    Ok(Json(json!({
        "connected": connected,
        "state": conn.as_ref().map(|c| c.state.to_uppercase()),
        "keptUntil": conn.as_ref().and_then(|c| c.keep_until).map(iso),
        "impact": impact,
        "confirmation": CONFIRMATION,
        "salesforceSide": SALESFORCE_SIDE,
        "results": list.iter().map(uninstall_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UninstallBody {
    reason: String,
    confirmation: String,
    pending_changes: String,
    integration_data: String,
}

/// `POST …/uninstall`: starts the uninstall job; 202.
pub async fn post_uninstall(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    ctx.require_admin(WHAT)?;
    let b: UninstallBody = from_value(body, "reason")?;
    let push_pending = match b.pending_changes.to_uppercase().as_str() {
        "PUSH" => true,
        "DISCARD" => false,
        _ => {
            return Err(ApiError::validation(
                "pendingChanges must be PUSH (send them first) or DISCARD",
                "pendingChanges",
            ))
        }
    };
    let keep_data = match b.integration_data.to_uppercase().as_str() {
        "KEEP_48_HOURS" => true,
        "DELETE_NOW" => false,
        _ => {
            return Err(ApiError::validation(
                "integrationData must be KEEP_48_HOURS or DELETE_NOW",
                "integrationData",
            ))
        }
    };
    let (user, name) = who(&ctx);
    let u = start(
        &state.dir,
        &ctx.store,
        &ctx.account,
        &UninstallRequest {
            reason: b.reason.trim().to_string(),
            push_pending,
            keep_data,
        },
        &b.confirmation,
        user,
        &name,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(uninstall_json(&u))))
}

fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("{what} {raw} does not exist")))
}

pub async fn get_uninstall_one(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    ctx.require_admin(WHAT)?;
    let u = ctx
        .store
        .salesforce_uninstall(ctx.id(), parse_id(&id, "uninstall")?)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("uninstall {id} does not exist")))?;
    Ok(Json(uninstall_json(&u)))
}

/// `GET …/owners`: the Salesforce-only owners, what references them, the proposed users,
/// and the reassignments so far.
pub async fn get_owners(ctx: Ctx) -> Result<Json<Value>, ApiError> {
    ctx.require_admin(WHAT)?;
    let owners = ctx.store.salesforce_only_owners(ctx.id()).await?;
    let users = user_owners(&ctx.store, ctx.id()).await?;
    let list = ctx.store.reassignments(ctx.id(), 20).await?;
    Ok(Json(json!({
        "results": owners.iter().map(|o| owner_json(o, propose(&o.owner, &users))).collect::<Vec<_>>(),
        "reassignments": list.iter().map(reassignment_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Assignment {
    from_owner_id: String,
    to_owner_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReassignBody {
    assignments: Vec<Assignment>,
}

/// `POST …/owners/reassign`: starts a reassignment job; 202.
pub async fn post_reassign(
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    ctx.require_admin(WHAT)?;
    let b: ReassignBody = from_value(body, "assignments")?;
    let mut pairs = Vec::new();
    for (k, a) in b.assignments.iter().enumerate() {
        let parse = |s: &str, field: &str| {
            s.parse::<i64>().map_err(|_| {
                ApiError::validation(
                    format!("{s:?} is not an owner id"),
                    format!("assignments[{k}].{field}"),
                )
            })
        };
        pairs.push((
            parse(&a.from_owner_id, "fromOwnerId")?,
            parse(&a.to_owner_id, "toOwnerId")?,
        ));
    }
    let (user, name) = who(&ctx);
    let r = ctx
        .store
        .request_owner_reassignment(ctx.id(), &pairs, ChangeSource::Api, user, &name)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(reassignment_json(&r))))
}

pub async fn get_reassignment(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    ctx.require_admin(WHAT)?;
    let r = ctx
        .store
        .reassignment(ctx.id(), parse_id(&id, "reassignment")?)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("reassignment {id} does not exist")))?;
    Ok(Json(reassignment_json(&r)))
}

/// `POST …/owners/reassignments/{id}/revert`: starts the revert job; 202.
pub async fn post_revert(
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    ctx.require_admin(WHAT)?;
    let id = parse_id(&id, "reassignment")?;
    let (user, name) = who(&ctx);
    let r = ctx
        .store
        .request_reassignment_revert(ctx.id(), id, ChangeSource::Api, user, &name)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(reassignment_json(&r))))
}

pub fn removal_json(removed: &[Owner], kept: &[SalesforceOwner]) -> Value {
    json!({
        "removed": removed.iter().map(|o| json!({"id": o.id.to_string(), "email": o.email})).collect::<Vec<_>>(),
        "kept": kept.iter().map(|o| owner_json(o, None)).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RemoveBody {
    confirm: bool,
}

/// `POST …/owners/remove` (`{"confirm": true}`): removes the Salesforce-only owners no record
/// references; says which stay and why.
pub async fn post_remove(ctx: Ctx, JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    ctx.require_admin(WHAT)?;
    let b: RemoveBody = from_value(body, "confirm")?;
    if !b.confirm {
        return Err(ApiError::validation(
            "Set confirm to true to remove the Salesforce owners.",
            "confirm",
        ));
    }
    let (user, name) = who(&ctx);
    let (removed, kept) = ctx
        .store
        .remove_salesforce_owners(ctx.id(), user, &name)
        .await?;
    Ok(Json(removal_json(&removed, &kept)))
}
