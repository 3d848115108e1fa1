//! Importing a file from the console, in steps: upload (the object type, the operation and the
//! CSV file), the mapping (which property each column fills, and how rows find the records they
//! update), a preview of what each row will do, then the import job.
//!
//! Between the steps the file waits in a staging folder of the region's file store, below the
//! account and the user: `staging/imports/<account>/<user>/<token>.csv`, with what was chosen at
//! upload beside it in `<token>.json`. The token is random; a client only ever sends the token,
//! never a path, and a token only finds files of the signed-in user. The staged file is deleted
//! once the import starts (the job keeps its own copy) or is discarded; files left behind are
//! swept after a day.

use super::{csrf, operation_label, reply, requester, sentence, PAGE};
use crate::console::{Console, PageError};
use crate::AppState;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::time::now_ms;
use kontor_domain::{PropertyDef, Role};
use kontor_jobs::import::{
    console_request, preview, request_import, ImportSpec, Matcher, Preview, MAX_FILE_BYTES,
};
use kontor_store::imports::SOURCE_UI;
use kontor_store::{ObjectType, Operation, StoreError};
use maud::{html, Markup};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use tokio::io::AsyncWriteExt;

/// How long an uploaded file waits for its import.
const STAGING_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// Bytes read from the start of the file for the mapping step.
const HEAD_BYTES: usize = 256 * 1024;
/// Example values shown per column.
const SAMPLE_ROWS: usize = 3;
/// Rows the preview shows (the counts cover many more).
const PREVIEW_ROWS: usize = 10;

/// What was chosen at upload, kept beside the staged file.
#[derive(Serialize, Deserialize)]
struct Staged {
    /// The object type's id.
    object_type: String,
    operation: String,
    file_name: String,
    bytes: u64,
    created_at: i64,
}

fn staging_dir(state: &AppState, c: &Console) -> PathBuf {
    state
        .jobs
        .files_root(c.account.region)
        .join("staging")
        .join("imports")
        .join(c.id().to_string())
        .join(c.session.user.id.to_string())
}

fn new_token() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn valid_token(t: &str) -> bool {
    t.len() == 32
        && t.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn discard(dir: &FsPath, token: &str) {
    for ext in ["csv", "json", "partial"] {
        let _ = std::fs::remove_file(dir.join(format!("{token}.{ext}")));
    }
}

/// Deletes the user's staged files older than a day.
fn sweep(dir: &FsPath) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let cutoff = std::time::SystemTime::now()
        .checked_sub(std::time::Duration::from_millis(STAGING_TTL_MS as u64));
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .zip(cutoff)
            .is_some_and(|(m, cutoff)| m < cutoff);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The staged file of a token, with what was chosen for it; not found for anything else.
fn load_staged(state: &AppState, c: &Console, token: &str) -> Result<(Staged, PathBuf), PageError> {
    if !valid_token(token) {
        return Err(PageError::not_found());
    }
    let dir = staging_dir(state, c);
    let meta = std::fs::read(dir.join(format!("{token}.json"))).map_err(|_| gone())?;
    let staged: Staged = serde_json::from_slice(&meta).map_err(|_| gone())?;
    if staged.created_at < now_ms() - STAGING_TTL_MS {
        discard(&dir, token);
        return Err(gone());
    }
    let path = dir.join(format!("{token}.csv"));
    if !path.is_file() {
        return Err(gone());
    }
    Ok((staged, path))
}

fn gone() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "This uploaded file is no longer here: it was imported, discarded, or waited longer than a day. Upload it again from Imports.",
    )
}

/// A file name as the user's computer gave it, without any folder, for display.
fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    cleaned.trim().to_string()
}

/// The first records of CSV text (RFC 4180: quoted values, doubled quotes, CRLF or LF). A record
/// cut off at the end is dropped unless the text is the whole file. Blank lines are skipped.
fn csv_head(text: &str, max: usize, complete: bool) -> Result<Vec<Vec<String>>, String> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let end_record = |record: &mut Vec<String>, field: &mut String, out: &mut Vec<Vec<String>>| {
        record.push(std::mem::take(field));
        let rec = std::mem::take(record);
        if !(rec.len() == 1 && rec[0].trim().is_empty()) {
            out.push(rec);
        }
    };
    while let Some(ch) = chars.next() {
        if in_quotes {
            if ch == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(ch);
            }
            continue;
        }
        match ch {
            '"' if field.is_empty() && !quoted => {
                in_quotes = true;
                quoted = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                quoted = false;
            }
            '\r' | '\n' => {
                if ch == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                end_record(&mut record, &mut field, &mut out);
                quoted = false;
                if out.len() >= max {
                    return Ok(out);
                }
            }
            _ => field.push(ch),
        }
    }
    if complete {
        if in_quotes {
            return Err("a quoted value is not closed: check the quotes in the file".into());
        }
        if !field.is_empty() || !record.is_empty() {
            end_record(&mut record, &mut field, &mut out);
        }
    }
    Ok(out)
}

