//! `/kontor/v1/integrations/salesforce`: the integration's status, pause and resume, a round
//! now, its sync errors and their retry, its settings and field mappings. Admins' tokens only;
//! every change is audited.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::{from_value, JsonBody};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use kontor_domain::time::iso;
use kontor_domain::BuiltinObject;
use kontor_store::{SalesforceConnection, SalesforceError, SalesforceMapping, SALESFORCE_RULES};
use serde::Deserialize;
use serde_json::{json, Value};

const WHAT: &str = "manage the Salesforce integration";

async fn connection(ctx: &Ctx) -> Result<SalesforceConnection, ApiError> {
    ctx.require_admin(WHAT)?;
    ctx.store
        .salesforce_connection(ctx.id())
        .await?
        .filter(|c| c.state != "uninstalled")
        .ok_or_else(|| ApiError::not_found("Salesforce is not connected to this account"))
}

fn type_name(type_id: &str) -> String {
    BuiltinObject::by_type_id(type_id)
        .map(|b| b.name.to_string())
        .unwrap_or_else(|| type_id.to_string())
}

/// The status document: connection, health, API use, counts and settings.
pub async fn status_json(ctx: &Ctx, c: &SalesforceConnection) -> Result<Value, ApiError> {
    let counts = ctx.store.salesforce_counts(ctx.id()).await?;
    let org_limit = c.org_limit.unwrap_or(15_000);
    let now = kontor_domain::time::now_ms();
    let calls = if c.calls_window_start + 86_400_000 <= now {
        0
    } else {
        c.calls
    };
    let linked: serde_json::Map<String, Value> = counts
        .links
        .iter()
        .map(|(t, n)| (type_name(t), json!(n)))
        .collect();
    Ok(json!({
        "state": c.state.to_uppercase(),
        "pausedReason": c.paused_reason,
        "org": {"id": c.org_id, "name": c.org_name},
        "user": {"id": c.sf_user_id, "username": c.username, "email": c.user_email},
        "instanceUrl": c.instance_url,
        "connectedAt": iso(c.connected_at),
        "health": {
            "lastRoundAt": c.last_round_at.map(iso),
            "lastSuccessAt": c.last_ok_at.map(iso),
            "lastError": c.last_error,
            "nextRoundAt": iso(c.next_at),
            "backoffMs": c.backoff_ms,
        },
        "apiCalls": {
            "last24h": calls,
            "budget": org_limit * c.settings.budget_percent / 100,
            "budgetPercent": c.settings.budget_percent,
            "orgUsed": c.org_used,
            "orgLimit": c.org_limit,
        },
        "counts": {
            "linked": linked,
            "syncErrors": counts.errors,
            "salesforceOnlyOwners": counts.salesforce_only_owners,
            "pendingChanges": counts.pending_changes,
        },
        "settings": {
            "contactsAs": c.settings.contacts_as,
            "inclusionFilter": c.settings.inclusion,
            "pipeline": c.settings.pipeline,
            "stages": c.settings.stages,
            "externalIdFields": c.settings.external_ids,
            "describedAt": c.settings.described_at.map(iso),
        },
    }))
}

pub async fn status(ctx: Ctx) -> Result<Json<Value>, ApiError> {
    let c = connection(&ctx).await?;
    Ok(Json(status_json(&ctx, &c).await?))
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PauseBody {
    reason: Option<String>,
}

/// An optional JSON body: none, or empty, is the default.
fn optional<T: serde::de::DeserializeOwned + Default>(
    body: &bytes::Bytes,
    what: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::validation(format!("Invalid input JSON: {e}"), what))?;
    if v.is_null() {
        return Ok(T::default());
    }
    from_value(v, what)
}

pub async fn pause(ctx: Ctx, body: bytes::Bytes) -> Result<Json<Value>, ApiError> {
    connection(&ctx).await?;
    let b: PauseBody = optional(&body, "reason")?;
    let reason = b
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "Paused by an admin.".into());
    let c = ctx
        .store
        .set_salesforce_paused(ctx.id(), Some(&reason))
        .await?;
    ctx.audit(
        "salesforce.pause",
        &format!("salesforce:{}", c.org_id),
        json!({"reason": reason}),
    )
    .await?;
    Ok(Json(status_json(&ctx, &c).await?))
}

