//! `/crm/v3/imports`: HubSpot's imports API. `POST` takes `multipart/form-data` with a text part
//! `importRequest` (the JSON request) and one part `files` (the CSV); the import runs as a job
//! and answers 200 at once with its state `STARTED`.
//!
//! Restores are imports too: they appear in the list with `importSource` `CRM_UI` (the only
//! values the official clients accept are HubSpot's) and a `restore` object saying what they
//! restored.

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::QueryParams;
use crate::AppState;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::Json;
use kontor_domain::time::iso;
use kontor_jobs::import::{request_import, upload_path, ImportSpec, MAX_FILE_BYTES};
use kontor_jobs::Requester;
use kontor_store::imports::{SOURCE_API, SOURCE_RESTORE};
use kontor_store::{Import, ImportError};
use serde_json::{json, Value};

/// HubSpot's `objectType` of an import error for a built-in type.
fn wire_object_type(type_id: &str) -> Option<&'static str> {
    Some(match type_id {
        "0-1" => "CONTACT",
        "0-2" => "COMPANY",
        "0-3" => "DEAL",
        "0-5" => "TICKET",
        "0-7" => "PRODUCT",
        "0-48" => "CALL",
        "0-27" => "TASK",
        _ => return None,
    })
}

/// Our reasons as HubSpot's `errorType` values (the clients accept only those).
fn wire_error_type(e: &ImportError, operation: &str) -> &'static str {
    match e.error_type.as_str() {
        "PROPERTY_DOESNT_EXIST" => "PROPERTY_DEFINITION_NOT_FOUND",
        "INVALID_EMAIL" => "INVALID_EMAIL",
        "INVALID_INTEGER" | "INVALID_NUMBER" | "INVALID_FLOAT" => "COULD_NOT_PARSE_NUMBER",
        "INVALID_DATE" | "INVALID_DATETIME" => "COULD_NOT_PARSE_DATE",
        "INVALID_OPTION" | "INVALID_BOOLEAN" => "INVALID_ENUMERATION_OPTION",
        "INVALID_OWNER_ID" => "COULD_NOT_FIND_OWNER",
        "REQUIRED_PROPERTY" => "MISSING_REQUIRED_PROPERTY",
        "DUPLICATE_VALUE" => "DUPLICATE_UNIQUE_PROPERTY_VALUE",
        "DUPLICATE_ID" => "DUPLICATE_RECORD_ID",
        "INVALID_OBJECT_ID" => "INVALID_RECORD_ID",
        "OBJECT_ALREADY_EXISTS" if operation == "CREATE" => "CREATE_ONLY_IMPORT",
        "OBJECT_ALREADY_EXISTS" => "DUPLICATE_RECORD_ID",
        "OBJECT_NOT_FOUND" | "MISSING_ID" if operation == "UPDATE" => "UPDATE_ONLY_IMPORT",
        "OBJECT_NOT_FOUND" | "MISSING_ID" => "INVALID_RECORD_ID",
        "INVALID_LENGTH" | "INVALID_TYPE" | "READ_ONLY_VALUE" | "CONFLICT" => "FAILED_VALIDATION",
        _ => "UNKNOWN_ERROR",
    }
}

/// The JSON form of an import (HubSpot's `PublicImportResponse`, plus kontor's own fields).
pub fn import_json(i: &Import) -> Value {
    let mut v = json!({
        "id": i.id.to_string(),
        "state": i.state,
        "importName": i.name,
        "importSource": if i.source == SOURCE_API { "API" } else { "CRM_UI" },
        "optOutImport": false,
        "mappedObjectTypeIds": [i.object_type],
        "importRequestJson": i.request,
        "metadata": {
            "counters": {
                "TOTAL_ROWS": i.rows_total,
                "PROCESSED_ROWS": i.rows_done,
                "CREATED_OBJECTS": i.created,
                "UPDATED_OBJECTS": i.updated,
                "UNCHANGED_OBJECTS": i.unchanged,
                "ERRORS": i.errors,
                "CONFLICTS": i.conflicts,
            },
            "fileIds": i.file_key.as_ref().map(|_| vec![i.id.to_string()]).unwrap_or_default(),
            "objectLists": [],
        },
        "createdAt": iso(i.created_at),
        "updatedAt": iso(i.updated_at),
        "progress": {"done": i.rows_done, "total": i.rows_total, "percent": i.percent()},
        "createdBy": i.created_by_name,
    });
    if let Some(at) = i.finished_at {
        v["finishedAt"] = json!(iso(at));
    }
    if let Some(e) = &i.error {
        v["error"] = json!(e);
    }
    if i.source == SOURCE_RESTORE {
        v["restore"] = json!({
            "backupId": i.request.get("backupId"),
            "planId": i.request.get("restorePlanId"),
            "revertsImport": i.request.get("revertsImport"),
            "objectType": i.request.get("objectType"),
            "properties": i.request.get("properties"),
            "overwriteNewer": i.request.get("overwriteNewer"),
            "revertedBy": i.reverted_by.map(|r| r.to_string()),
        });
    }
    v
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

/// A multipart body that could not be read, in the error envelope (axum answers plain text):
/// 413 when it is larger than the server takes, 400 otherwise.
fn multipart_error(what: &str, e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "VALIDATION_ERROR",
            "the request body is larger than this server accepts",
        )
    } else {
        bad_request(format!("{what} could not be read: {}", e.body_text()))
    }
}