/// The header and a few example rows of a staged file.
struct Head {
    header: Vec<String>,
    samples: Vec<Vec<String>>,
}

fn read_head(path: &FsPath) -> Result<Head, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("the file cannot be read: {e}"))?;
    let mut buf = Vec::with_capacity(HEAD_BYTES);
    f.take(HEAD_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("the file cannot be read: {e}"))?;
    let complete = buf.len() <= HEAD_BYTES;
    buf.truncate(HEAD_BYTES);
    let text = match std::str::from_utf8(&buf) {
        Ok(t) => t,
        // A character cut in two at the end of what was read.
        Err(e) if e.error_len().is_none() && !complete => {
            std::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => {
            return Err(
                "the file is not UTF-8 text: save it as \"CSV UTF-8\" and upload it again".into(),
            )
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains('\0') {
        return Err("the file is not a CSV text file".into());
    }
    let mut records = csv_head(text, SAMPLE_ROWS + 1, complete)?.into_iter();
    let header: Vec<String> = records
        .next()
        .ok_or("the file is empty")?
        .into_iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err("the first line of the file must name its columns".into());
    }
    let samples: Vec<Vec<String>> = records.collect();
    if samples.is_empty() && complete {
        return Err("the file has a header but no rows to import".into());
    }
    Ok(Head { header, samples })
}

fn parse_operation(s: &str) -> Option<Operation> {
    Operation::parse(s)
}

/// The upload form.
fn upload_view(
    c: &Console,
    types: &[ObjectType],
    object: &str,
    operation: &str,
    error: Option<&str>,
) -> Markup {
    let op = |value: &str, label: &str, hint: &str| {
        let id = format!("op-{}", value.to_lowercase());
        html! {
            div.choice {
                input type="radio" id=(id) name="operation" value=(value) checked[operation == value];
                label for=(id) { (label) " " span.muted { "— " (hint) } }
            }
        }
    };
    c.page(
        "Import a file",
        PAGE,
        html! {
            p { a href=(PAGE) { "← Imports" } }
            h1 { "Import a file" }
            @if let Some(e) = error { div.flash.warn #upload-error role="alert" { (e) } }
            form.card method="post" action=(format!("{PAGE}/new")) enctype="multipart/form-data" {
                (csrf(c))
                p.muted { "Step 1 of 3: the file. Then you say which property each column fills, and you see what each row will do before anything is imported." }
                label for="import-object" { "Object" }
                select #import-object name="object" {
                    @for t in types {
                        option value=(t.name) selected[t.name == object] { (t.label_plural) }
                    }
                }
                fieldset.choices {
                    legend { "What rows do" }
                    (op("CREATE", "Create", "every row creates a new record; a row whose record already exists is rejected"))
                    (op("UPDATE", "Update", "rows update records that exist; a row whose record is not found is rejected"))
                    (op("UPSERT", "Create and update", "rows update the records they find and create the others"))
                }
                label for="import-file" { "CSV file" }
                p.muted.field-hint #import-file-hint { "UTF-8 text with a header line naming the columns; up to " (MAX_FILE_BYTES >> 20) " MiB." }
                input #import-file type="file" name="file" accept=".csv,text/csv" required aria-describedby="import-file-hint";
                div.actions-row {
                    button type="submit" { "Upload" }
                    a.button.secondary href=(PAGE) { "Cancel" }
                }
            }
        },
    )
}

async fn import_types(c: &Console) -> Result<Vec<ObjectType>, PageError> {
    Ok(c.store.object_types(c.id()).await?)
}

pub async fn new_page(c: Console) -> Result<Markup, PageError> {
    c.require(Role::Admin)?;
    let types = import_types(&c).await?;
    Ok(upload_view(&c, &types, "contacts", "UPSERT", None))
}

/// Why an upload was refused.
struct Refused(StatusCode, String);

impl Refused {
    fn bad(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

/// Takes the upload: checks the form's token before any byte of the file, writes the file to
/// the staging folder as it arrives, then checks its header.
pub async fn upload(
    State(state): State<AppState>,
    c: Console,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let types = import_types(&c).await?;
    let dir = staging_dir(&state, &c);
    let token = new_token();
    let mut object = String::new();
    let mut operation = "UPSERT".to_string();
    let outcome = match form {
        Ok(mut mp) => receive(&c, &mut mp, &dir, &token, &mut object, &mut operation).await,
        Err(_) => Err(Refused::bad(
            "The form did not arrive as a file upload. Choose a CSV file and try again.",
        )),
    };
    let refused = match outcome {
        Ok(Some(file_name)) => {
            match finish_upload(&types, &dir, &token, &object, &operation, file_name) {
                Ok(()) => {
                    sweep(&dir);
                    return Ok(Redirect::to(&format!("{PAGE}/new/{token}")).into_response());
                }
                Err(r) => r,
            }
        }
        Ok(None) => Refused::bad("Choose a CSV file to import."),
        Err(r) => r,
    };
    discard(&dir, &token);
    if refused.0 == StatusCode::FORBIDDEN {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form is out of date or did not come from this console. Reload the page and try again.",
        ));
    }
    let object = if object.is_empty() {
        "contacts"
    } else {
        &object
    };
    Ok(reply(
        refused.0,
        upload_view(&c, &types, object, &operation, Some(&refused.1)),
    ))
}

/// Reads the form's fields; the file goes to `<token>.partial`. The file's name, or `None`
/// when no file was chosen.
async fn receive(
    c: &Console,
    mp: &mut Multipart,
    dir: &FsPath,
    token: &str,
    object: &mut String,
    operation: &mut String,
) -> Result<Option<String>, Refused> {
    let cut = |e: axum::extract::multipart::MultipartError| {
        Refused::bad(format!("The upload did not arrive whole ({e}). Try again."))
    };
    let mut csrf_ok = false;
    let mut file = None;
    while let Some(mut field) = mp.next_field().await.map_err(cut)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "_csrf" => {
                let v = field.text().await.map_err(cut)?;
                if c.check_csrf(&v).is_err() {
                    return Err(Refused(StatusCode::FORBIDDEN, String::new()));
                }
                csrf_ok = true;
            }
            "object" => *object = field.text().await.map_err(cut)?.trim().to_string(),
            "operation" => *operation = field.text().await.map_err(cut)?.trim().to_string(),
            "file" => {
                // No byte of a file is written before the form's token is checked.
                if !csrf_ok {
                    return Err(Refused(StatusCode::FORBIDDEN, String::new()));
                }
                let file_name = clean_file_name(field.file_name().unwrap_or(""));
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    Refused(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("The file could not be stored: {e}"),
                    )
                })?;
                let path = dir.join(format!("{token}.partial"));
                let mut out = tokio::fs::File::create(&path).await.map_err(|e| {
                    Refused(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("The file could not be stored: {e}"),
                    )
                })?;
                let mut size = 0usize;
                while let Some(chunk) = field.chunk().await.map_err(cut)? {
                    size += chunk.len();
                    if size > MAX_FILE_BYTES {
                        return Err(Refused(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "The file is larger than {} MiB. Split it into smaller files.",
                                MAX_FILE_BYTES >> 20
                            ),
                        ));
                    }
                    out.write_all(&chunk).await.map_err(|e| {
                        Refused(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("The file could not be stored: {e}"),
                        )
                    })?;
                }
                out.sync_all().await.map_err(|e| {
                    Refused(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("The file could not be stored: {e}"),
                    )
                })?;
                if size > 0 {
                    file = Some(if file_name.is_empty() {
                        "import.csv".to_string()
                    } else {
                        file_name
                    });
                }
            }
            _ => while field.chunk().await.map_err(cut)?.is_some() {},
        }
    }
    if !csrf_ok {
        return Err(Refused(StatusCode::FORBIDDEN, String::new()));
    }
    Ok(file)
}