pub async fn resume(ctx: Ctx) -> Result<Json<Value>, ApiError> {
    connection(&ctx).await?;
    let c = ctx.store.set_salesforce_paused(ctx.id(), None).await?;
    ctx.audit(
        "salesforce.resume",
        &format!("salesforce:{}", c.org_id),
        json!({}),
    )
    .await?;
    Ok(Json(status_json(&ctx, &c).await?))
}

/// Makes a round due now; 202, since the round runs in the background.
pub async fn sync_now(ctx: Ctx) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = connection(&ctx).await?;
    if !ctx.store.salesforce_sync_now(ctx.id()).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            format!(
                "The integration is paused ({}); resume it first.",
                c.paused_reason.unwrap_or_default()
            ),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "A sync round starts in a moment; GET the status to follow it."})),
    ))
}

pub fn error_json(e: &SalesforceError) -> Value {
    json!({
        "id": e.id.to_string(),
        "direction": if e.direction == "push" { "TO_SALESFORCE" } else { "FROM_SALESFORCE" },
        "objectType": type_name(&e.object_type),
        "recordId": e.record_id.map(|r| r.to_string()),
        "salesforceObject": e.sf_type,
        "salesforceId": e.sf_id,
        "category": e.category,
        "errorCode": e.code,
        "message": e.message,
        "attempts": e.attempts,
        "firstSeenAt": iso(e.first_at),
        "lastSeenAt": iso(e.last_at),
        "retryAt": e.retry_at.map(iso),
    })
}

