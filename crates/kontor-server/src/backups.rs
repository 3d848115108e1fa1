//! `/kontor/v1/backups`: the admin API for backups, in the CRM API's error envelope.
//!
//! Every call needs a token of the account whose creator is an active super admin, or one the
//! operator issued on the command line. The download itself takes no token: it is a signed link
//! that expires with the file (see `kontor_jobs::links`).

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kontor_domain::time::{iso, now_ms};
use kontor_domain::Role;
use kontor_jobs::{links, Requester};
use kontor_store::{Account, Backup, Store};
use serde::Deserialize;
use serde_json::{json, Value};

/// The caller of an admin endpoint (backups, restores), checked to be an active super admin or
/// the operator.
pub struct SuperAdmin {
    pub ctx: Ctx,
    pub who: Requester,
}

impl axum::extract::FromRequestParts<AppState> for SuperAdmin {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let ctx = Ctx::from_request_parts(parts, state).await?;
        let who = super_admin(&ctx).await?;
        Ok(SuperAdmin { ctx, who })
    }
}

/// Who the token acts for, if that is an active super admin of its account or the operator
/// (a token made on the command line); 403 otherwise.
pub async fn super_admin(ctx: &Ctx) -> Result<Requester, ApiError> {
    match ctx.token.created_by {
        None => Ok(Requester {
            user_id: None,
            name: format!("operator token {}", ctx.token.name),
            operator_override: false,
        }),
        Some(uid) => match ctx.store.users(ctx.id()).await?.into_iter().find(|u| u.id == uid) {
            Some(u) if u.active && u.role == Role::SuperAdmin => Ok(Requester {
                user_id: Some(u.id),
                name: u.email,
                operator_override: false,
            }),
            _ => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "MISSING_SCOPES",
                "Only super admins can manage backups, restores and data moves; this token's user is not an active super admin.",
            )),
        },
    }
}

/// The JSON form of a backup.
pub fn backup_json(b: &Backup) -> Value {
    let t = |v: Option<i64>| v.map(iso);
    json!({
        "id": b.id.to_string(),
        "status": b.effective_state(now_ms()).to_uppercase(),
        "requestedBy": b.requested_by_name,
        "requestedAt": iso(b.requested_at),
        "startedAt": t(b.started_at),
        "completedAt": t(b.completed_at),
        "snapshotAt": t(b.snapshot_at),
        "snapshotSequence": b.snapshot_seq,
        "sizeBytes": b.size_bytes,
        "records": b.rows,
        "sha256": b.sha256,
        "downloadableUntil": t(b.expires_at.filter(|_| b.state == "completed")),
        "deletedAt": t(b.deleted_at),
        "error": b.error,
        "progress": {"done": b.progress_done, "total": b.progress_total, "percent": b.percent()},
        "attempts": b.attempts,
        "includesSensitiveData": true,
    })
}

pub async fn create(admin: SuperAdmin) -> Result<Response, ApiError> {
    let b = kontor_jobs::request_backup(&admin.ctx.store, &admin.ctx.account, &admin.who).await?;
    Ok((StatusCode::ACCEPTED, Json(backup_json(&b))).into_response())
}

pub async fn list(admin: SuperAdmin) -> Result<Json<Value>, ApiError> {
    let all = admin.ctx.store.backups(admin.ctx.id()).await?;
    Ok(Json(json!({
        "results": all.iter().map(backup_json).collect::<Vec<_>>(),
    })))
}

async fn find(store: &Store, account: i64, id: &str) -> Result<Backup, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("backup {id} does not exist")))?;
    store
        .backup(account, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("backup {id} does not exist")))
}

pub async fn get_one(admin: SuperAdmin, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let b = find(&admin.ctx.store, admin.ctx.id(), &id).await?;
    Ok(Json(backup_json(&b)))
}

fn not_downloadable(b: &Backup) -> ApiError {
    match b.effective_state(now_ms()) {
        "expired" => ApiError::new(
            StatusCode::GONE,
            "BACKUP_EXPIRED",
            format!(
                "Backup {} expired: its file was deleted {} days after completion.",
                b.id,
                kontor_domain::BACKUP_RETENTION_MS / 86_400_000
            ),
        ),
        "failed" => ApiError::new(
            StatusCode::CONFLICT,
            "BACKUP_FAILED",
            format!("Backup {} failed and has no file.", b.id),
        ),
        _ => ApiError::new(
            StatusCode::CONFLICT,
            "BACKUP_NOT_READY",
            format!("Backup {} is {}; its file is not ready yet.", b.id, b.state),
        ),
    }
}

/// A signed download link, valid until the file is deleted.
pub async fn download_link(
    State(state): State<AppState>,
    admin: SuperAdmin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let b = find(&admin.ctx.store, admin.ctx.id(), &id).await?;
    let url = state
        .jobs
        .download_url(admin.ctx.id(), &b)
        .ok_or_else(|| not_downloadable(&b))?;
    admin
        .ctx
        .store
        .audit(
            admin.ctx.id(),
            admin.who.user_id,
            &admin.who.name,
            "backup.link",
            &format!("backup {}", b.id),
            serde_json::json!({"message": "A download link was issued through the API."}),
        )
        .await?;
    Ok(Json(json!({
        "url": url,
        "expiresAt": b.expires_at.map(iso),
        "includesSensitiveData": true,
    })))
}

#[derive(Deserialize)]
pub struct LinkQuery {
    account: i64,
    expires: i64,
    signature: String,
}

/// Serves the archive to whoever holds a valid signed link.
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, ApiError> {
    let forbidden = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "INVALID_LINK",
            "This download link is not valid or has expired. Ask for a new one in Settings > Data Management > Backup.",
        )
    };
    let id: i64 = id.parse().map_err(|_| forbidden())?;
    if !links::verify(
        &state.jobs.keys.accepted(kontor_jobs::keys::Purpose::Links),
        q.account,
        id,
        q.expires,
        &q.signature,
        now_ms(),
    ) {
        return Err(forbidden());
    }
    let account: Account = state.dir.account(q.account).await?.ok_or_else(forbidden)?;
    crate::lifecycle::admit(&account)?;
    let store = state.dir.cell(&account)?.clone();
    let b = store.backup(account.id, id).await?.ok_or_else(forbidden)?;
    serve_archive(&state, &store, &account, &b, None, "signed link").await
}

/// Streams a completed backup's archive as an attachment, and audits it.
pub async fn serve_archive(
    state: &AppState,
    store: &Store,
    account: &Account,
    b: &Backup,
    user_id: Option<i64>,
    via: &str,
) -> Result<Response, ApiError> {
    let path =
        kontor_jobs::archive_path(&state.jobs, account, b).ok_or_else(|| not_downloadable(b))?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::internal(format!("the archive cannot be read: {e}")))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    store
        .audit(
            account.id,
            user_id,
            via,
            "backup.download",
            &format!("backup {}", b.id),
            serde_json::json!({"message": format!("{len} bytes downloaded (sensitive property values included)")}),
        )
        .await?;
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}\"",
                    kontor_jobs::download_name(account, b)
                ),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
