//! Webhooks: HubSpot's webhooks API (`/webhooks/v3/{appId}/settings` and `…/subscriptions`),
//! kontor's own API for the apps themselves and their delivery log (`/kontor/v1/webhooks`),
//! and the sender (`deliver`). The store explains where events come from
//! (`kontor_store::webhooks`).
//!
//! HubSpot's clients call the webhooks API with a developer key in `?hapikey=`; kontor takes
//! the account's token there (or as a bearer token). Managing webhooks takes an admin's token.

pub mod deliver;
mod target;

pub use target::Policy;

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::{from_value, JsonBody};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::time::{iso, now_ms};
use kontor_domain::BuiltinObject;
use kontor_store::{SubscriptionInput, WebhookApp, WebhookEvent, WebhookSubscription, EVENT_TYPES};
use serde::Deserialize;
use serde_json::{json, Value};

fn admin(ctx: &Ctx) -> Result<(), ApiError> {
    ctx.require_admin("manage webhooks")
}

fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("{what} {raw} does not exist")))
}

async fn app_of(ctx: &Ctx, raw: &str) -> Result<WebhookApp, ApiError> {
    admin(ctx)?;
    let id = parse_id(raw, "app")?;
    ctx.store
        .webhook_app(ctx.id(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("app {raw} does not exist")))
}

async fn audit(ctx: &Ctx, action: &str, target: String, details: Value) -> Result<(), ApiError> {
    ctx.audit(action, &target, details).await
}

fn settings_json(a: &WebhookApp) -> Value {
    json!({
        "targetUrl": a.target_url,
        "throttling": {"maxConcurrentRequests": a.max_concurrent, "period": "SECONDLY"},
        "createdAt": iso(a.created_at),
        "updatedAt": iso(a.updated_at),
    })
}

fn subscription_json(s: &WebhookSubscription) -> Value {
    let mut v = json!({
        "id": s.id.to_string(),
        "eventType": s.event_type,
        "active": s.active,
        "createdAt": iso(s.created_at),
        "updatedAt": iso(s.updated_at),
    });
    if let Some(p) = &s.property_name {
        v["propertyName"] = json!(p);
    }
    if let Some(t) = &s.object_type_id {
        v["objectTypeId"] = json!(t);
    }
    v
}

pub fn event_json(e: &WebhookEvent) -> Value {
    json!({
        "eventId": e.id.to_string(),
        "subscriptionId": e.subscription_id.to_string(),
        "subscriptionType": e.event_type,
        "objectId": e.object_id.to_string(),
        "state": e.state.to_uppercase(),
        "attempts": e.attempts,
        "nextAttemptAt": (e.state == "pending").then(|| iso(e.next_at)),
        "lastStatus": e.last_status,
        "lastError": e.last_error,
        "createdAt": iso(e.created_at),
        "completedAt": e.done_at.map(iso),
        "payload": e.payload,
    })
}

// ---- HubSpot's settings API ----