fn finish_upload(
    types: &[ObjectType],
    dir: &FsPath,
    token: &str,
    object: &str,
    operation: &str,
    file_name: String,
) -> Result<(), Refused> {
    let ot = types
        .iter()
        .find(|t| t.name == object)
        .ok_or_else(|| Refused::bad("Choose the object the file's rows are."))?;
    let op = parse_operation(operation)
        .ok_or_else(|| Refused::bad("Choose what the rows do: create, update, or both."))?;
    let partial = dir.join(format!("{token}.partial"));
    let bytes = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    read_head(&partial).map_err(|e| {
        Refused::bad(format!(
            "{} cannot be imported: {}",
            file_name,
            sentence(&e)
        ))
    })?;
    let staged = Staged {
        object_type: ot.type_id.clone(),
        operation: op.as_str().to_string(),
        file_name,
        bytes,
        created_at: now_ms(),
    };
    let meta = serde_json::to_vec(&staged)
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    std::fs::write(dir.join(format!("{token}.json")), meta)
        .and_then(|_| std::fs::rename(&partial, dir.join(format!("{token}.csv"))))
        .map_err(|e| {
            Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("The file could not be stored: {e}"),
            )
        })?;
    Ok(())
}

/// Letters and digits only, lower case: "First Name", "firstname" and "first_name" meet.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Properties a column may fill: Record ID, then the writable ones.
fn importable(defs: &[PropertyDef]) -> Vec<&PropertyDef> {
    let mut v: Vec<&PropertyDef> = defs
        .iter()
        .filter(|d| {
            d.name == "hs_object_id" || (!d.read_only_value && !d.calculated && !d.archived)
        })
        .collect();
    v.sort_by(|a, b| {
        (a.name != "hs_object_id")
            .cmp(&(b.name != "hs_object_id"))
            .then(a.label.to_lowercase().cmp(&b.label.to_lowercase()))
    });
    v
}

