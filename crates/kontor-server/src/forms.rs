//! Forms, as HubSpot's websites use them (see `kontor_store::forms`):
//!
//! - `/marketing/v3/forms` (token): list (`?archived=true` for the archived ones) and create;
//!   `/marketing/v3/forms/{formId}`: get, update (`PATCH`), archive (`DELETE`, 204). Only the
//!   parts kontor acts on are stored: the name, the fields (contact properties, `required`,
//!   `label`) and the message shown after a submission (`configuration.postSubmitAction`).
//! - `POST /submissions/v3/integration/submit/{portalId}/{formGuid}` (no token, cross-origin
//!   allowed, as HubSpot's): checks the fields against the form, queues the submission, and
//!   applies it at once when the account is open; during a data move's freeze it waits and is
//!   applied after the switch, and the answer says that processing may take up to a day.
//! - `GET /form-integrations/v1/submissions/forms/{formGuid}` (token): the form's submissions,
//!   newest first, paged by `after`.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::JsonBody;
use crate::throttle::Client;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::time::{iso, now_ms};
use kontor_store::forms::{Form, FormField, FormInput, Submission};
use kontor_store::{LifecycleState, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What the submitter is told when the submission waits (the account is being moved).
pub const DELAYED: &str =
    "Your submission was received. Processing it may take up to a day; nothing needs to be sent again.";

/// HubSpot's field type for a contact property's field type.
fn field_type(field_type: &str, name: &str) -> &'static str {
    match (field_type, name) {
        (_, "email") => "email",
        ("phonenumber", _) | (_, "phone") | (_, "mobilephone") => "phone",
        ("textarea", _) => "multi_line_text",
        ("select" | "radio", _) => "dropdown",
        ("checkbox", _) => "multiple_checkboxes",
        ("booleancheckbox", _) => "single_checkbox",
        ("number", _) => "number",
        ("date", _) => "datepicker",
        _ => "single_line_text",
    }
}

/// The JSON form of a form, in HubSpot's v3 shape (one field per group, as HubSpot's editor
/// makes them).
pub fn form_json(f: &Form, types: &HashMap<String, String>) -> Value {
    let groups: Vec<Value> = f
        .fields
        .iter()
        .map(|field| {
            json!({
                "groupType": "default_group",
                "richTextType": "text",
                "fields": [{
                    "objectTypeId": "0-1",
                    "name": field.name,
                    "label": field.label,
                    "required": field.required,
                    "hidden": false,
                    "fieldType": field_type(types.get(&field.name).map(String::as_str).unwrap_or(""), &field.name),
                }],
            })
        })
        .collect();
    json!({
        "id": f.id,
        "name": f.name,
        "formType": "hubspot",
        "createdAt": iso(f.created_at),
        "updatedAt": iso(f.updated_at),
        "archived": f.archived,
        "fieldGroups": groups,
        "configuration": {
            "language": "en",
            "createNewContactForNewEmail": false,
            "editable": true,
            "allowLinkToResetKnownValues": false,
            "lifecycleStages": [],
            "postSubmitAction": {"type": "thank_you", "value": f.message},
            "prePopulateKnownValues": false,
            "cloneable": true,
            "notifyContactOwner": false,
            "recaptchaEnabled": false,
            "archivable": true,
            "notifyRecipients": [],
        },
        "displayOptions": {
            "renderRawHtml": false,
            "theme": "default_style",
            "submitButtonText": "Submit",
        },
        "legalConsentOptions": {"type": "none"},
    })
}

async fn field_types(ctx: &Ctx) -> Result<HashMap<String, String>, ApiError> {
    let ot = ctx.object_type("contacts").await?;
    Ok(ctx
        .store
        .properties(ctx.id(), &ot.type_id, false)
        .await?
        .into_iter()
        .map(|d| (d.name, d.field_type))
        .collect())
}

