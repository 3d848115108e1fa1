//! HubSpot's engagements v1 API, read: `/engagements/v1/engagements/paged` and
//! `/engagements/v1/engagements/{engagementId}`, which sync tools still call to fetch a
//! portal's activity.
//!
//! kontor keeps notes, calls, tasks, meetings and e-mails as CRM objects; each is shown here as
//! the v1 engagement HubSpot would show for it: its record id is the engagement id (record ids
//! are unique within an account, whatever the type), its properties fill the type's `metadata`
//! (a v1 field is present when the record holds a value for the HubSpot property behind it,
//! and left out otherwise, as HubSpot leaves out unset fields), its associations with
//! contacts, companies, deals and tickets fill `associations`, and times are epoch
//! milliseconds. An e-mail's type follows its `hs_email_direction`: `EMAIL`,
//! `INCOMING_EMAIL` or `FORWARDED_EMAIL`.
//!
//! The paged listing visits every engagement of the account once, in id order: `offset` is
//! the last id of the page, and the next page starts after it. Writing through v1 is not
//! served (501).

use crate::auth::Ctx;
use crate::error::ApiError;
use crate::params::QueryParams;
use axum::extract::Path;
use axum::http::{Method, StatusCode, Uri};
use axum::Json;
use kontor_domain::time::parse_instant;
use kontor_store::{ObjectType, Record};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The page size when `limit` is not given, and the largest one served (a larger `limit` is
/// served as this, as HubSpot does).
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 250;

/// `bodyPreview` is the body as plain text, cut to this many characters.
const PREVIEW_CHARS: usize = 512;

/// Each object type that is an engagement, with the v1 type it shows as.
const KINDS: &[(&str, &str)] = &[
    ("0-46", "NOTE"),
    ("0-48", "CALL"),
    ("0-27", "TASK"),
    ("0-47", "MEETING"),
    ("0-49", "EMAIL"),
];

/// The object types whose associations `associations` lists, and the key each goes under.
const ASSOCIATED: &[(&str, &str)] = &[
    ("0-1", "contactIds"),
    ("0-2", "companyIds"),
    ("0-3", "dealIds"),
    ("0-5", "ticketIds"),
];

/// The account's engagement object types, in the order of `KINDS`.
async fn kinds(ctx: &Ctx) -> Result<Vec<(ObjectType, &'static str)>, ApiError> {
    let mut out = Vec::with_capacity(KINDS.len());
    for (type_id, kind) in KINDS {
        out.push((ctx.object_type(type_id).await?, *kind));
    }
    Ok(out)
}

/// A record's value of `name`, if it holds one.
fn text<'a>(r: &'a Record, name: &str) -> Option<&'a str> {
    r.props
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// A datetime property as epoch milliseconds.
fn millis(r: &Record, name: &str) -> Option<i64> {
    text(r, name).and_then(parse_instant)
}

/// A number property as a whole number.
fn whole(r: &Record, name: &str) -> Option<i64> {
    text(r, name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite())
        .map(|n| n.round() as i64)
}

/// Puts `value` under `key` when there is one.
fn put(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        m.insert(key.to_string(), v);
    }
}

/// The addresses of a `;`-separated list (HubSpot's form for e-mail recipients), each as
/// `{"email"}`.
fn recipients(r: &Record, name: &str) -> Value {
    Value::Array(
        text(r, name)
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| json!({ "email": e }))
            .collect(),
    )
}

/// The v1 type of an engagement record of `kind`.
fn v1_type(kind: &str, r: &Record) -> String {
    match (kind, text(r, "hs_email_direction")) {
        ("EMAIL", Some(d @ ("INCOMING_EMAIL" | "FORWARDED_EMAIL"))) => d.to_string(),
        _ => kind.to_string(),
    }
}