/// Properties that can find a record: unique ones.
fn unique_keys(defs: &[PropertyDef]) -> Vec<&PropertyDef> {
    importable(defs)
        .into_iter()
        .filter(|d| d.has_unique_value && d.name != "hs_object_id")
        .collect()
}

/// What the user chose in the mapping step.
#[derive(Clone)]
struct Mapping {
    name: String,
    operation: Operation,
    /// Per column of the file: the property it fills.
    columns: Vec<Option<String>>,
    /// `hs_object_id`, a unique property, or empty (every row creates).
    key: String,
}

fn default_mapping(staged: &Staged, head: &Head, defs: &[PropertyDef]) -> Mapping {
    let choices = importable(defs);
    let mut taken: Vec<String> = Vec::new();
    let columns: Vec<Option<String>> = head
        .header
        .iter()
        .map(|h| {
            let s = squash(h);
            if s.is_empty() {
                return None;
            }
            let found = choices
                .iter()
                .find(|d| squash(&d.name) == s)
                .or_else(|| choices.iter().find(|d| squash(&d.label) == s))
                .map(|d| d.name.clone())
                .filter(|p| !taken.contains(p));
            if let Some(p) = &found {
                taken.push(p.clone());
            }
            found
        })
        .collect();
    let key = if taken.iter().any(|p| p == "hs_object_id") {
        "hs_object_id".to_string()
    } else {
        unique_keys(defs)
            .iter()
            .find(|d| taken.contains(&d.name))
            .map(|d| d.name.clone())
            .unwrap_or_default()
    };
    Mapping {
        name: staged.file_name.clone(),
        operation: parse_operation(&staged.operation).unwrap_or(Operation::Upsert),
        columns,
        key,
    }
}

fn mapping_from_form(form: &[(String, String)], columns: usize, staged: &Staged) -> Mapping {
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    Mapping {
        name: get("name").unwrap_or(&staged.file_name).trim().to_string(),
        operation: get("operation")
            .and_then(parse_operation)
            .or_else(|| parse_operation(&staged.operation))
            .unwrap_or(Operation::Upsert),
        columns: (0..columns)
            .map(|i| {
                get(&format!("map-{i}"))
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
            })
            .collect(),
        key: get("key").unwrap_or("").trim().to_string(),
    }
}

/// Messages of the mapping step.
#[derive(Default)]
struct MapErrors {
    general: Vec<String>,
    name: Option<String>,
    key: Option<String>,
    columns: HashMap<usize, String>,
}

impl MapErrors {
    fn is_empty(&self) -> bool {
        self.general.is_empty()
            && self.name.is_none()
            && self.key.is_none()
            && self.columns.is_empty()
    }
}

/// What the page needs about the object type.
struct Target {
    ot: ObjectType,
    defs: Vec<PropertyDef>,
    groups: Vec<(String, String)>,
}