/// A form's definition from HubSpot's v3 shape; what it leaves out stays `None`.
fn form_input(body: &Value) -> Result<FormInput, ApiError> {
    if !body.is_object() {
        return Err(ApiError::validation(
            "the body must be a JSON object",
            "body",
        ));
    }
    let mut input = FormInput::default();
    if let Some(n) = body.get("name") {
        input.name = Some(
            n.as_str()
                .ok_or_else(|| ApiError::validation("name must be a string", "name"))?
                .to_string(),
        );
    }
    if let Some(groups) = body.get("fieldGroups") {
        let groups = groups
            .as_array()
            .ok_or_else(|| ApiError::validation("fieldGroups must be an array", "fieldGroups"))?;
        let mut fields = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let list = group
                .get("fields")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    ApiError::validation(
                        "each field group needs a fields array",
                        format!("fieldGroups[{g}].fields"),
                    )
                })?;
            for (i, f) in list.iter().enumerate() {
                let at = format!("fieldGroups[{g}].fields[{i}]");
                let object_type = f
                    .get("objectTypeId")
                    .and_then(Value::as_str)
                    .unwrap_or("0-1");
                if object_type != "0-1" {
                    return Err(ApiError::validation(
                        format!("only contact properties (objectTypeId 0-1) can be form fields, not {object_type}"),
                        format!("{at}.objectTypeId"),
                    ));
                }
                let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::validation("a field needs a name", format!("{at}.name"))
                })?;
                fields.push(FormField {
                    name: name.to_string(),
                    label: f
                        .get("label")
                        .and_then(Value::as_str)
                        .unwrap_or(name)
                        .to_string(),
                    required: f.get("required").and_then(Value::as_bool).unwrap_or(false),
                });
            }
        }
        input.fields = Some(fields);
    }
    if let Some(action) = body.pointer("/configuration/postSubmitAction") {
        match action.get("type").and_then(Value::as_str) {
            Some("thank_you") | None => {
                input.message = action
                    .get("value")
                    .and_then(Value::as_str)
                    .map(String::from)
            }
            Some(other) => {
                return Err(ApiError::validation(
                    format!("postSubmitAction {other:?} is not supported: only thank_you"),
                    "configuration.postSubmitAction.type",
                ))
            }
        }
    }
    Ok(input)
}

#[derive(Deserialize)]
pub struct ListQuery {
    archived: Option<bool>,
}

pub async fn list(ctx: Ctx, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let forms = ctx
        .store
        .forms(ctx.id(), q.archived.unwrap_or(false))
        .await?;
    let types = field_types(&ctx).await?;
    let results: Vec<Value> = forms.iter().map(|f| form_json(f, &types)).collect();
    Ok(Json(json!({ "results": results })))
}

pub async fn create(ctx: Ctx, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let input = form_input(&body)?;
    let form = ctx.store.create_form(ctx.id(), input).await?;
    audit(&ctx, "form.created", &form).await?;
    let types = field_types(&ctx).await?;
    Ok((StatusCode::CREATED, Json(form_json(&form, &types))).into_response())
}

async fn own_form(ctx: &Ctx, id: &str) -> Result<Form, ApiError> {
    ctx.store
        .form(ctx.id(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("form {id} does not exist")))
}

pub async fn get_one(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let form = own_form(&ctx, &id).await?;
    let types = field_types(&ctx).await?;
    Ok(Json(form_json(&form, &types)))
}

pub async fn update(
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let input = form_input(&body)?;
    let form = ctx.store.update_form(ctx.id(), &id, input).await?;
    audit(&ctx, "form.updated", &form).await?;
    let types = field_types(&ctx).await?;
    Ok(Json(form_json(&form, &types)))
}

pub async fn archive(ctx: Ctx, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let form = own_form(&ctx, &id).await?;
    if ctx.store.archive_form(ctx.id(), &id).await? {
        audit(&ctx, "form.archived", &form).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn audit(ctx: &Ctx, action: &str, form: &Form) -> Result<(), ApiError> {
    ctx.store
        .audit(
            ctx.id(),
            ctx.token.created_by,
            &format!("token {}", ctx.token.name),
            action,
            &format!("form {}", form.id),
            json!({"message": format!("Form \"{}\"", form.name), "form": form.id}),
        )
        .await?;
    Ok(())
}

/// The error body of HubSpot's submission endpoint.
fn submit_error(status: StatusCode, message: &str, errors: Vec<(String, &str)>) -> Response {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|(m, t)| json!({"message": m, "errorType": t}))
        .collect();
    let body = json!({
        "status": "error",
        "message": message,
        "correlationId": uuid::Uuid::new_v4().to_string(),
        "errors": errors,
    });
    cors((status, Json(body)).into_response())
}

/// Lets a web page of any origin submit (HubSpot's submission endpoint accepts cross-origin
/// requests: the form is on the customer's own site).
fn cors(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    resp
}

pub async fn submit_preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

/// The values of a submission's `fields`, checked for shape.
fn submitted_values(body: &Value) -> Result<Vec<(String, String)>, String> {
    let fields = body
        .get("fields")
        .and_then(Value::as_array)
        .ok_or("the body needs a fields array")?;
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or("each field needs a name")?;
        if let Some(t) = f.get("objectTypeId").and_then(Value::as_str) {
            if t != "0-1" {
                return Err(format!(
                    "Error in 'fields.{name}'. Only contact fields (0-1) are accepted"
                ));
            }
        }
        let value = match f.get("value") {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => return Err(format!("Error in 'fields.{name}'. A value is required")),
        };
        out.push((name.to_string(), value));
    }
    if out.len() > 1000 {
        return Err("a submission has at most 1000 fields".into());
    }
    Ok(out)
}

