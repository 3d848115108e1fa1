//! CSV imports: the request (HubSpot's `importRequest`, also what the console builds), the
//! checks made before anything is queued, the preview, and the job that applies the file in
//! batches (see `kontor_store::imports` for what a batch guarantees).

use crate::{Jobs, Requester};
use anyhow::{Context, Result};
use kontor_domain::property::PropertyDef;
use kontor_store::imports::{SOURCE_RESTORE, STARTED};
use kontor_store::{
    Account, Import, ImportRow, Job, NewImport, ObjectType, Operation, RowError, RowOp, Store,
    StoreError, StoreResult,
};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

mod file;
use file::DataRows;
pub use file::{inspect_csv, inspect_csv_file};

/// Rows per batch (one transaction each).
pub const BATCH: usize = 500;
/// How many times a batch the database rolled back (see `StoreError::is_transient`) is tried.
const BATCH_ATTEMPTS: u64 = 5;
/// The largest file an import takes.
pub const MAX_FILE_BYTES: usize = 512 << 20;
/// Rows the preview decides for (beyond, it says so).
pub const PREVIEW_SCAN: usize = 20_000;

/// How rows find the record they update.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// No key column: every row creates a record.
    None,
    /// A column of record IDs (`hs_object_id`).
    RecordId(usize),
    /// A column of a unique-value property (contact e-mail, company domain, …).
    Unique(usize, String),
}

/// One file column and the property it fills (`None`: not imported).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub property: Option<String>,
}

/// A checked import: one file into one object type.
#[derive(Debug, Clone)]
pub struct ImportSpec {
    pub name: String,
    pub object_type: ObjectType,
    pub operation: Operation,
    pub file_name: String,
    pub has_header: bool,
    pub columns: Vec<Column>,
    pub matcher: Matcher,
    /// The request as HubSpot's wire format has it (stored with the import).
    pub request: Value,
}

fn bad(message: impl Into<String>, field: &str) -> StoreError {
    StoreError::validation("INVALID_IMPORT_REQUEST", message, Some(field.to_string()))
}