async fn target(c: &Console, staged: &Staged) -> Result<Target, PageError> {
    let ot = c
        .store
        .object_type(c.id(), &staged.object_type)
        .await?
        .ok_or_else(PageError::not_found)?;
    let defs = c.store.properties(c.id(), &ot.type_id, false).await?;
    let groups = c
        .store
        .property_groups(c.id(), &ot.type_id)
        .await?
        .into_iter()
        .map(|g| (g.name, g.label))
        .collect();
    Ok(Target { ot, defs, groups })
}

fn label_of(defs: &[PropertyDef], name: &str) -> String {
    defs.iter()
        .find(|d| d.name == name)
        .map_or_else(|| name.to_string(), |d| d.label.clone())
}

/// The property choices of one column, grouped like the record page.
fn property_select(
    id: &str,
    t: &Target,
    selected: Option<&str>,
    label: &str,
    error: bool,
) -> Markup {
    let choices = importable(&t.defs);
    let mut groups: Vec<(&str, Vec<&PropertyDef>)> = t
        .groups
        .iter()
        .map(|(name, label)| {
            (
                label.as_str(),
                choices
                    .iter()
                    .filter(|d| &d.group_name == name && d.name != "hs_object_id")
                    .copied()
                    .collect(),
            )
        })
        .collect();
    let grouped: Vec<&str> = t.groups.iter().map(|(n, _)| n.as_str()).collect();
    let other: Vec<&PropertyDef> = choices
        .iter()
        .filter(|d| d.name != "hs_object_id" && !grouped.contains(&d.group_name.as_str()))
        .copied()
        .collect();
    groups.push(("Other properties", other));
    html! {
        select id=(id) name=(id) aria-label=(label) aria-invalid=[error.then_some("true")] aria-describedby=[error.then(|| format!("{id}-error"))] {
            option value="" selected[selected.is_none()] { "Don't import" }
            option value="hs_object_id" selected[selected == Some("hs_object_id")] { "Record ID" }
            @for (glabel, defs) in &groups {
                @if !defs.is_empty() {
                    optgroup label=(glabel) {
                        @for d in defs {
                            option value=(d.name) selected[selected == Some(d.name.as_str())] { (d.label) }
                        }
                    }
                }
            }
        }
    }
}

fn operation_select(selected: Operation) -> Markup {
    html! {
        select #import-operation name="operation" {
            @for op in [Operation::Create, Operation::Update, Operation::Upsert] {
                option value=(op.as_str()) selected[op == selected] { (operation_label(op.as_str())) }
            }
        }
    }
}