pub async fn submit(
    State(state): State<AppState>,
    client: Client,
    Path((portal, guid)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    // No token: each client address may send so many a minute, to any form.
    if let Some(ip) = client.0 {
        if let Err(wait) = state.submission_limiter.admit(ip) {
            let mut resp = submit_error(
                StatusCode::TOO_MANY_REQUESTS,
                "You have reached your secondly limit.",
                vec![(
                    "Too many submissions from this address; try again in a minute.".into(),
                    "RATE_LIMIT",
                )],
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
    }
    match submit_inner(&state, &portal, &guid, &body).await {
        Ok(r) => cors(r),
        Err(e) => cors(e.into_response()),
    }
}

async fn submit_inner(
    state: &AppState,
    portal: &str,
    guid: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let not_found = || {
        submit_error(
            StatusCode::NOT_FOUND,
            "The form could not be found.",
            vec![(
                format!("No form {guid} in portal {portal}"),
                "FORM_NOT_FOUND",
            )],
        )
    };
    let Some(account) = (match portal.trim().parse::<i64>() {
        Ok(id) => state.dir.account(id).await?,
        Err(_) => None,
    }) else {
        return Ok(not_found());
    };
    if account.state == LifecycleState::Suspended {
        return Ok(not_found());
    }
    let store = state.dir.cell(&account)?;
    let Some(form) = store.form(account.id, guid).await?.filter(|f| !f.archived) else {
        return Ok(not_found());
    };
    let body: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(submit_error(
                StatusCode::BAD_REQUEST,
                "The request is not valid",
                vec![(format!("Invalid JSON: {e}"), "INVALID_JSON")],
            ))
        }
    };
    let values = match submitted_values(&body) {
        Ok(v) => v,
        Err(m) => {
            return Ok(submit_error(
                StatusCode::BAD_REQUEST,
                "The request is not valid",
                vec![(m, "INVALID_FIELDS")],
            ))
        }
    };
    match store.check_submission(account.id, &form, &values).await {
        Ok(()) => {}
        Err(StoreError::Validation { message, code, .. }) => {
            return Ok(submit_error(
                StatusCode::BAD_REQUEST,
                "The request is not valid",
                vec![(message, code.as_str())],
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let now = now_ms();
    let submitted_at = match body.get("submittedAt") {
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
    .filter(|t| *t > 0 && *t <= now + 60_000)
    .unwrap_or(now);
    let text = |k: &str| {
        body.pointer(&format!("/context/{k}"))
            .and_then(Value::as_str)
            .map(|s| s.chars().take(2000).collect::<String>())
    };
    let sub = Submission {
        id: kontor_store::forms::new_guid(),
        form_id: form.id.clone(),
        submitted_at,
        received_at: now,
        values,
        page_uri: text("pageUri"),
        page_name: text("pageName"),
    };
    // Durable first, then applied in order behind any that wait.
    state.dir.queue_submission(account.id, &sub).await?;
    if let Err(e) = state.dir.apply_queued_submissions(account.id).await {
        tracing::warn!(account = account.id, error = %e, "applying form submissions; they wait");
    }
    let message = if state.dir.submission_waits(&sub.id).await? {
        format!("{} {DELAYED}", form.message)
    } else {
        form.message.clone()
    };
    Ok(Json(json!({ "inlineMessage": message })).into_response())
}

#[derive(Deserialize)]
pub struct SubmissionsQuery {
    limit: Option<i64>,
    after: Option<String>,
}

pub async fn submissions(
    ctx: Ctx,
    Path(guid): Path<String>,
    Query(q): Query<SubmissionsQuery>,
) -> Result<Json<Value>, ApiError> {
    own_form(&ctx, &guid).await?;
    let limit = q.limit.unwrap_or(20).clamp(1, 50);
    let offset: i64 = match q.after.as_deref() {
        None | Some("") => 0,
        Some(a) => a
            .parse()
            .map_err(|_| ApiError::validation("after must be a paging cursor", "after"))?,
    };
    let rows = ctx
        .store
        .form_submissions(ctx.id(), &guid, limit + 1, offset)
        .await?;
    let more = rows.len() as i64 > limit;
    let results: Vec<Value> = rows
        .iter()
        .take(limit as usize)
        .map(|s| {
            let values: Vec<Value> = s
                .submission
                .values
                .iter()
                .map(|(n, v)| json!({"name": n, "value": v, "objectTypeId": "0-1"}))
                .collect();
            json!({
                "conversionId": s.submission.id,
                "submittedAt": s.submission.submitted_at,
                "values": values,
                "pageUrl": s.submission.page_uri,
                "contactId": s.contact_id.map(|c| c.to_string()),
                "error": s.error,
            })
        })
        .collect();
    let mut out = json!({ "results": results });
    if more {
        out["paging"] = json!({"next": {"after": (offset + limit).to_string(), "link": format!("?after={}", offset + limit)}});
    }
    Ok(Json(out))
}