impl ImportSpec {
    /// Reads HubSpot's `importRequest` and checks it against the account: one file, one
    /// object type, known writable properties, a key column when rows must update.
    pub async fn from_request(
        store: &Store,
        account: i64,
        request: &Value,
        uploaded: &[String],
    ) -> StoreResult<ImportSpec> {
        let name = request
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| bad("the import needs a name", "name"))?
            .trim()
            .to_string();
        let files = request
            .get("files")
            .and_then(Value::as_array)
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                bad(
                    "files is required: one entry describing the CSV file",
                    "files",
                )
            })?;
        if files.len() != 1 || uploaded.len() != 1 {
            return Err(bad(
                format!(
                    "an import takes exactly one file ({} described, {} uploaded)",
                    files.len(),
                    uploaded.len()
                ),
                "files",
            ));
        }
        let file = &files[0];
        let file_name = file
            .get("fileName")
            .and_then(Value::as_str)
            .unwrap_or(&uploaded[0])
            .to_string();
        if let Some(format) = file.get("fileFormat").and_then(Value::as_str) {
            if !format.eq_ignore_ascii_case("CSV") {
                return Err(bad(
                    format!("file format {format} is not supported: upload CSV"),
                    "files[0].fileFormat",
                ));
            }
        }
        let page = file.get("fileImportPage").unwrap_or(&Value::Null);
        let has_header = page
            .get("hasHeader")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let mappings = page
            .get("columnMappings")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                bad(
                    "columnMappings is required: say which property each column fills",
                    "files[0].fileImportPage.columnMappings",
                )
            })?;
        // The object type: from the mappings, else from importOperations.
        let ops = request.get("importOperations").and_then(Value::as_object);
        let mut type_ids: Vec<String> = mappings
            .iter()
            .filter(|m| m.get("propertyName").is_some_and(|p| !p.is_null()))
            .filter_map(|m| m.get("columnObjectTypeId").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        type_ids.extend(ops.iter().flat_map(|o| o.keys().cloned()));
        type_ids.sort();
        type_ids.dedup();
        let type_id =
            match type_ids.as_slice() {
                [one] => one.clone(),
                [] => return Err(bad(
                    "no object type: give columnObjectTypeId in the mappings or importOperations",
                    "importOperations",
                )),
                _ => {
                    return Err(bad(
                        format!(
                            "an import fills one object type; this one names {}",
                            type_ids.join(", ")
                        ),
                        "importOperations",
                    ))
                }
            };
        let object_type = store
            .object_type(account, &type_id)
            .await?
            .ok_or_else(|| bad(format!("unknown object type {type_id}"), "importOperations"))?;
        let operation = match ops.and_then(|o| o.values().next()) {
            None => Operation::Upsert,
            Some(v) => v.as_str().and_then(Operation::parse).ok_or_else(|| {
                bad(
                    format!("import operation {v} is not one of CREATE, UPDATE, UPSERT"),
                    "importOperations",
                )
            })?,
        };
        let defs = store
            .properties(account, &object_type.type_id, false)
            .await?;
        let by_name: HashMap<&str, &PropertyDef> =
            defs.iter().map(|d| (d.name.as_str(), d)).collect();
        let mut columns = Vec::new();
        let mut matcher = Matcher::None;
        let mut seen = HashSet::new();
        for (i, m) in mappings.iter().enumerate() {
            let field = format!("files[0].fileImportPage.columnMappings[{i}]");
            let column = m
                .get("columnName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let property = m
                .get("propertyName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .map(str::to_string);
            let id_type = m.get("idColumnType").and_then(Value::as_str);
            if let Some(p) = &property {
                let def = by_name.get(p.as_str()).ok_or_else(|| {
                    StoreError::validation(
                        "PROPERTY_DOESNT_EXIST",
                        format!(
                            "column {column:?} maps to {p}, which is not a property of {}",
                            object_type.name
                        ),
                        Some(field.clone()),
                    )
                })?;
                if !seen.insert(p.clone()) {
                    return Err(bad(
                        format!("two columns map to {p}"),
                        &format!("{field}.propertyName"),
                    ));
                }
                let is_id = p == "hs_object_id" || id_type == Some("HUBSPOT_OBJECT_ID");
                let is_key = is_id
                    || id_type == Some("HUBSPOT_ALTERNATE_ID")
                    || (def.has_unique_value && matcher == Matcher::None);
                if is_id {
                    if p != "hs_object_id" {
                        return Err(bad(
                            "a HUBSPOT_OBJECT_ID column must map to hs_object_id",
                            &field,
                        ));
                    }
                    matcher = Matcher::RecordId(i);
                } else if is_key && !matches!(matcher, Matcher::RecordId(_)) {
                    if !def.has_unique_value {
                        return Err(bad(
                            format!("{p} does not require unique values, so it cannot identify records; use the record ID or a unique property"),
                            &field,
                        ));
                    }
                    matcher = Matcher::Unique(i, p.clone());
                } else if def.read_only_value {
                    return Err(StoreError::validation(
                        "READ_ONLY_VALUE",
                        format!("{p} is a read only property; a column cannot fill it"),
                        Some(field.clone()),
                    ));
                }
            }
            columns.push(Column {
                name: column,
                property,
            });
        }
        if operation == Operation::Update && matcher == Matcher::None {
            return Err(bad(
                "an update import needs a column of record IDs or of a unique property (contact e-mail, company domain) to find the records",
                "files[0].fileImportPage.columnMappings",
            ));
        }
        Ok(ImportSpec {
            name,
            object_type,
            operation,
            file_name,
            has_header,
            columns,
            matcher,
            request: request.clone(),
        })
    }
}

/// Builds the `importRequest` the console sends, in HubSpot's format.
pub fn console_request(
    name: &str,
    type_id: &str,
    operation: Operation,
    file_name: &str,
    columns: &[(String, Option<String>)],
    key: Option<&str>,
) -> Value {
    let mappings: Vec<Value> = columns
        .iter()
        .map(|(c, p)| {
            let mut m =
                json!({ "columnObjectTypeId": type_id, "columnName": c, "propertyName": p });
            if p.is_some() && p.as_deref() == key {
                m["idColumnType"] = json!(if key == Some("hs_object_id") {
                    "HUBSPOT_OBJECT_ID"
                } else {
                    "HUBSPOT_ALTERNATE_ID"
                });
            }
            m
        })
        .collect();
    json!({
        "name": name,
        "importOperations": { type_id: operation.as_str() },
        "files": [{ "fileName": file_name, "fileFormat": "CSV",
            "fileImportPage": { "hasHeader": true, "columnMappings": mappings } }],
    })
}

/// Where an uploaded file lives below the region's file store.
pub fn import_key(account: i64) -> String {
    format!("imports/{account}/{}.csv", uuid::Uuid::new_v4().simple())
}

/// Decides for each row what it does: create, update which record, or why it is rejected.
pub async fn decide(
    store: &Store,
    account: i64,
    spec: &ImportSpec,
    rows: Vec<(i64, Vec<String>)>,
) -> StoreResult<Vec<ImportRow>> {
    let ot = &spec.object_type;
    let key_of = |row: &[String]| -> Option<String> {
        let i = match &spec.matcher {
            Matcher::None => return None,
            Matcher::RecordId(i) | Matcher::Unique(i, _) => *i,
        };
        row.get(i)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    // Records the keys point at, live or in the recycle bin.
    let keys: Vec<String> = rows.iter().filter_map(|(_, r)| key_of(r)).collect();
    let mut live: HashMap<String, i64> = HashMap::new();
    match &spec.matcher {
        Matcher::None => {}
        Matcher::RecordId(_) => {
            let ids: Vec<i64> = keys.iter().filter_map(|k| k.parse().ok()).collect();
            for r in store.records_by_ids(account, ot, &ids, false).await? {
                live.insert(r.id.to_string(), r.id);
            }
        }
        Matcher::Unique(_, prop) => {
            let found = store.ids_by_unique(account, ot, prop, &keys).await?;
            let ids: Vec<i64> = found.values().copied().collect();
            let alive: HashSet<i64> = store
                .records_by_ids(account, ot, &ids, false)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect();
            for (k, id) in found {
                if alive.contains(&id) {
                    live.insert(k.trim().to_lowercase(), id);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for (line, data) in rows {
        let mut props = Map::new();
        for (i, c) in spec.columns.iter().enumerate() {
            let Some(p) = &c.property else { continue };
            if p == "hs_object_id" {
                continue;
            }
            let v = data.get(i).map(|v| v.trim()).unwrap_or("");
            // An empty cell leaves the value alone, as in HubSpot's imports.
            if !v.is_empty() {
                props.insert(p.clone(), Value::String(v.to_string()));
            }
        }
        let key = key_of(&data);
        let existing = key.as_ref().and_then(|k| match &spec.matcher {
            Matcher::Unique(..) => live.get(&k.to_lowercase()).copied(),
            _ => live.get(k).copied(),
        });
        let op = match (&spec.matcher, existing, spec.operation) {
            (_, Some(id), Operation::Update | Operation::Upsert) => RowOp::Update { id, props },
            (_, Some(id), Operation::Create) => RowOp::Reject(RowError::new(
                "OBJECT_ALREADY_EXISTS",
                format!(
                    "{} {id} already exists and this import only creates records",
                    ot.singular
                ),
            )),
            (Matcher::RecordId(_), None, op) => match key {
                Some(k) => match k.parse::<i64>() {
                    Err(_) => RowOp::Reject(RowError {
                        error_type: "INVALID_OBJECT_ID".into(),
                        message: format!("{k:?} is not a record ID"),
                        property: Some("hs_object_id".into()),
                        invalid_value: Some(k),
                    }),
                    Ok(id) if op == Operation::Update => RowOp::Reject(RowError::new(
                        "OBJECT_NOT_FOUND",
                        format!("there is no {} with record ID {id}", ot.singular),
                    )),
                    Ok(id) => RowOp::Create {
                        id: Some(id),
                        props,
                    },
                },
                None if op == Operation::Update => RowOp::Reject(RowError::new(
                    "MISSING_ID",
                    "the record ID is empty, and this import only updates records",
                )),
                None => RowOp::Create { id: None, props },
            },
            (Matcher::Unique(_, p), None, Operation::Update) => RowOp::Reject(RowError::new(
                "OBJECT_NOT_FOUND",
                match key {
                    Some(k) => format!("there is no {} with {p} {k:?}", ot.singular),
                    None => format!("{p} is empty, and this import only updates records"),
                },
            )),
            (Matcher::Unique(_, p), None, _) => {
                if let Some(k) = key {
                    props.insert(p.clone(), Value::String(k));
                }
                RowOp::Create { id: None, props }
            }
            (Matcher::None, None, _) => RowOp::Create { id: None, props },
        };
        out.push(ImportRow { line, op, data });
    }
    Ok(out)
}

/// What the console shows before an import starts.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub header: Vec<String>,
    /// The first rows: line, what happens (`create`, `update #id`, or the reason it is
    /// rejected), the values.
    pub rows: Vec<(i64, String, Vec<String>)>,
    pub creates: i64,
    pub updates: i64,
    pub rejects: i64,
    /// Rows looked at for the counts (the whole file up to [`PREVIEW_SCAN`]).
    pub scanned: i64,
    pub total: i64,
}

pub async fn preview(
    store: &Store,
    account: i64,
    spec: &ImportSpec,
    file: &Path,
    show: usize,
) -> StoreResult<Preview> {
    let (path, checked) = (file.to_path_buf(), spec.clone());
    let (total, header, rows) = blocking(move || {
        let total = inspect_csv_file(&path, &checked)?;
        let invalid = |e: anyhow::Error| bad(format!("the file is not valid CSV: {e}"), "files");
        let mut reader = DataRows::open(&path, checked.has_header)?;
        let rows = reader.batch(PREVIEW_SCAN).map_err(invalid)?;
        let header = match reader.header {
            Some(h) => h,
            None => checked.columns.iter().map(|c| c.name.clone()).collect(),
        };
        Ok((total, header, rows))
    })
    .await?;
    let scanned = rows.len() as i64;
    let decided = decide(store, account, spec, rows).await?;
    let mut p = Preview {
        header,
        scanned,
        total,
        ..Default::default()
    };
    for r in decided {
        let what = match &r.op {
            RowOp::Create { id: Some(id), .. } => {
                p.creates += 1;
                format!("create (record ID {id})")
            }
            RowOp::Create { id: None, .. } => {
                p.creates += 1;
                "create".to_string()
            }
            RowOp::Update { id, .. } => {
                p.updates += 1;
                format!("update {} {id}", spec.object_type.singular)
            }
            RowOp::Reject(e) => {
                p.rejects += 1;
                format!("reject: {}", e.message)
            }
        };
        if p.rows.len() < show {
            p.rows.push((r.line, what, r.data));
        }
    }
    Ok(p)
}

/// Queues an import of the file at `staged` (already on disk: an upload is streamed there as
/// it arrives, never held in memory). The file is checked as a stream on a blocking thread,
/// then moved into the region's file store; when the import is refused, `staged` is left where
/// it was for the caller to delete or reuse.
pub async fn request_import(
    jobs: &Jobs,
    store: &Store,
    account: &Account,
    spec: &ImportSpec,
    staged: &Path,
    source: &str,
    who: &Requester,
) -> StoreResult<Import> {
    if let Some(mv) = jobs.move_closing_imports(account.id).await? {
        return Err(StoreError::validation(
            "MOVE_IN_PROGRESS",
            format!(
                "Imports are paused while this account's data moves to {} (starting {}); they are accepted again once the move ends.",
                mv.to.label(),
                kontor_domain::time::iso(mv.start_at)
            ),
            None,
        ));
    }
    let size = std::fs::metadata(staged)
        .map_err(|e| StoreError::Config(format!("reading the uploaded file: {e}")))?
        .len();
    if size > MAX_FILE_BYTES as u64 {
        return Err(bad(
            format!("the file is larger than {} MiB", MAX_FILE_BYTES >> 20),
            "files",
        ));
    }
    let (file, checked) = (staged.to_path_buf(), spec.clone());
    let rows = tokio::task::spawn_blocking(move || inspect_csv_file(&file, &checked))
        .await
        .map_err(|e| StoreError::Config(format!("checking the file: {e}")))??;
    let key = import_key(account.id);
    let path = jobs.files_root(account.region).join(&key);
    let (from, to) = (staged.to_path_buf(), path.clone());
    tokio::task::spawn_blocking(move || place_file(&from, &to))
        .await
        .map_err(|e| StoreError::Config(format!("storing the file: {e}")))?
        .map_err(|e| StoreError::Config(format!("storing the file: {e}")))?;
    let created = store
        .create_import(
            account.id,
            &NewImport {
                name: &spec.name,
                source,
                object_type: &spec.object_type.type_id,
                operation: spec.operation,
                request: &spec.request,
                file_key: Some(&key),
                file_name: Some(&spec.file_name),
                created_by: who.user_id,
                created_by_name: &who.name,
                rows_total: rows,
                file_bytes: size as i64,
                plan_id: None,
            },
        )
        .await;
    let imp = match created {
        Ok(i) => i,
        Err(e) => {
            // Refused (too many open imports, …): the file goes back to the caller.
            if std::fs::rename(&path, staged).is_err() {
                let _ = std::fs::remove_file(&path);
            }
            return Err(e);
        }
    };
    store
        .audit(
            account.id,
            who.user_id,
            &who.name,
            "import.create",
            &format!("import {}", imp.id),
            serde_json::json!({"message": format!(
                "{:?}: {rows} rows of {} into {} ({})",
                imp.name,
                spec.file_name,
                spec.object_type.name,
                spec.operation.as_str()
            )}),
        )
        .await?;
    Ok(imp)
}

/// Moves `from` to `to` (made durable there): a rename within one file system, else a copy.
fn place_file(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::open(from)?.sync_all()?;
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    let tmp = to.with_extension("partial");
    std::fs::copy(from, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, to)?;
    std::fs::remove_file(from)
}

/// Where an upload to `account` is written while it arrives: in the region's file store, so
/// that queuing it is a rename. Uploads never finished are swept by housekeeping.
pub fn upload_path(jobs: &Jobs, account: &Account) -> PathBuf {
    jobs.files_root(account.region).join(format!(
        "imports/{}/upload-{}.partial",
        account.id,
        uuid::Uuid::new_v4().simple()
    ))
}

/// How long an upload may wait unfinished (API uploads cut off, console uploads never taken
/// past the mapping step) before housekeeping deletes it.
pub const UPLOAD_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Deletes, under a region's file store `root`, uploads older than `cutoff`: the API's
/// `imports/<account>/upload-*.partial` and everything in the console's `staging/`. Returns
/// how many files went.
pub fn sweep_uploads(root: &Path, cutoff: std::time::SystemTime) -> usize {
    fn old(p: &Path, cutoff: std::time::SystemTime) -> bool {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < cutoff)
    }
    fn walk(dir: &Path, keep: &dyn Fn(&Path) -> bool, cutoff: std::time::SystemTime) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut n = 0;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += walk(&p, keep, cutoff);
            } else if !keep(&p) && old(&p, cutoff) && std::fs::remove_file(&p).is_ok() {
                n += 1;
            }
        }
        n
    }
    let upload = |p: &Path| {
        !p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("upload-") && n.ends_with(".partial"))
    };
    walk(&root.join("imports"), &upload, cutoff) + walk(&root.join("staging"), &|_| false, cutoff)
}