/// The type-specific `metadata` and the body its `bodyPreview` comes from.
fn metadata<'a>(kind: &str, r: &'a Record) -> (Map<String, Value>, Option<&'a str>) {
    let mut m = Map::new();
    let s = |name: &str| text(r, name).map(|v| json!(v));
    let body = match kind {
        "NOTE" => {
            put(&mut m, "body", s("hs_note_body"));
            text(r, "hs_note_body")
        }
        "CALL" => {
            put(&mut m, "toNumber", s("hs_call_to_number"));
            put(&mut m, "fromNumber", s("hs_call_from_number"));
            put(&mut m, "status", s("hs_call_status"));
            put(
                &mut m,
                "durationMilliseconds",
                whole(r, "hs_call_duration").map(|n| json!(n)),
            );
            put(&mut m, "recordingUrl", s("hs_call_recording_url"));
            put(&mut m, "disposition", s("hs_call_disposition"));
            put(&mut m, "body", s("hs_call_body"));
            put(&mut m, "title", s("hs_call_title"));
            text(r, "hs_call_body")
        }
        "TASK" => {
            put(&mut m, "body", s("hs_task_body"));
            put(&mut m, "subject", s("hs_task_subject"));
            put(&mut m, "status", s("hs_task_status"));
            put(&mut m, "taskType", s("hs_task_type"));
            put(&mut m, "priority", s("hs_task_priority"));
            text(r, "hs_task_body")
        }
        "MEETING" => {
            put(&mut m, "body", s("hs_meeting_body"));
            put(&mut m, "title", s("hs_meeting_title"));
            put(
                &mut m,
                "startTime",
                millis(r, "hs_meeting_start_time").map(|t| json!(t)),
            );
            put(
                &mut m,
                "endTime",
                millis(r, "hs_meeting_end_time").map(|t| json!(t)),
            );
            put(&mut m, "location", s("hs_meeting_location"));
            put(&mut m, "meetingOutcome", s("hs_meeting_outcome"));
            put(
                &mut m,
                "internalMeetingNotes",
                s("hs_internal_meeting_notes"),
            );
            text(r, "hs_meeting_body")
        }
        _ => {
            if let Some(email) = text(r, "hs_email_from_email") {
                let mut from = json!({ "email": email });
                if let Some(v) = text(r, "hs_email_from_firstname") {
                    from["firstName"] = json!(v);
                }
                if let Some(v) = text(r, "hs_email_from_lastname") {
                    from["lastName"] = json!(v);
                }
                m.insert("from".into(), from);
            }
            m.insert("to".into(), recipients(r, "hs_email_to_email"));
            m.insert("cc".into(), recipients(r, "hs_email_cc_email"));
            m.insert("bcc".into(), recipients(r, "hs_email_bcc_email"));
            put(&mut m, "subject", s("hs_email_subject"));
            put(&mut m, "text", s("hs_email_text"));
            put(&mut m, "html", s("hs_email_html"));
            text(r, "hs_email_text").or_else(|| text(r, "hs_email_html"))
        }
    };
    (m, body)
}

/// A body as plain text: tags dropped, runs of white space made one space, cut to
/// `PREVIEW_CHARS` characters. The text, and whether it was cut.
fn preview(body: &str) -> (String, bool) {
    let mut plain = String::with_capacity(body.len());
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                plain.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = plain.split_whitespace().collect();
    let joined = words.join(" ");
    match joined.char_indices().nth(PREVIEW_CHARS) {
        Some((at, _)) => (joined[..at].to_string(), true),
        None => (joined, false),
    }
}

/// One engagement as the v1 API shows it; `linked` holds its associations by v1 key.
fn engagement(
    portal: i64,
    kind: &str,
    r: &Record,
    linked: Option<&HashMap<&'static str, Vec<i64>>>,
) -> Value {
    let (meta, body) = metadata(kind, r);
    let mut e = json!({
        "id": r.id,
        "portalId": portal,
        "active": true,
        "createdAt": r.created_at,
        "lastUpdated": r.updated_at,
        "type": v1_type(kind, r),
        // Every engagement type requires hs_timestamp; should a record hold none, it is
        // placed at its creation.
        "timestamp": millis(r, "hs_timestamp").unwrap_or(r.created_at),
    });
    if let Some(owner) = text(r, "hubspot_owner_id").and_then(|v| v.trim().parse::<i64>().ok()) {
        e["ownerId"] = json!(owner);
    }
    if let Some((plain, cut)) = body.map(preview).filter(|(t, _)| !t.is_empty()) {
        e["bodyPreview"] = json!(plain);
        e["bodyPreviewIsTruncated"] = json!(cut);
    }
    let mut associations = json!({
        "contactIds": [],
        "companyIds": [],
        "dealIds": [],
        "ownerIds": [],
        "workflowIds": [],
        "ticketIds": [],
    });
    if let Some(linked) = linked {
        for (key, ids) in linked {
            associations[*key] = json!(ids);
        }
    }
    json!({
        "engagement": e,
        "associations": associations,
        "attachments": [],
        "metadata": meta,
    })
}