pub async fn errors(ctx: Ctx) -> Result<Json<Value>, ApiError> {
    connection(&ctx).await?;
    let list = ctx.store.salesforce_errors(ctx.id()).await?;
    Ok(Json(json!({
        "results": list.iter().map(error_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RetryBody {
    id: Option<String>,
}

/// Retries one error (`{"id": …}`) or all of them.
pub async fn retry(ctx: Ctx, body: bytes::Bytes) -> Result<Json<Value>, ApiError> {
    connection(&ctx).await?;
    let b: RetryBody = optional(&body, "id")?;
    let id = match &b.id {
        Some(raw) => Some(
            raw.parse::<i64>()
                .map_err(|_| ApiError::not_found(format!("sync error {raw} does not exist")))?,
        ),
        None => None,
    };
    let n = ctx.store.retry_salesforce_errors(ctx.id(), id).await?;
    if id.is_some() && n == 0 {
        return Err(ApiError::not_found(format!(
            "sync error {} does not exist",
            b.id.unwrap_or_default()
        )));
    }
    ctx.audit(
        "salesforce.errors.retry",
        &format!("account:{}", ctx.id()),
        json!({"id": b.id, "count": n}),
    )
    .await?;
    Ok(Json(json!({"retrying": n})))
}

pub fn mapping_json(m: &SalesforceMapping) -> Value {
    json!({
        "salesforceObject": m.sf_type,
        "salesforceField": m.sf_field,
        "property": m.property,
        "syncRule": m.rule.to_uppercase(),
        "custom": m.custom,
    })
}

pub async fn mappings(ctx: Ctx) -> Result<Json<Value>, ApiError> {
    connection(&ctx).await?;
    let list = ctx.store.salesforce_mappings(ctx.id()).await?;
    Ok(Json(
        json!({"results": list.iter().map(mapping_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MappingBody {
    property: String,
    sync_rule: String,
}

/// The kontor type a Salesforce object syncs with.
fn kontor_type(sf_type: &str) -> Option<&'static str> {
    super::OBJECTS
        .iter()
        .find(|(t, _)| *t == sf_type)
        .map(|(_, k)| *k)
}

/// Whether a kontor property type can hold a Salesforce field type's values.
pub fn compatible(property_type: &str, sf_kind: &str) -> bool {
    match sf_kind {
        "double" | "currency" | "percent" | "int" => {
            matches!(property_type, "number" | "string")
        }
        "boolean" => matches!(property_type, "bool" | "enumeration" | "string"),
        "date" => matches!(property_type, "date" | "datetime" | "string"),
        "datetime" => matches!(property_type, "datetime" | "string"),
        "picklist" => matches!(property_type, "enumeration" | "string"),
        "reference" | "id" => property_type == "string",
        _ => property_type == "string" || property_type == "enumeration",
    }
}

/// Adds or changes a mapping, checking that the field exists and the types fit.
pub async fn put_mapping(
    ctx: Ctx,
    Path((sf_type, field)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let c = connection(&ctx).await?;
    let b: MappingBody = from_value(body, "property")?;
    let rule = b.sync_rule.to_lowercase();
    if !SALESFORCE_RULES.contains(&rule.as_str()) {
        return Err(ApiError::validation(
            format!(
                "syncRule must be one of {}",
                SALESFORCE_RULES
                    .iter()
                    .map(|r| r.to_uppercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "syncRule",
        ));
    }
    let kontor = kontor_type(&sf_type).ok_or_else(|| {
        ApiError::validation(
            format!(
                "{sf_type} is not synced; the objects are Lead, Contact, Account and Opportunity"
            ),
            "salesforceObject",
        )
    })?;
    let def = ctx
        .store
        .property(ctx.id(), kontor, &b.property)
        .await?
        .filter(|d| !d.archived)
        .ok_or_else(|| {
            ApiError::validation(
                format!("{} has no property {:?}", type_name(kontor), b.property),
                "property",
            )
        })?;
    if let Some(fields) = c.settings.fields.get(&sf_type) {
        let Some(f) = fields.get(&field) else {
            return Err(ApiError::validation(
                format!("{sf_type} has no field {field:?} in Salesforce"),
                "salesforceField",
            ));
        };
        let kind = def.kind.as_str();
        if !compatible(kind, &f.kind) {
            return Err(ApiError::validation(
                format!(
                    "{sf_type}.{field} is a {} field; the property {} is of type {kind}, which cannot hold its values",
                    f.kind, b.property
                ),
                "property",
            ));
        }
    }
    let m = SalesforceMapping {
        sf_type: sf_type.clone(),
        sf_field: field.clone(),
        property: b.property.clone(),
        rule,
        custom: !super::default_mappings()
            .iter()
            .any(|d| d.sf_type == sf_type && d.sf_field == field),
    };
    ctx.store.set_salesforce_mapping(ctx.id(), &m).await?;
    ctx.audit(
        "salesforce.mapping.set",
        &format!("salesforce:{sf_type}.{field}"),
        mapping_json(&m),
    )
    .await?;
    Ok(Json(mapping_json(&m)))
}

pub async fn delete_mapping(
    ctx: Ctx,
    Path((sf_type, field)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    connection(&ctx).await?;
    if !ctx
        .store
        .delete_salesforce_mapping(ctx.id(), &sf_type, &field)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "{sf_type}.{field} is not mapped"
        )));
    }
    ctx.audit(
        "salesforce.mapping.delete",
        &format!("salesforce:{sf_type}.{field}"),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsBody {
    contacts_as: Option<String>,
    budget_percent: Option<i64>,
    /// `{"filterGroups": …}`, or null for every contact.
    #[serde(default, deserialize_with = "present")]
    inclusion_filter: Option<Value>,
}

/// A field given (null included) is `Some`; an absent one `None` (serde's default).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

pub async fn patch_settings(ctx: Ctx, JsonBody(body): JsonBody) -> Result<Json<Value>, ApiError> {
    let c = connection(&ctx).await?;
    let b: SettingsBody = from_value(body.clone(), "settings")?;
    let mut s = c.settings.clone();
    if let Some(t) = b.contacts_as {
        if t != "Lead" && t != "Contact" {
            return Err(ApiError::validation(
                "contactsAs must be Lead or Contact",
                "contactsAs",
            ));
        }
        s.contacts_as = t;
    }
    if let Some(p) = b.budget_percent {
        if !(1..=100).contains(&p) {
            return Err(ApiError::validation(
                "budgetPercent must be between 1 and 100",
                "budgetPercent",
            ));
        }
        s.budget_percent = p;
    }
    match b.inclusion_filter {
        None => {}
        Some(Value::Null) => s.inclusion = None,
        Some(f) => {
            let defs = ctx.store.properties(ctx.id(), "0-1", false).await?;
            super::inclusion(&f, &defs).map_err(|m| ApiError::validation(m, "inclusionFilter"))?;
            s.inclusion = Some(f);
        }
    }
    ctx.store.set_salesforce_settings(ctx.id(), &s).await?;
    ctx.audit(
        "salesforce.settings",
        &format!("salesforce:{}", c.org_id),
        body,
    )
    .await?;
    let c = connection(&ctx).await?;
    Ok(Json(status_json(&ctx, &c).await?))
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn mapping_types_are_checked() {
        assert!(compatible("number", "currency"));
        assert!(!compatible("bool", "currency"));
        assert!(compatible("datetime", "date"));
        assert!(!compatible("number", "email"));
        assert!(compatible("string", "email"));
        assert!(compatible("enumeration", "picklist"));
    }
}