/// The uploaded files of imports under a region's file store `root` last written before
/// `cutoff`: `(account, key, path)`, for housekeeping to ask the store whether each may go.
pub fn old_import_files(root: &Path, cutoff: std::time::SystemTime) -> Vec<(i64, String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(accounts) = std::fs::read_dir(root.join("imports")) else {
        return out;
    };
    for dir in accounts.flatten() {
        let name = dir.file_name();
        let Some(account) = name.to_str().and_then(|n| n.parse::<i64>().ok()) else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let file = f.file_name();
            let Some(file) = file.to_str().filter(|n| !n.ends_with(".partial")) else {
                continue;
            };
            let old = f
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff);
            if old && f.path().is_file() {
                out.push((account, format!("imports/{account}/{file}"), f.path()));
            }
        }
    }
    out
}

pub(crate) fn file_path(jobs: &Jobs, account: &Account, imp: &Import) -> Option<PathBuf> {
    imp.file_key
        .as_ref()
        .map(|k| jobs.files_root(account.region).join(k))
}

/// Runs an import job: a restore or a CSV file.
pub(crate) async fn run(jobs: &Jobs, store: &Store, job: &Job) -> Result<()> {
    let imp = store
        .import_of_job(job.account_id, job.id)
        .await?
        .context("import job without its import")?;
    let account = jobs
        .dir
        .account(job.account_id)
        .await?
        .context("the account no longer exists")?;
    if job.attempts > crate::backup::MAX_ATTEMPTS {
        let msg = format!(
            "gave up after {} attempts that did not finish",
            crate::backup::MAX_ATTEMPTS
        );
        return finish(jobs, store, job, &account, &imp, Some(msg)).await;
    }
    let result = if imp.source == SOURCE_RESTORE {
        crate::restore::apply(jobs, store, job, &account, &imp).await
    } else {
        apply_csv(jobs, store, job, &account, &imp).await
    };
    match result {
        Ok(true) => finish(jobs, store, job, &account, &imp, None).await,
        Ok(false) => {
            tracing::info!(
                import = imp.id,
                "import stopped: canceled, or its lease was lost"
            );
            Ok(())
        }
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!(import = imp.id, error = %msg, "import failed");
            finish(jobs, store, job, &account, &imp, Some(msg)).await
        }
    }
}