/// The associations of each record, by record id and v1 key.
async fn associations_of(
    ctx: &Ctx,
    ids: &[i64],
) -> Result<HashMap<i64, HashMap<&'static str, Vec<i64>>>, ApiError> {
    let types: Vec<&str> = ASSOCIATED.iter().map(|(t, _)| *t).collect();
    let mut out: HashMap<i64, HashMap<&'static str, Vec<i64>>> = HashMap::new();
    for (from, to_type, to) in ctx.store.associated_ids(ctx.id(), ids, &types).await? {
        if let Some((_, key)) = ASSOCIATED.iter().find(|(t, _)| *t == to_type) {
            out.entry(from)
                .or_default()
                .entry(key)
                .or_default()
                .push(to);
        }
    }
    Ok(out)
}

/// `limit`: 100 when not given, at most 250 (more is served as 250).
fn limit(q: &QueryParams) -> Result<usize, ApiError> {
    match q.first("limit") {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(MAX_LIMIT)),
            _ => Err(ApiError::validation(
                format!("limit must be a positive integer, got {v:?}"),
                "limit",
            )),
        },
    }
}

/// `offset`: the `offset` an earlier page answered (0, or absent, for the first page).
fn offset(q: &QueryParams) -> Result<i64, ApiError> {
    match q.first("offset") {
        None | Some("") => Ok(0),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::validation(
                    format!("offset {v:?} is not an offset this server answered"),
                    "offset",
                )
            }),
    }
}

/// `GET /engagements/v1/engagements/paged?limit=&offset=`: every engagement of the account,
/// in id order, `limit` at a time.
pub async fn paged(ctx: Ctx, q: QueryParams) -> Result<Json<Value>, ApiError> {
    let limit = limit(&q)?;
    let after = offset(&q)?;
    let kinds = kinds(&ctx).await?;
    let mut page: Vec<(&str, Record)> = Vec::new();
    let mut more = false;
    let mut total = 0;
    for (ot, kind) in &kinds {
        let found = ctx
            .store
            .list_records(ctx.id(), ot, false, Some(after), limit)
            .await?;
        more |= found.next_after.is_some();
        page.extend(found.records.into_iter().map(|r| (*kind, r)));
        total += ctx.store.count_records(ctx.id(), ot, false).await?;
    }
    page.sort_by_key(|(_, r)| r.id);
    if page.len() > limit {
        page.truncate(limit);
        more = true;
    }
    let ids: Vec<i64> = page.iter().map(|(_, r)| r.id).collect();
    let linked = associations_of(&ctx, &ids).await?;
    let results: Vec<Value> = page
        .iter()
        .map(|(kind, r)| engagement(ctx.id(), kind, r, linked.get(&r.id)))
        .collect();
    Ok(Json(json!({
        "results": results,
        "hasMore": more,
        "offset": ids.last().copied().unwrap_or(after),
        "total": total,
    })))
}

/// `GET /engagements/v1/engagements/{engagementId}`; 404 for an id that is not a live
/// engagement of this account.
pub async fn get_one(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::not_found(format!("engagement {id} does not exist"));
    let rid = id.trim().parse::<i64>().map_err(|_| not_found())?;
    let type_id = ctx
        .store
        .record_type(ctx.id(), rid)
        .await?
        .ok_or_else(not_found)?;
    let (type_id, kind) = KINDS
        .iter()
        .find(|(t, _)| *t == type_id)
        .ok_or_else(not_found)?;
    let ot = ctx.object_type(type_id).await?;
    let r = ctx
        .store
        .record(ctx.id(), &ot, rid, false)
        .await?
        .ok_or_else(not_found)?;
    let linked = associations_of(&ctx, &[rid]).await?;
    Ok(Json(engagement(ctx.id(), kind, &r, linked.get(&rid))))
}

/// Changing or deleting an engagement through v1: not served (to a token of the account, like
/// the rest of the API); the v3 objects API changes the record behind it.
pub async fn not_served(_: Ctx, method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NOT_IMPLEMENTED",
        format!(
            "kontor serves engagements v1 for reading only: {method} {} is not served; change the note, call, task, meeting or e-mail through /crm/v3/objects",
            uri.path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_is_the_body_as_plain_text() {
        assert_eq!(
            preview("<p>Called   <b>Ada</b></p>\n<p>again</p>"),
            ("Called Ada again".to_string(), false)
        );
        let long = "é".repeat(PREVIEW_CHARS + 3);
        let (text, cut) = preview(&long);
        assert!(cut);
        assert_eq!(text.chars().count(), PREVIEW_CHARS);
        assert_eq!(preview(""), (String::new(), false));
    }
}