pub async fn get_settings(ctx: Ctx, Path(app): Path<String>) -> Result<Json<Value>, ApiError> {
    let a = app_of(&ctx, &app).await?;
    if a.target_url.is_none() {
        return Err(ApiError::not_found(format!(
            "app {app} has no webhook settings"
        )));
    }
    Ok(Json(settings_json(&a)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsInput {
    target_url: String,
    #[serde(default)]
    throttling: Option<Throttling>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Throttling {
    max_concurrent_requests: Option<i64>,
    #[allow(dead_code)]
    period: Option<String>,
}

pub async fn put_settings(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(app): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let a = app_of(&ctx, &app).await?;
    let input: SettingsInput = from_value(body, "body")?;
    let url = state.webhooks.check_target(&input.target_url)?;
    let max = input
        .throttling
        .and_then(|t| t.max_concurrent_requests)
        .unwrap_or(a.max_concurrent);
    if !(1..=100).contains(&max) {
        return Err(ApiError::validation(
            "throttling.maxConcurrentRequests must be between 1 and 100",
            "throttling.maxConcurrentRequests",
        ));
    }
    let a = ctx
        .store
        .set_webhook_target(ctx.id(), a.id, Some(&url), max)
        .await?;
    audit(
        &ctx,
        "webhooks.settings",
        format!("app:{}", a.id),
        json!({"targetUrl": url, "maxConcurrentRequests": max}),
    )
    .await?;
    Ok(Json(settings_json(&a)))
}

pub async fn clear_settings(ctx: Ctx, Path(app): Path<String>) -> Result<StatusCode, ApiError> {
    let a = app_of(&ctx, &app).await?;
    ctx.store
        .set_webhook_target(ctx.id(), a.id, None, a.max_concurrent)
        .await?;
    audit(
        &ctx,
        "webhooks.settings.clear",
        format!("app:{}", a.id),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- HubSpot's subscriptions API ----

pub async fn list_subscriptions(
    ctx: Ctx,
    Path(app): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let a = app_of(&ctx, &app).await?;
    let subs = ctx.store.webhook_subscriptions(ctx.id(), a.id).await?;
    Ok(Json(json!({
        "results": subs.iter().map(subscription_json).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    event_type: String,
    property_name: Option<String>,
    object_type_id: Option<String>,
    active: Option<bool>,
}

/// Checks a subscription's event type, object type and property against the account.
pub async fn check_subscription(
    store: &kontor_store::Store,
    account: i64,
    event_type: &str,
    object_type_id: Option<&str>,
    property_name: Option<&str>,
) -> Result<SubscriptionInput, ApiError> {
    if !EVENT_TYPES.contains(&event_type) {
        return Err(ApiError::validation(
            format!(
                "the event type {event_type} is not one kontor sends (eventType); it sends {}",
                EVENT_TYPES.join(", ")
            ),
            "eventType",
        ));
    }
    let (prefix, suffix) = event_type.split_once('.').unwrap_or_default();
    let type_id = if prefix == "object" {
        let Some(t) = object_type_id.filter(|t| !t.is_empty()) else {
            return Err(ApiError::validation(
                format!("a subscription to {event_type} needs the custom object type it is about (objectTypeId)"),
                "objectTypeId",
            ));
        };
        let ot = store
            .object_type(account, t)
            .await?
            .filter(|ot| ot.type_id.starts_with("2-"))
            .ok_or_else(|| {
                ApiError::validation(
                    format!("{t} is not a custom object type of this account (objectTypeId)"),
                    "objectTypeId",
                )
            })?;
        ot.type_id
    } else {
        kontor_domain::object_type::BUILTIN_OBJECTS
            .iter()
            .find(|b: &&BuiltinObject| b.singular == prefix)
            .map(|b| b.type_id.to_string())
            .unwrap_or_default()
    };
    let property_name = match (suffix, property_name.filter(|p| !p.is_empty())) {
        ("propertyChange", None) => {
            return Err(ApiError::validation(
                format!("a subscription to {event_type} needs the property whose changes are sent (propertyName)"),
                "propertyName",
            ))
        }
        ("propertyChange", Some(p)) => {
            let defs = store.properties(account, &type_id, false).await?;
            if !defs.iter().any(|d| d.name == p) {
                return Err(ApiError::validation(
                    format!("the property {p} does not exist on {prefix} (propertyName)"),
                    "propertyName",
                ));
            }
            Some(p.to_string())
        }
        (_, Some(_)) => {
            return Err(ApiError::validation(
                format!("a property (propertyName) is only for property changes, not {event_type}"),
                "propertyName",
            ))
        }
        (_, None) => None,
    };
    Ok(SubscriptionInput {
        event_type: event_type.to_string(),
        object_type_id: (prefix == "object").then_some(type_id),
        property_name,
        active: true,
    })
}

pub async fn create_subscription(
    ctx: Ctx,
    Path(app): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let a = app_of(&ctx, &app).await?;
    let input: CreateInput = from_value(body, "body")?;
    let mut checked = check_subscription(
        &ctx.store,
        ctx.id(),
        &input.event_type,
        input.object_type_id.as_deref(),
        input.property_name.as_deref(),
    )
    .await?;
    checked.active = input.active.unwrap_or(true);
    let s = ctx
        .store
        .create_webhook_subscription(ctx.id(), a.id, &checked)
        .await?;
    audit(
        &ctx,
        "webhooks.subscription.create",
        format!("app:{}", a.id),
        subscription_json(&s),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(subscription_json(&s))).into_response())
}

async fn subscription_of(
    ctx: &Ctx,
    app: &str,
    id: &str,
) -> Result<(WebhookApp, WebhookSubscription), ApiError> {
    let a = app_of(ctx, app).await?;
    let sid = parse_id(id, "subscription")?;
    let s = ctx
        .store
        .webhook_subscriptions(ctx.id(), a.id)
        .await?
        .into_iter()
        .find(|s| s.id == sid)
        .ok_or_else(|| ApiError::not_found(format!("subscription {id} does not exist")))?;
    Ok((a, s))
}

pub async fn get_subscription(
    ctx: Ctx,
    Path((app, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (_, s) = subscription_of(&ctx, &app, &id).await?;
    Ok(Json(subscription_json(&s)))
}

#[derive(Deserialize)]
struct PatchInput {
    active: bool,
}

pub async fn patch_subscription(
    ctx: Ctx,
    Path((app, id)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (a, s) = subscription_of(&ctx, &app, &id).await?;
    let input: PatchInput = from_value(body, "body")?;
    let done = ctx
        .store
        .set_webhook_subscriptions_active(ctx.id(), a.id, &[(s.id, input.active)])
        .await?;
    let s = done
        .first()
        .ok_or_else(|| ApiError::not_found(format!("subscription {id} does not exist")))?;
    audit(
        &ctx,
        "webhooks.subscription.update",
        format!("app:{}", a.id),
        subscription_json(s),
    )
    .await?;
    Ok(Json(subscription_json(s)))
}

pub async fn delete_subscription(
    ctx: Ctx,
    Path((app, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (a, s) = subscription_of(&ctx, &app, &id).await?;
    ctx.store
        .delete_webhook_subscription(ctx.id(), a.id, s.id)
        .await?;
    audit(
        &ctx,
        "webhooks.subscription.delete",
        format!("app:{}", a.id),
        subscription_json(&s),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct BatchInput {
    inputs: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    id: serde_json::Value,
    active: bool,
}

pub async fn batch_update(
    ctx: Ctx,
    Path(app): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let started = now_ms();
    let a = app_of(&ctx, &app).await?;
    let input: BatchInput = from_value(body, "body")?;
    let mut changes = Vec::new();
    for (i, item) in input.inputs.iter().enumerate() {
        let id = match &item.id {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            ApiError::validation("id must be a subscription id", format!("inputs[{i}].id"))
        })?;
        changes.push((id, item.active));
    }
    let done = ctx
        .store
        .set_webhook_subscriptions_active(ctx.id(), a.id, &changes)
        .await?;
    audit(
        &ctx,
        "webhooks.subscription.update",
        format!("app:{}", a.id),
        json!({"subscriptions": done.iter().map(subscription_json).collect::<Vec<_>>()}),
    )
    .await?;
    let missing: Vec<String> = changes
        .iter()
        .filter(|(id, _)| !done.iter().any(|s| s.id == *id))
        .map(|(id, _)| id.to_string())
        .collect();
    Ok(crate::wire::batch_reply(
        done.iter().map(subscription_json).collect(),
        &missing,
        &format!("subscriptions {} do not exist", missing.join(", ")),
        StatusCode::OK,
        started,
    ))
}

// ---- kontor's apps API ----

fn app_json(a: &WebhookApp) -> Value {
    json!({
        "id": a.id.to_string(),
        "name": a.name,
        "targetUrl": a.target_url,
        "maxConcurrentRequests": a.max_concurrent,
        "createdAt": iso(a.created_at),
        "updatedAt": iso(a.updated_at),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppInput {
    name: String,
    target_url: Option<String>,
}

/// A new client secret: 32 random bytes, hex.
pub fn new_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub async fn create_app(
    State(state): State<AppState>,
    ctx: Ctx,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    admin(&ctx)?;
    let input: AppInput = from_value(body, "body")?;
    let name = input.name.trim();
    if name.is_empty() {
        return Err(ApiError::validation("name must not be empty", "name"));
    }
    let url = match input.target_url.as_deref() {
        Some(u) => Some(state.webhooks.check_target(u)?),
        None => None,
    };
    let secret = new_secret();
    let sealed = crate::seal::seal(&state.jobs.keys, secret.as_bytes());
    let a = ctx
        .store
        .create_webhook_app(ctx.id(), name, url.as_deref(), &sealed)
        .await?;
    audit(
        &ctx,
        "webhooks.app.create",
        format!("app:{}", a.id),
        app_json(&a),
    )
    .await?;
    let mut out = app_json(&a);
    // Shown once: kontor keeps it sealed and never shows it again.
    out["clientSecret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

pub async fn list_apps(ctx: Ctx) -> Result<Json<Value>, ApiError> {
    admin(&ctx)?;
    let mut results = Vec::new();
    for a in ctx.store.webhook_apps(ctx.id()).await? {
        results.push(with_counts(&ctx, &a).await?);
    }
    Ok(Json(json!({ "results": results })))
}

async fn with_counts(ctx: &Ctx, a: &WebhookApp) -> Result<Value, ApiError> {
    let c = ctx.store.webhook_delivery_counts(ctx.id(), a.id).await?;
    let mut v = app_json(a);
    v["events"] = json!({"pending": c.pending, "delivered": c.delivered, "failed": c.failed});
    Ok(v)
}

pub async fn get_app(ctx: Ctx, Path(app): Path<String>) -> Result<Json<Value>, ApiError> {
    let a = app_of(&ctx, &app).await?;
    Ok(Json(with_counts(&ctx, &a).await?))
}

pub async fn delete_app(ctx: Ctx, Path(app): Path<String>) -> Result<StatusCode, ApiError> {
    let a = app_of(&ctx, &app).await?;
    ctx.store.delete_webhook_app(ctx.id(), a.id).await?;
    audit(
        &ctx,
        "webhooks.app.delete",
        format!("app:{}", a.id),
        app_json(&a),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct EventsQuery {
    state: Option<String>,
    limit: Option<i64>,
}

pub async fn list_events(
    ctx: Ctx,
    Path(app): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let a = app_of(&ctx, &app).await?;
    let state = match q.state.as_deref().map(str::to_lowercase).as_deref() {
        None | Some("") => None,
        Some(s @ ("pending" | "delivered" | "failed")) => Some(s.to_string()),
        Some(other) => {
            return Err(ApiError::validation(
                format!("state {other} is not one of PENDING, DELIVERED, FAILED"),
                "state",
            ))
        }
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let events = ctx
        .store
        .webhook_events(ctx.id(), a.id, state.as_deref(), limit)
        .await?;
    Ok(Json(json!({
        "results": events.iter().map(event_json).collect::<Vec<_>>()
    })))
}

pub async fn retry_failed(ctx: Ctx, Path(app): Path<String>) -> Result<Json<Value>, ApiError> {
    let a = app_of(&ctx, &app).await?;
    let n = ctx
        .store
        .retry_failed_webhook_events(ctx.id(), a.id)
        .await?;
    audit(
        &ctx,
        "webhooks.events.retry",
        format!("app:{}", a.id),
        json!({"events": n}),
    )
    .await?;
    Ok(Json(json!({ "retried": n })))
}