async fn finish(
    jobs: &Jobs,
    store: &Store,
    job: &Job,
    account: &Account,
    imp: &Import,
    error: Option<String>,
) -> Result<()> {
    if !store
        .finish_import(imp, job, &jobs.node, error.as_deref())
        .await?
    {
        return Ok(());
    }
    let done = store
        .import(account.id, imp.id)
        .await?
        .unwrap_or(imp.clone());
    let summary = format!(
        "{} created, {} updated, {} unchanged, {} conflicts, {} rows rejected",
        done.created, done.updated, done.unchanged, done.conflicts, done.errors
    );
    let action = if done.is_restore() {
        "restore.complete"
    } else {
        "import.complete"
    };
    store
        .audit(
            account.id,
            None,
            "kontor",
            action,
            &format!("import {}", done.id),
            serde_json::json!({"message": match &error {
                Some(e) => format!("{:?} failed: {e}", done.name),
                None => format!("{:?} finished: {summary}", done.name),
            }}),
        )
        .await?;
    if !done.is_restore() {
        // The uploaded file is kept with a failed import so that it can be looked into.
        if error.is_none() {
            if let Some(path) = file_path(jobs, account, &done) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    Ok(())
}

/// Applies the file from where the last runner stopped. `false` if the job was taken away.
async fn apply_csv(
    jobs: &Jobs,
    store: &Store,
    job: &Job,
    account: &Account,
    imp: &Import,
) -> Result<bool> {
    let path = file_path(jobs, account, imp).context("import without a file")?;
    let uploaded = vec![imp.file_name.clone().unwrap_or_default()];
    let spec = ImportSpec::from_request(store, account.id, &imp.request, &uploaded).await?;
    let defs = store
        .properties(account.id, &spec.object_type.type_id, false)
        .await?;
    let mut done = imp.rows_done;
    // The file is read on a blocking thread, a batch at a time, never whole.
    let checked = spec.clone();
    let (total, mut reader) = tokio::task::spawn_blocking(move || -> Result<_> {
        let total = inspect_csv_file(&path, &checked)?;
        let mut reader = DataRows::open(&path, checked.has_header)?;
        for _ in 0..done {
            if reader.next_row()?.is_none() {
                break;
            }
        }
        Ok((total, reader))
    })
    .await
    .context("reading the file")??;
    if imp.state == STARTED || imp.rows_total != total {
        store.import_started(imp, total).await?;
    }
    let mut last_renew = std::time::Instant::now();
    loop {
        let (back, rows) = tokio::task::spawn_blocking(move || {
            let rows = reader.batch(BATCH);
            (reader, rows)
        })
        .await
        .context("reading the file")?;
        reader = back;
        let rows = rows?;
        if rows.is_empty() {
            return Ok(true);
        }
        let n = rows.len() as i64;
        // A batch the database rolled back to break a deadlock (with a data move's writes,
        // say) kept nothing: it runs again, from its rows.
        let mut attempt = 0;
        let applied = loop {
            attempt += 1;
            let decided = decide(store, account.id, &spec, rows.clone()).await?;
            let r = store
                .import_batch(
                    imp,
                    job,
                    &jobs.node,
                    &spec.object_type,
                    &defs,
                    decided,
                    done + n,
                )
                .await;
            match r {
                Err(e) if e.is_transient() && attempt < BATCH_ATTEMPTS => {
                    tracing::warn!(import = imp.id, error = %e, attempt, "an import batch was rolled back; it runs again");
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                r => break r?,
            }
        };
        let Some(_) = applied else {
            return Ok(false);
        };
        done += n;
        if last_renew.elapsed() >= jobs.heartbeat() {
            last_renew = std::time::Instant::now();
            if !jobs.renew(store, job, done, total).await? {
                return Ok(false);
            }
        }
    }
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Config(format!("reading the file: {e}")))?
}

/// A spec without columns to check, for tests of the file readers.
#[cfg(test)]
pub(crate) fn tests_spec(has_header: bool) -> ImportSpec {
    ImportSpec {
        name: "t".into(),
        object_type: ObjectType::builtin(&kontor_domain::object_type::BUILTIN_OBJECTS[0]),
        operation: Operation::Create,
        file_name: "t.csv".into(),
        has_header,
        columns: Vec::new(),
        matcher: Matcher::None,
        request: Value::Null,
    }
}
