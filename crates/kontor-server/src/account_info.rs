//! `/account-info/v3`: the account's details (its id, name, time zone, currency and where its
//! data lives, which a region move changes) and its API usage today; and the older
//! `/integrations/v1/me` that tools still call for the portal id.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use kontor_domain::time::{iso, now_ms};
use kontor_domain::Region;
use serde_json::{json, Value};

/// kontor keeps no time zone or currency per account yet: its times are UTC, and HubSpot's
/// default currency is the US dollar.
const TIME_ZONE: &str = "UTC";
const CURRENCY: &str = "USD";

/// HubSpot's names of its data centres, which integrations compare against.
fn hosting_location(region: Region) -> &'static str {
    match region {
        Region::Us => "na1",
        Region::Eu => "eu1",
    }
}

/// The host users reach the console at.
fn ui_domain(state: &AppState) -> String {
    let url = state.jobs.public_url.as_str();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// `GET /account-info/v3/details`.
pub async fn details(ctx: Ctx, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({
        "portalId": ctx.id(),
        "portalName": ctx.account.name,
        "accountType": "STANDARD",
        "timeZone": TIME_ZONE,
        "companyCurrency": CURRENCY,
        "additionalCurrencies": [],
        "utcOffset": "+00:00",
        "utcOffsetMilliseconds": 0,
        "uiDomain": ui_domain(&state),
        "dataHostingLocation": hosting_location(ctx.account.region),
        "createdAt": ctx.account.created_at,
    })))
}

/// `GET /account-info/v3/api-usage/daily/private-apps`: the account's requests today, as this
/// node counted them, against its daily limit (`null` when the operator set none).
pub async fn daily_usage(ctx: Ctx, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let (used, limit) = state
        .api_limiter
        .daily_usage(ctx.id(), ctx.account.tier, now);
    Ok(Json(json!({"results": [{
        "name": "private-apps-api-calls-daily",
        "usageLimit": limit,
        "currentUsage": used,
        "collectedAt": iso(now),
        "fetchStatus": "SUCCESS",
        "resetsAt": iso(crate::rate::next_day_ms(now)),
    }]})))
}

/// `GET /integrations/v1/me`.
pub async fn me(ctx: Ctx) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({
        "portalId": ctx.id(),
        "timeZone": TIME_ZONE,
        "currency": CURRENCY,
        "utcOffsetMilliseconds": 0,
        "utcOffset": "+00:00",
    })))
}