/// The paging cursor `after` of the list and the errors (an id this server issued).
fn cursor(q: &QueryParams) -> Result<Option<i64>, ApiError> {
    match q.first("after").filter(|s| !s.is_empty()) {
        Some(a) => a.parse::<i64>().map(Some).map_err(|_| {
            ApiError::validation(format!("after {a:?} is not a paging cursor"), "after")
        }),
        None => Ok(None),
    }
}

/// A boolean query parameter that may be left out (the clients send `True`/`true`).
fn flag(q: &QueryParams, key: &str, default: bool) -> Result<bool, ApiError> {
    match q.first(key) {
        None | Some("") => Ok(default),
        Some(_) => q.bool(key),
    }
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("import {id} does not exist")))
}

async fn find(ctx: &Ctx, id: &str) -> Result<Import, ApiError> {
    let n = parse_id(id)?;
    ctx.store
        .import(ctx.id(), n)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("import {id} does not exist")))
}

fn requester(ctx: &Ctx) -> Requester {
    Requester {
        user_id: ctx.token.created_by,
        name: format!("API token {}", ctx.token.name),
        operator_override: false,
    }
}

pub async fn create(
    State(state): State<AppState>,
    ctx: Ctx,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    let bad = bad_request;
    let mut form = form.map_err(|e| {
        bad(format!(
            "send the import as multipart/form-data with the parts importRequest and files: {}",
            e.body_text()
        ))
    })?;
    let mut request: Option<Value> = None;
    // The first file is streamed to disk as it arrives (never held in memory), capped; the
    // names of all are kept, for the request's check of how many files it describes.
    let mut file: Option<Staged> = None;
    let mut names: Vec<String> = Vec::new();
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error("the multipart body", e))?
    {
        match field.name().unwrap_or("") {
            "importRequest" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| multipart_error("importRequest", e))?;
                request = Some(
                    serde_json::from_str(&text)
                        .map_err(|e| bad(format!("importRequest is not valid JSON: {e}")))?,
                );
            }
            "files" if file.is_none() => {
                names.push(field.file_name().unwrap_or("import.csv").to_string());
                let staged = Staged(upload_path(&state.jobs, &ctx.account));
                stream_to(&mut field, &staged.0).await?;
                file = Some(staged);
            }
            "files" => {
                names.push(field.file_name().unwrap_or("import.csv").to_string());
                while let Some(_chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error("the file", e))?
                {}
            }
            _ => {
                while let Some(_chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error("the multipart body", e))?
                {}
            }
        }
    }
    let request = request.ok_or_else(|| {
        bad("the part importRequest is missing: send the import request as JSON text".into())
    })?;
    let Some(staged) = file else {
        return Err(bad("the part files is missing: send the CSV file".into()));
    };
    let spec = ImportSpec::from_request(&ctx.store, ctx.id(), &request, &names).await?;
    let imp = request_import(
        &state.jobs,
        &ctx.store,
        &ctx.account,
        &spec,
        &staged.0,
        SOURCE_API,
        &requester(&ctx),
    )
    .await?;
    Ok(Json(import_json(&imp)))
}

/// An upload on disk, deleted when dropped unless it was moved away (queued).
struct Staged(std::path::PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes a multipart field to `path` chunk by chunk; 413 past the largest file an import takes.
async fn stream_to(
    field: &mut axum::extract::multipart::Field<'_>,
    path: &std::path::Path,
) -> Result<(), ApiError> {
    use tokio::io::AsyncWriteExt;
    let io = |e: std::io::Error| ApiError::internal(format!("storing the file: {e}"));
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
    }
    let mut out = tokio::fs::File::create(path).await.map_err(io)?;
    let mut size = 0usize;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error("the file", e))?
    {
        size += chunk.len();
        if size > MAX_FILE_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "VALIDATION_ERROR",
                format!(
                    "the file is larger than {} MiB: split it into smaller files",
                    MAX_FILE_BYTES >> 20
                ),
            ));
        }
        out.write_all(&chunk).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    Ok(())
}