/// Step 2: the columns and what they fill.
fn mapping_view(
    c: &Console,
    token: &str,
    staged: &Staged,
    t: &Target,
    head: &Head,
    m: &Mapping,
    errors: &MapErrors,
) -> Markup {
    let action = format!("{PAGE}/new/{token}");
    let keys = unique_keys(&t.defs);
    let key_choice = |value: &str, label: &str, hint: &str| {
        let id = if value.is_empty() {
            "key-none".to_string()
        } else {
            format!("key-{value}")
        };
        html! {
            div.choice {
                input type="radio" id=(id) name="key" value=(value) checked[m.key == value];
                label for=(id) { (label) " " span.muted { "— " (hint) } }
            }
        }
    };
    c.page(
        "Map the columns",
        PAGE,
        html! {
            p { a href=(PAGE) { "← Imports" } }
            h1 { "Map the columns" }
            @if !errors.is_empty() {
                div.flash.warn #mapping-error role="alert" {
                    strong { "The import cannot start yet." }
                    @for e in &errors.general { br; (e) }
                    @if errors.general.is_empty() { " See the messages below." }
                }
            }
            form method="post" action=(action) {
                (csrf(c))
                section.card {
                    p.muted { "Step 2 of 3: " strong { (staged.file_name) } " into " strong { (t.ot.label_plural) } ". Columns whose header matches a property's name or label are already chosen." }
                    label for="import-name" { "Import name" }
                    input #import-name type="text" name="name" value=(m.name) required
                        aria-invalid=[errors.name.as_ref().map(|_| "true")] aria-describedby=[errors.name.as_ref().map(|_| "import-name-error")];
                    @if let Some(e) = &errors.name { p.error #import-name-error role="alert" { (e) } }
                    label for="import-operation" { "What rows do" }
                    (operation_select(m.operation))
                }
                section.card aria-labelledby="columns-title" {
                    h2 #columns-title { "Columns" }
                    table.mapping {
                        thead { tr { th scope="col" { "Column in the file" } th scope="col" { "Examples" } th scope="col" { "Import as" } } }
                        tbody {
                            @for (i, h) in head.header.iter().enumerate() {
                                @let id = format!("map-{i}");
                                @let err = errors.columns.get(&i);
                                tr id=(format!("column-{i}")) {
                                    th scope="row" { @if h.is_empty() { span.muted { "(no header) column " (i + 1) } } @else { (h) } }
                                    td.samples {
                                        @for s in head.samples.iter().filter_map(|r| r.get(i)).filter(|v| !v.trim().is_empty()) {
                                            span.sample title=(s) { (s) } " "
                                        }
                                    }
                                    td {
                                        (property_select(&id, t, m.columns.get(i).and_then(|p| p.as_deref()), &format!("Property for column {}", if h.is_empty() { (i + 1).to_string() } else { h.clone() }), err.is_some()))
                                        @if let Some(e) = err { p.error id=(format!("{id}-error")) role="alert" { (e) } }
                                    }
                                }
                            }
                        }
                    }
                }
                section.card {
                    fieldset.choices aria-describedby=[errors.key.as_ref().map(|_| "key-error")] {
                        legend { "How rows find the records they update" }
                        (key_choice("hs_object_id", "Record ID", "a column mapped to Record ID; a record that was deleted for good comes back under its old ID"))
                        @for d in &keys {
                            (key_choice(&d.name, &d.label, &format!("a column mapped to {}, which is unique per {}", d.label, t.ot.label_singular.to_lowercase())))
                        }
                        (key_choice("", "No key", "every row creates a new record (for a Create import only)"))
                    }
                    @if let Some(e) = &errors.key { p.error #key-error role="alert" { (e) } }
                }
                div.actions-row {
                    button type="submit" name="step" value="preview" { "Preview" }
                    button.secondary type="submit" name="step" value="discard" formnovalidate { "Discard the file" }
                }
            }
        },
    )
}

/// Checks the mapping and turns it into the import's request.
async fn build_spec(
    c: &Console,
    staged: &Staged,
    t: &Target,
    head: &Head,
    m: &Mapping,
) -> Result<ImportSpec, MapErrors> {
    let mut errors = MapErrors::default();
    if m.name.is_empty() {
        errors.name = Some("Give the import a name.".into());
    }
    if m.columns.iter().all(Option::is_none) {
        errors
            .general
            .push("Map at least one column to a property.".into());
    }
    let mapped = |p: &str| m.columns.iter().any(|c| c.as_deref() == Some(p));
    let id_column = mapped("hs_object_id");
    match m.key.as_str() {
        "" if id_column => {
            errors.key = Some("A column is mapped to Record ID, so rows find their records by ID: choose Record ID here, or don't import that column.".into())
        }
        "" => {
            if let Some(d) = unique_keys(&t.defs).into_iter().find(|d| mapped(&d.name)) {
                errors.key = Some(format!(
                    "{} is unique per {}: rows with a value already in the CRM find their record by it. Choose {} here, or don't import that column.",
                    d.label,
                    t.ot.label_singular.to_lowercase(),
                    d.label
                ));
            } else if m.operation != Operation::Create {
                errors.key = Some("To update records, rows need a key: map a column to Record ID or to a unique property, and choose it here. Without a key, choose the operation Create.".into());
            }
        }
        "hs_object_id" if !id_column => {
            errors.key = Some("No column is mapped to Record ID: map the column of record IDs, or choose another key.".into())
        }
        "hs_object_id" => {}
        key => {
            let label = label_of(&t.defs, key);
            if !unique_keys(&t.defs).iter().any(|d| d.name == key) {
                errors.key = Some(format!("{label} is not unique per record, so it cannot find records."));
            } else if id_column {
                errors.key = Some(format!("A column is mapped to Record ID, which always finds the records: choose Record ID as the key, or don't import that column to find records by {label}."));
            } else if !mapped(key) {
                errors.key = Some(format!("No column is mapped to {label}: map one, or choose another key."));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let columns: Vec<(String, Option<String>)> = head
        .header
        .iter()
        .cloned()
        .zip(m.columns.iter().cloned())
        .collect();
    let key = (!m.key.is_empty()).then_some(m.key.as_str());
    let request = console_request(
        &m.name,
        &t.ot.type_id,
        m.operation,
        &staged.file_name,
        &columns,
        key,
    );
    ImportSpec::from_request(
        &c.store,
        c.id(),
        &request,
        std::slice::from_ref(&staged.file_name),
    )
    .await
    .map_err(|e| store_errors(e, head))
}

/// A store error as messages of the mapping step (next to the column it names).
fn store_errors(e: StoreError, head: &Head) -> MapErrors {
    let mut errors = MapErrors::default();
    match e {
        StoreError::Validation {
            message, in_field, ..
        } => {
            let column = in_field.as_deref().and_then(|f| {
                let rest = f.split("columnMappings[").nth(1)?;
                rest.split(']').next()?.parse::<usize>().ok()
            });
            match column.filter(|i| *i < head.header.len()) {
                Some(i) => {
                    errors.columns.insert(i, sentence(&message));
                }
                None => errors.general.push(sentence(&message)),
            }
        }
        StoreError::Conflict { message, .. } => errors.general.push(sentence(&message)),
        other => errors.general.push(sentence(&other.to_string())),
    }
    errors
}

/// How rows find their records, in words.
fn matched_by(spec: &ImportSpec, defs: &[PropertyDef]) -> String {
    let column = |i: usize| {
        spec.columns
            .get(i)
            .map_or(String::new(), |c| c.name.clone())
    };
    match &spec.matcher {
        Matcher::None => "No key: every row creates a new record".into(),
        Matcher::RecordId(i) => format!("Record ID (column {})", column(*i)),
        Matcher::Unique(i, p) => format!("{} (column {})", label_of(defs, p), column(*i)),
    }
}

/// Step 3: what each row will do.
fn preview_view(
    c: &Console,
    token: &str,
    t: &Target,
    spec: &ImportSpec,
    m: &Mapping,
    p: &Preview,
) -> Markup {
    let action = format!("{PAGE}/new/{token}");
    c.page(
        "Preview the import",
        PAGE,
        html! {
            p { a href=(PAGE) { "← Imports" } }
            h1 { "Preview: " (m.name) }
            section.card aria-labelledby="preview-summary" {
                h2 #preview-summary { "What the import will do" }
                p.muted { "Step 3 of 3. Nothing has been imported yet." }
                dl.props {
                    dt { "File" } dd { (spec.file_name) }
                    dt { "Object" } dd { (t.ot.label_plural) }
                    dt { "What rows do" } dd { (operation_label(spec.operation.as_str())) }
                    dt { "Records found by" } dd #preview-key { (matched_by(spec, &t.defs)) }
                    dt { "Rows in the file" } dd #preview-total { (p.total) }
                    dt { "Rows that create a record" } dd #preview-creates { (p.creates) }
                    dt { "Rows that update a record" } dd #preview-updates { (p.updates) }
                    dt { "Rows rejected" } dd #preview-rejects { (p.rejects) }
                }
                @if p.scanned < p.total {
                    p.muted { "The counts are from the first " (p.scanned) " rows of " (p.total) "." }
                }
                p.muted { "A row can still be rejected when it is imported, for a value its property does not take (such as text in a number property): the import's page then lists it with the reason." }
            }
            section.card aria-labelledby="preview-rows-title" {
                h2 #preview-rows-title { "The first rows" }
                div.scroll {
                    table.preview #preview-rows {
                        thead { tr {
                            th scope="col" { "Line" }
                            th scope="col" { "What happens" }
                            @for h in &p.header { th scope="col" { (h) } }
                        } }
                        tbody {
                            @for (line, what, values) in &p.rows {
                                tr.rejected[what.starts_with("reject")] {
                                    td { (line) }
                                    td.what { (what) }
                                    @for v in values { td { (v) } }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action=(action) {
                (csrf(c))
                input type="hidden" name="name" value=(m.name);
                input type="hidden" name="operation" value=(m.operation.as_str());
                input type="hidden" name="key" value=(m.key);
                @for (i, col) in m.columns.iter().enumerate() {
                    input type="hidden" name=(format!("map-{i}")) value=(col.as_deref().unwrap_or(""));
                }
                div.actions-row {
                    button type="submit" name="step" value="start" { "Start import" }
                    button.secondary type="submit" name="step" value="map" { "Change the mapping" }
                }
            }
        },
    )
}

/// Step 2, as the upload left it.
pub async fn mapping_page(
    State(state): State<AppState>,
    c: Console,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let (staged, path) = load_staged(&state, &c, &token)?;
    let t = target(&c, &staged).await?;
    let head = read_head(&path).map_err(|e| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "The file cannot be imported",
            sentence(&e),
        )
    })?;
    let m = default_mapping(&staged, &head, &t.defs);
    Ok(mapping_view(&c, &token, &staged, &t, &head, &m, &MapErrors::default()).into_response())
}

/// The mapping step's form: back to the mapping, the preview, the start, or discarding.
pub async fn mapping_post(
    State(state): State<AppState>,
    c: Console,
    Path(token): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    c.require(Role::Admin)?;
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    c.check_csrf(get("_csrf"))?;
    let (staged, path) = load_staged(&state, &c, &token)?;
    let dir = staging_dir(&state, &c);
    let step = get("step").to_string();
    if step == "discard" {
        discard(&dir, &token);
        return Ok(Redirect::to(&format!("{PAGE}?done=discarded")).into_response());
    }
    let t = target(&c, &staged).await?;
    let head = read_head(&path).map_err(|e| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "The file cannot be imported",
            sentence(&e),
        )
    })?;
    let m = mapping_from_form(&form, head.header.len(), &staged);
    let again = |errors: &MapErrors, status: StatusCode| {
        reply(
            status,
            mapping_view(&c, &token, &staged, &t, &head, &m, errors),
        )
    };
    if step != "preview" && step != "start" {
        return Ok(again(&MapErrors::default(), StatusCode::OK));
    }
    let spec = match build_spec(&c, &staged, &t, &head, &m).await {
        Ok(s) => s,
        Err(errors) => return Ok(again(&errors, StatusCode::BAD_REQUEST)),
    };
    if step == "start" {
        if !path.exists() {
            return Err(gone());
        }
        return match request_import(
            &state.jobs,
            &c.store,
            &c.account,
            &spec,
            &path,
            SOURCE_UI,
            &requester(&c),
        )
        .await
        {
            Ok(imp) => {
                discard(&dir, &token);
                Ok(Redirect::to(&format!("{PAGE}/{}?done=started", imp.id)).into_response())
            }
            Err(e @ (StoreError::Validation { .. } | StoreError::Conflict { .. })) => {
                Ok(again(&store_errors(e, &head), StatusCode::BAD_REQUEST))
            }
            Err(e @ StoreError::TooSoon { .. }) => Ok(again(
                &store_errors(e, &head),
                StatusCode::TOO_MANY_REQUESTS,
            )),
            Err(e) => Err(e.into()),
        };
    }
    if !path.is_file() {
        return Err(gone());
    }
    match preview(&c.store, c.id(), &spec, &path, PREVIEW_ROWS).await {
        Ok(p) => Ok(preview_view(&c, &token, &t, &spec, &m, &p).into_response()),
        Err(e @ (StoreError::Validation { .. } | StoreError::Conflict { .. })) => {
            Ok(again(&store_errors(e, &head), StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_records_of_csv() {
        let text =
            "email,\"First, Name\"\r\na@x.io,\"Ada \"\"A\"\"\"\n\nb@x.io,\"two\nlines\"\nc@x";
        let r = csv_head(text, 10, true).unwrap();
        assert_eq!(r[0], vec!["email", "First, Name"]);
        assert_eq!(r[1], vec!["a@x.io", "Ada \"A\""]);
        assert_eq!(r[2], vec!["b@x.io", "two\nlines"]);
        assert_eq!(r[3], vec!["c@x"]);
        // Cut off: the last record is dropped.
        assert_eq!(csv_head(text, 10, false).unwrap().len(), 3);
        assert_eq!(csv_head(text, 2, true).unwrap().len(), 2);
        assert!(csv_head("a,\"b\n", 5, true).is_err());
    }

    #[test]
    fn tokens_are_checked() {
        assert!(valid_token(&new_token()));
        assert!(!valid_token("../../etc/passwd"));
        assert!(!valid_token("0123456789ABCDEF0123456789abcdef"));
        assert_eq!(
            clean_file_name("C:\\Users\\me\\contacts.csv"),
            "contacts.csv"
        );
        assert_eq!(clean_file_name("../x/y.csv"), "y.csv");
    }

    #[test]
    fn headers_meet_property_names_and_labels() {
        assert_eq!(squash("First Name"), squash("firstname"));
        assert_eq!(squash("E-mail"), "email");
    }
}