pub async fn list(ctx: Ctx, q: QueryParams) -> Result<Json<Value>, ApiError> {
    let limit = q.limit(100, 500)?;
    let before = cursor(&q)?;
    let mut page = ctx.store.imports(ctx.id(), before, limit + 1).await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let mut body = json!({ "results": page.iter().map(import_json).collect::<Vec<_>>() });
    if more {
        if let Some(last) = page.last() {
            body["paging"] = json!({"next": {"after": last.id.to_string(),
                "link": format!("/crm/v3/imports?after={}", last.id)}});
        }
    }
    Ok(Json(body))
}

pub async fn get_one(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(import_json(&find(&ctx, &id).await?)))
}

pub async fn cancel(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let imp = find(&ctx, &id).await?;
    // A restore is a super admin's to stop, as it was theirs to start.
    let who = if imp.is_restore() {
        crate::backups::super_admin(&ctx).await?
    } else {
        requester(&ctx)
    };
    let done = ctx.store.cancel_import(ctx.id(), imp.id).await?;
    ctx.store
        .audit(
            ctx.id(),
            who.user_id,
            &who.name,
            "import.cancel",
            &format!("import {}", imp.id),
            serde_json::json!({"message": format!(
                "{:?} canceled after {} of {} rows",
                done.name, done.rows_done, done.rows_total
            )}),
        )
        .await?;
    Ok(Json(json!({
        "status": "COMPLETE",
        "requestedAt": iso(kontor_domain::time::now_ms()),
        "startedAt": iso(done.created_at),
        "completedAt": iso(done.finished_at.unwrap_or(done.updated_at)),
    })))
}

/// The 1-based column of the file that a property is mapped from (the mappings are in file
/// column order).
fn column_number(imp: &Import, property: &str) -> Option<usize> {
    imp.request
        .pointer("/files/0/fileImportPage/columnMappings")?
        .as_array()?
        .iter()
        .position(|m| m.get("propertyName").and_then(Value::as_str) == Some(property))
        .map(|i| i + 1)
}

/// One rejected row as HubSpot's `PublicImportError`. `sourceData.rowData` is required by the
/// clients' model, so it is always there: empty unless the row's values were asked for.
pub fn error_json(imp: &Import, e: &ImportError, message: bool, row: bool) -> Value {
    let row_data: &[String] = if row { &e.row_data } else { &[] };
    let mut v = json!({
        "id": e.id.to_string(),
        "errorType": wire_error_type(e, &imp.operation),
        "createdAt": e.created_at,
        "objectTypeId": imp.object_type,
        "sourceData": {
            "rowData": row_data,
            "lineNumber": e.line,
            "fileId": imp.id,
            "containsEncryptedProperties": false,
        },
    });
    if let Some(t) = wire_object_type(&imp.object_type) {
        v["objectType"] = json!(t);
    }
    if let Some(p) = &e.property {
        if let Some(n) = column_number(imp, p) {
            v["knownColumnNumber"] = json!(n);
        }
        v["propertyName"] = json!(p);
    }
    if let Some(x) = &e.invalid_value {
        v["invalidValue"] = json!(x);
    }
    if let Some(id) = e.record_id {
        v["recordId"] = json!(id.to_string());
    }
    if message {
        v["errorMessage"] = json!(e.message);
        v["reason"] = json!(e.error_type);
    }
    v
}

pub async fn errors(
    ctx: Ctx,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let imp = find(&ctx, &id).await?;
    let limit = q.limit(100, 500)?;
    let after = cursor(&q)?.unwrap_or(0);
    let message = flag(&q, "includeErrorMessage", true)?;
    let row = flag(&q, "includeRowData", true)?;
    let mut rows = ctx
        .store
        .import_errors(ctx.id(), imp.id, after, limit + 1)
        .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let mut body = json!({
        "results": rows.iter().map(|e| error_json(&imp, e, message, row)).collect::<Vec<_>>(),
    });
    if more {
        if let Some(last) = rows.last() {
            body["paging"] = json!({"next": {"after": last.id.to_string(),
                "link": format!("/crm/v3/imports/{}/errors?after={}", imp.id, last.id)}});
        }
    }
    Ok(Json(body))
}
