//! Restores: a reviewed plan (what a backup's values would change now), applied as an import
//! job, and revertible with a plan of its own.
//!
//! The plan reads the backup's CSV for one object type beside a snapshot of the same type's
//! records (the snapshot gives the change-log sequence the plan is pinned to) and merges them
//! on record id: both come in ascending id order. The archive is checked entirely before.

use crate::{Jobs, Requester};
use anyhow::{anyhow, Context, Result};
use kontor_archive::{read_rows, verify};
use kontor_domain::property::PropertyDef;
use kontor_domain::time::iso;
use kontor_store::imports::{DONE, SOURCE_RESTORE};
use kontor_store::{
    for_each_prop, Account, Import, Job, NewImport, NewPlan, ObjectType, Operation, OwnChanges,
    PreparedBatch, RestoreItem, RestorePlan, RestoreSpec, SnapshotInfo, SnapshotSink, SnapshotType,
    Store, StoreError, PLAN_RESTORE, PLAN_REVERT,
};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Object types a restore takes (conversations are backed up but not restored).
pub const RESTORABLE: &[&str] = &[
    "companies",
    "contacts",
    "deals",
    "tickets",
    "products",
    "calls",
    "tasks",
];
/// Records per restore batch (one transaction each).
pub const BATCH: usize = 10_000;
/// Before → after examples a plan keeps.
const SAMPLE: usize = 20;

/// What can go wrong when asking for a plan: a user's mistake (`Store` errors map to 4xx) or
/// a failure of ours.
pub type PlanResult<T> = std::result::Result<T, StoreError>;

fn invalid(message: impl Into<String>, field: &str) -> StoreError {
    StoreError::validation("INVALID_RESTORE", message, Some(field.to_string()))
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Config(e.to_string())
}

/// Whether a type can be restored.
pub fn restorable(ot: &ObjectType) -> bool {
    ot.is_custom() || RESTORABLE.contains(&ot.name.as_str())
}

/// Properties of a type a restore may write: not the ones kontor maintains.
pub fn restorable_property(ot: &ObjectType, d: &PropertyDef) -> bool {
    !d.read_only_value && !d.calculated && !ot.system_property_names().contains(&d.name.as_str())
}

/// The restore's import name, as HubSpot shows it: "Data Restore - Deal".
pub fn import_name(ot: &ObjectType, revert: bool) -> String {
    if revert {
        format!("Data Restore Revert - {}", ot.label_singular)
    } else {
        format!("Data Restore - {}", ot.label_singular)
    }
}

struct Resolved {
    ot: ObjectType,
    defs: Vec<PropertyDef>,
    properties: Vec<String>,
}

async fn resolve(
    store: &Store,
    account: i64,
    object: &str,
    properties: &[String],
) -> PlanResult<Resolved> {
    let ot = store
        .object_type(account, object)
        .await?
        .ok_or_else(|| invalid(format!("unknown object type {object:?}"), "object"))?;
    if !restorable(&ot) {
        return Err(invalid(
            format!("{} cannot be restored: choose companies, contacts, deals, tickets, products, calls, tasks or a custom object", ot.name),
            "object",
        ));
    }
    let defs = store.properties(account, &ot.type_id, false).await?;
    if properties.is_empty() {
        return Err(invalid(
            "choose at least one property to restore",
            "properties",
        ));
    }
    let mut chosen = Vec::new();
    for p in properties {
        let def = defs.iter().find(|d| &d.name == p).ok_or_else(|| {
            invalid(
                format!("{p} is not a property of {}", ot.name),
                "properties",
            )
        })?;
        if !restorable_property(&ot, def) {
            return Err(invalid(
                format!("{p} is maintained by kontor and cannot be restored"),
                "properties",
            ));
        }
        if !chosen.contains(p) {
            chosen.push(p.clone());
        }
    }
    Ok(Resolved {
        ot,
        defs,
        properties: chosen,
    })
}

/// Counts per property and overall, as the review shows them.
#[derive(Debug, Default, Clone)]
struct Tally {
    changed: Vec<i64>,
    cleared: Vec<i64>,
    records_to_change: i64,
    unchanged: i64,
    in_backup: i64,
    missing: i64,
    not_in_backup: i64,
    conflicts: i64,
    sample: Vec<Value>,
}

impl Tally {
    fn new(n: usize) -> Self {
        Self {
            changed: vec![0; n],
            cleared: vec![0; n],
            ..Default::default()
        }
    }

    /// One record: what it holds now and what the plan would put there.
    fn record(
        &mut self,
        props: &[String],
        id: i64,
        now: &[Option<String>],
        then: &[Option<String>],
    ) {
        let mut any = false;
        for k in 0..props.len() {
            if now[k] == then[k] {
                continue;
            }
            any = true;
            if then[k].is_none() {
                self.cleared[k] += 1;
            } else {
                self.changed[k] += 1;
            }
            if self.sample.len() < SAMPLE {
                self.sample.push(json!({
                    "id": id.to_string(), "property": props[k],
                    "before": now[k], "after": then[k],
                }));
            }
        }
        if any {
            self.records_to_change += 1;
        } else {
            self.unchanged += 1;
        }
    }

    fn summary(&self, r: &Resolved, extra: Value) -> Value {
        let props: Vec<Value> = r
            .properties
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let label = r
                    .defs
                    .iter()
                    .find(|d| &d.name == p)
                    .map_or(p.clone(), |d| d.label.clone());
                json!({"name": p, "label": label, "changed": self.changed[k], "cleared": self.cleared[k]})
            })
            .collect();
        let mut v = json!({
            "objectType": r.ot.name,
            "objectTypeId": r.ot.type_id,
            "objectLabel": r.ot.label_plural,
            "properties": props,
            "recordsInBackup": self.in_backup,
            "recordsToChange": self.records_to_change,
            "recordsUnchanged": self.unchanged,
            "recordsMissing": self.missing,
            "recordsNotInBackup": self.not_in_backup,
            "conflicts": self.conflicts,
            "sample": self.sample,
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        v
    }
}

type ArchiveBatch = Vec<(i64, Vec<Option<String>>)>;

/// Reads a file of a checked archive on a thread of its own, in batches, from row `skip` on.
fn spawn_reader(
    path: PathBuf,
    file: String,
    columns: Vec<String>,
    skip: u64,
    batch: usize,
) -> (
    std::sync::mpsc::Receiver<ArchiveBatch>,
    std::thread::JoinHandle<kontor_archive::ArchiveResult<()>>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<ArchiveBatch>(4);
    let handle = std::thread::spawn(move || {
        let mut buf: ArchiveBatch = Vec::with_capacity(batch);
        let mut n = 0u64;
        read_rows(&path, &file, &columns, |id, values| {
            n += 1;
            if n <= skip {
                return Ok(true);
            }
            buf.push((
                id,
                values
                    .iter()
                    .map(|v| (!v.is_empty()).then(|| v.to_string()))
                    .collect(),
            ));
            if buf.len() >= batch {
                let full = std::mem::replace(&mut buf, Vec::with_capacity(batch));
                // The receiver hung up: stop reading.
                return Ok(tx.send(full).is_ok());
            }
            Ok(true)
        })?;
        if !buf.is_empty() {
            let _ = tx.send(buf);
        }
        Ok(())
    });
    (rx, handle)
}

/// Merges the snapshot's records with the archive's rows.
struct PlanSink {
    type_id: String,
    properties: Vec<String>,
    rx: std::sync::mpsc::Receiver<ArchiveBatch>,
    pending: std::collections::VecDeque<(i64, Vec<Option<String>>)>,
    done: bool,
    tally: Tally,
    seq: i64,
    current: Vec<Option<String>>,
}

impl PlanSink {
    /// The next archive row, without taking it.
    fn peek(&mut self) -> Option<i64> {
        while self.pending.is_empty() && !self.done {
            match self.rx.recv() {
                Ok(b) => self.pending.extend(b),
                Err(_) => self.done = true,
            }
        }
        self.pending.front().map(|r| r.0)
    }
}

impl SnapshotSink for PlanSink {
    type Output = (Tally, i64);
    fn info(&mut self, info: &SnapshotInfo) -> Result<()> {
        self.seq = info.seq;
        Ok(())
    }
    fn wants(&self, t: &SnapshotType) -> bool {
        t.object_type.type_id == self.type_id
    }
    fn row(&mut self, _type_index: usize, id: i64, props: &str) -> Result<()> {
        while let Some(a) = self.peek() {
            if a >= id {
                break;
            }
            self.pending.pop_front();
            self.tally.in_backup += 1;
            self.tally.missing += 1;
        }
        if self.peek() != Some(id) {
            self.tally.not_in_backup += 1;
            return Ok(());
        }
        let (_, then) = self.pending.pop_front().expect("peeked");
        self.tally.in_backup += 1;
        for v in self.current.iter_mut() {
            *v = None;
        }
        let names = &self.properties;
        let current = &mut self.current;
        for_each_prop(props, |name, value| {
            if let Some(k) = names.iter().position(|p| *p == *name) {
                current[k] = Some(value.into_owned());
            }
        })?;
        let now = std::mem::take(&mut self.current);
        self.tally.record(&self.properties, id, &now, &then);
        self.current = now;
        Ok(())
    }
    fn end_type(&mut self, _type_index: usize) -> Result<()> {
        Ok(())
    }
    fn finish(mut self) -> Result<(Tally, i64)> {
        while self.peek().is_some() {
            self.pending.pop_front();
            self.tally.in_backup += 1;
            self.tally.missing += 1;
        }
        Ok((self.tally, self.seq))
    }
}

/// SHA-256 of a whole file, lower-case hex.
fn file_sha256(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    Ok(sha.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The archive of a backup that can be restored. Its bytes must be the ones the backup job
/// wrote (the SHA-256 it recorded); with `full`, every entry is also checked against the
/// manifest (CRCs, each CSV's SHA-256, rows, columns) — the plan does that, and applying it
/// then needs only the first check to know nothing changed since.
async fn checked_archive(
    jobs: &Jobs,
    store: &Store,
    account: &Account,
    backup_id: i64,
    full: bool,
) -> PlanResult<(PathBuf, kontor_archive::Manifest)> {
    let backup = store
        .backup(account.id, backup_id)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("backup {backup_id} does not exist")))?;
    let path = crate::archive_path(jobs, account, &backup).ok_or_else(|| {
        invalid(
            format!(
                "backup {backup_id} is {}: only a completed backup within its 14 days can be restored",
                backup.effective_state(kontor_domain::time::now_ms())
            ),
            "backupId",
        )
    })?;
    let refused = |why: String| {
        invalid(
            format!("backup {backup_id}'s archive failed its check and cannot be restored: {why}"),
            "backupId",
        )
    };
    let p = path.clone();
    let (sha, checked) = tokio::task::spawn_blocking(move || {
        let sha = file_sha256(&p);
        let checked = if full {
            verify(&p).map(|v| v.manifest)
        } else {
            kontor_archive::read_manifest(&p)
        };
        (sha, checked)
    })
    .await
    .map_err(internal)?;
    let sha = sha.map_err(|e| refused(e.to_string()))?;
    if backup.sha256.as_deref() != Some(sha.as_str()) {
        return Err(refused(format!(
            "its SHA-256 is {sha}, not the {} recorded when it was made",
            backup.sha256.as_deref().unwrap_or("(none)")
        )));
    }
    let manifest = checked.map_err(|e| refused(e.to_string()))?;
    if manifest.account_id != account.id || manifest.backup_id != backup_id {
        return Err(refused("it belongs to another account or backup".into()));
    }
    Ok((path, manifest))
}

/// Computes and stores the plan of restoring `properties` of `object` from a backup.
pub async fn plan_restore(
    jobs: &Jobs,
    store: &Store,
    account: &Account,
    backup_id: i64,
    object: &str,
    properties: &[String],
    who: &Requester,
) -> PlanResult<RestorePlan> {
    let r = resolve(store, account.id, object, properties).await?;
    let (path, manifest) = checked_archive(jobs, store, account, backup_id, true).await?;
    let file = manifest
        .files
        .iter()
        .find(|f| f.object_type_id == r.ot.type_id)
        .ok_or_else(|| {
            invalid(
                format!("backup {backup_id} holds no {}", r.ot.name),
                "object",
            )
        })?;
    for p in &r.properties {
        if !file.properties.iter().any(|m| &m.name == p) {
            return Err(invalid(
                format!("{p} is not in backup {backup_id} (the property was created after it)"),
                "properties",
            ));
        }
    }
    let (rx, reader) = spawn_reader(path, file.name.clone(), r.properties.clone(), 0, BATCH);
    let sink = PlanSink {
        type_id: r.ot.type_id.clone(),
        properties: r.properties.clone(),
        rx,
        pending: Default::default(),
        done: false,
        tally: Tally::new(r.properties.len()),
        seq: 0,
        current: vec![None; r.properties.len()],
    };
    let (tally, seq) = store
        .export_snapshot(account.id, sink)
        .await
        .map_err(internal)?;
    reader
        .join()
        .map_err(|_| internal("archive reader panicked"))?
        .map_err(internal)?;
    let summary = tally.summary(
        &r,
        json!({"backupId": backup_id.to_string(), "snapshotAt": manifest.snapshot_at}),
    );
    let what = format!(
        "Reviewed restoring {} of {} from backup {backup_id}: {} records would change",
        r.properties.join(", "),
        r.ot.name,
        tally.records_to_change
    );
    save_plan(
        store,
        account,
        who,
        &r,
        PLAN_RESTORE,
        Some(backup_id),
        None,
        seq,
        &summary,
        &what,
    )
    .await
}

/// Computes and stores the plan of reverting a finished restore: the values it replaced go
/// back, except where someone changed the value since (a conflict).
pub async fn plan_revert(
    store: &Store,
    account: &Account,
    import_id: i64,
    who: &Requester,
) -> PlanResult<RestorePlan> {
    let imp = store
        .import(account.id, import_id)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("import {import_id} does not exist")))?;
    if !imp.is_restore() || imp.request.get("revertsImport").is_some() {
        return Err(invalid(
            format!("import {import_id} is not a restore from a backup, so it cannot be reverted"),
            "importId",
        ));
    }
    if imp.state != DONE {
        return Err(invalid(
            format!(
                "restore {import_id} is {}: only a finished restore can be reverted",
                imp.state
            ),
            "importId",
        ));
    }
    let properties: Vec<String> = serde_json::from_value(imp.request["properties"].clone())
        .map_err(|_| internal("restore without its properties"))?;
    let r = resolve(store, account.id, &imp.object_type, &properties).await?;
    let seq = store.last_change_seq(account.id).await?;
    let mut tally = Tally::new(r.properties.len());
    let mut after = 0;
    loop {
        let changes = store.restore_changes(&imp, after, BATCH).await?;
        let Some(last) = changes.last() else { break };
        after = last.seq;
        let ids: Vec<i64> = changes.iter().map(|c| c.record_id).collect();
        let live: std::collections::HashMap<i64, _> = store
            .records_by_ids(account.id, &r.ot, &ids, false)
            .await?
            .into_iter()
            .map(|rec| (rec.id, rec.props))
            .collect();
        for c in &changes {
            tally.in_backup += 1;
            let Some(props) = live.get(&c.record_id) else {
                tally.missing += 1;
                continue;
            };
            let item = revert_item(&r.properties, c);
            let now: Vec<Option<String>> =
                r.properties.iter().map(|p| props.get(p).cloned()).collect();
            let expected = item.expected.clone().unwrap_or_default();
            // Values changed since the restore are conflicts; the rest go back.
            let mut target = now.clone();
            let mut conflict = false;
            for k in 0..r.properties.len() {
                if c.set.contains_key(&r.properties[k]) {
                    if now[k] == expected[k] {
                        target[k] = item.target[k].clone();
                    } else {
                        conflict = true;
                    }
                }
            }
            if conflict {
                tally.conflicts += 1;
            }
            tally.record(&r.properties, c.record_id, &now, &target);
        }
    }
    let summary = tally.summary(
        &r,
        json!({"revertsImport": import_id.to_string(), "restoreName": imp.name}),
    );
    let what = format!(
        "Reviewed reverting restore {import_id}: {} records would change back",
        tally.records_to_change
    );
    let backup_id = imp.request.get("backupId").and_then(Value::as_i64);
    save_plan(
        store,
        account,
        who,
        &r,
        PLAN_REVERT,
        backup_id,
        Some(import_id),
        seq,
        &summary,
        &what,
    )
    .await
}

/// Stores a plan and records in the audit log that it was reviewed.
#[allow(clippy::too_many_arguments)]
async fn save_plan(
    store: &Store,
    account: &Account,
    who: &Requester,
    r: &Resolved,
    kind: &str,
    backup_id: Option<i64>,
    reverts_import: Option<i64>,
    seq: i64,
    summary: &Value,
    what: &str,
) -> PlanResult<RestorePlan> {
    let plan = store
        .create_restore_plan(
            account.id,
            &NewPlan {
                kind,
                backup_id,
                reverts_import,
                object_type: &r.ot.type_id,
                properties: &r.properties,
                seq,
                summary,
                created_by: who.user_id,
                created_by_name: &who.name,
            },
        )
        .await?;
    store
        .audit(
            account.id,
            who.user_id,
            &who.name,
            "restore.plan",
            &format!("restore plan {}", plan.id),
            serde_json::json!({"message": what}),
        )
        .await?;
    Ok(plan)
}

/// A change of a restore, turned around: what to put back, and what must still be there.
fn revert_item(properties: &[String], c: &kontor_store::RestoreChange) -> RestoreItem {
    let mut target = Vec::with_capacity(properties.len());
    let mut expected = Vec::with_capacity(properties.len());
    let mut skip = Vec::new();
    for (k, p) in properties.iter().enumerate() {
        match c.set.get(p) {
            Some(v) => {
                expected.push(v.clone());
                target.push(c.prior.get(p).cloned().flatten());
            }
            None => {
                // Not changed by the restore: left as it is found.
                expected.push(None);
                target.push(None);
                skip.push(k);
            }
        }
    }
    RestoreItem {
        id: c.record_id,
        target,
        expected: Some(expected),
        skip,
    }
}

/// Starts applying a reviewed plan as an import job. Refused (409) while another restore runs.
pub async fn apply_plan(
    store: &Store,
    account: &Account,
    plan_id: i64,
    overwrite_newer: bool,
    who: &Requester,
) -> PlanResult<Import> {
    let plan = store
        .restore_plan(account.id, plan_id)
        .await?
        .ok_or_else(|| StoreError::not_found(format!("restore plan {plan_id} does not exist")))?;
    let ot = store
        .object_type(account.id, &plan.object_type)
        .await?
        .ok_or_else(|| invalid("the plan's object type no longer exists", "planId"))?;
    let revert = plan.kind == PLAN_REVERT;
    let rows = plan.summary["recordsInBackup"].as_i64().unwrap_or(0);
    let request = json!({
        "restorePlanId": plan.id,
        "backupId": plan.backup_id,
        "revertsImport": plan.reverts_import,
        "objectType": ot.name,
        "properties": plan.properties,
        "planSeq": plan.seq,
        "overwriteNewer": overwrite_newer,
    });
    let mut request = request;
    if !revert {
        request.as_object_mut().map(|o| o.remove("revertsImport"));
    }
    let name = import_name(&ot, revert);
    let imp = store
        .create_import(
            account.id,
            &NewImport {
                name: &name,
                source: SOURCE_RESTORE,
                object_type: &ot.type_id,
                operation: Operation::Update,
                request: &request,
                file_key: None,
                file_name: None,
                created_by: who.user_id,
                created_by_name: &who.name,
                rows_total: rows,
                file_bytes: 0,
                plan_id: Some(plan.id),
            },
        )
        .await?;
    let what = if revert {
        format!(
            "Reverting restore {}: {} of {} go back to the values it replaced",
            plan.reverts_import.unwrap_or_default(),
            plan.properties.join(", "),
            ot.name
        )
    } else {
        format!(
            "Restoring {} of {} from backup {} (plan {}, pinned to change {}{})",
            plan.properties.join(", "),
            ot.name,
            plan.backup_id.unwrap_or_default(),
            plan.id,
            plan.seq,
            if overwrite_newer {
                "; newer changes are overwritten"
            } else {
                "; newer changes are kept"
            }
        )
    };
    store
        .audit(
            account.id,
            who.user_id,
            &who.name,
            if revert {
                "restore.revert"
            } else {
                "restore.apply"
            },
            &format!("import {}", imp.id),
            serde_json::json!({"message": what}),
        )
        .await?;
    Ok(imp)
}

/// The restore job: applies the plan from where the last runner stopped. `false` if the job
/// was taken away or canceled.
pub(crate) async fn apply(
    jobs: &Jobs,
    store: &Store,
    job: &Job,
    account: &Account,
    imp: &Import,
) -> Result<bool> {
    let properties: Vec<String> = serde_json::from_value(imp.request["properties"].clone())?;
    let ot = store
        .object_type(account.id, &imp.object_type)
        .await?
        .context("the object type no longer exists")?;
    let defs = store.properties(account.id, &ot.type_id, false).await?;
    let unique: Vec<bool> = properties
        .iter()
        .map(|p| defs.iter().any(|d| &d.name == p && d.has_unique_value))
        .collect();
    let spec = RestoreSpec {
        properties: properties.clone(),
        plan_seq: imp.request["planSeq"]
            .as_i64()
            .context("restore without planSeq")?,
        overwrite_newer: imp.request["overwriteNewer"].as_bool().unwrap_or(false),
    };
    store.import_started(imp, imp.rows_total).await?;
    let mut run = Batches {
        jobs,
        store,
        job,
        imp,
        ot: &ot,
        spec: &spec,
        unique: &unique,
        done: imp.rows_done,
        renewed: std::time::Instant::now(),
        pending: None,
        own: OwnChanges::default(),
    };
    if let Some(reverts) = imp.request.get("revertsImport").and_then(Value::as_i64) {
        let original = store
            .import(account.id, reverts)
            .await?
            .context("the reverted restore no longer exists")?;
        // Resume: skip the changes already handled.
        let mut after = 0;
        let mut skip = run.done;
        loop {
            let mut changes = store.restore_changes(&original, after, BATCH).await?;
            let Some(last) = changes.last() else {
                return run.finish().await;
            };
            after = last.seq;
            let drop = (skip as usize).min(changes.len());
            changes.drain(..drop);
            skip -= drop as i64;
            if changes.is_empty() {
                continue;
            }
            let items = changes
                .iter()
                .map(|c| revert_item(&properties, c))
                .collect();
            if !run.push(items).await? {
                return Ok(false);
            }
        }
    }
    let backup_id = imp.request["backupId"]
        .as_i64()
        .context("restore without backupId")?;
    let (path, manifest) = checked_archive(jobs, store, account, backup_id, false)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let file = manifest
        .files
        .iter()
        .find(|f| f.object_type_id == ot.type_id)
        .context("the backup holds no such object")?;
    let (rx, reader) = spawn_reader(
        path,
        file.name.clone(),
        properties.clone(),
        run.done as u64,
        BATCH,
    );
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    loop {
        let rx2 = rx.clone();
        let batch =
            tokio::task::spawn_blocking(move || rx2.lock().expect("reader").recv().ok()).await?;
        let Some(batch) = batch else { break };
        let items = batch
            .into_iter()
            .map(|(id, target)| RestoreItem {
                id,
                target,
                expected: None,
                skip: Vec::new(),
            })
            .collect();
        if !run.push(items).await? {
            drop(rx);
            let _ = reader.join();
            return Ok(false);
        }
    }
    if !run.finish().await? {
        return Ok(false);
    }
    reader
        .join()
        .map_err(|_| anyhow!("archive reader panicked"))?
        .map_err(|e| anyhow!("reading the archive: {e}"))?;
    Ok(true)
}

/// A restore's batches, with the job's lease renewed as they go. Each batch is read and decided
/// while the one before it is written (see `Store::prepare_restore_batch`).
struct Batches<'a> {
    jobs: &'a Jobs,
    store: &'a Store,
    job: &'a Job,
    imp: &'a Import,
    ot: &'a ObjectType,
    spec: &'a RestoreSpec,
    unique: &'a [bool],
    /// Rows committed so far.
    done: i64,
    renewed: std::time::Instant,
    /// The batch read and decided, not yet written, and its number of rows.
    pending: Option<(PreparedBatch, i64)>,
    own: OwnChanges,
}

impl Batches<'_> {
    /// Prepares `items` while the pending batch is written; `false` when the job was taken
    /// away or canceled.
    async fn push(&mut self, items: Vec<RestoreItem>) -> Result<bool> {
        let n = items.len() as i64;
        let queued = self.pending.as_ref().map_or(0, |p| p.1);
        let (first_line, rows_done) = (self.done + queued + 1, self.done + queued + n);
        let pending = self.pending.take();
        let store = self.store;
        let prepare = store.prepare_restore_batch(
            self.imp,
            self.job,
            &self.jobs.node,
            self.ot,
            self.spec,
            self.unique,
            items,
            first_line,
            rows_done,
        );
        let (prepared, committed) =
            tokio::join!(prepare, Self::commit(store, pending, &mut self.own));
        if !self.committed(committed?).await? {
            return Ok(false);
        }
        self.pending = Some((prepared?, n));
        Ok(true)
    }

    /// Writes the last pending batch.
    async fn finish(&mut self) -> Result<bool> {
        let pending = self.pending.take();
        let committed = Self::commit(self.store, pending, &mut self.own).await?;
        self.committed(committed).await
    }

    /// `Some(rows)` once the batch is written, `None` if it was not; no batch: `Some(0)`.
    async fn commit(
        store: &Store,
        pending: Option<(PreparedBatch, i64)>,
        own: &mut OwnChanges,
    ) -> Result<Option<i64>> {
        let Some((p, n)) = pending else {
            return Ok(Some(0));
        };
        Ok(store.commit_restore_batch(p, own).await?.map(|_| n))
    }

    /// Counts a written batch's rows and renews the lease when due; `false` when the batch was
    /// not written or the lease is lost.
    async fn committed(&mut self, rows: Option<i64>) -> Result<bool> {
        let Some(n) = rows else {
            return Ok(false);
        };
        self.done += n;
        if n > 0 && self.renewed.elapsed() >= self.jobs.heartbeat() {
            self.renewed = std::time::Instant::now();
            let total = self.imp.rows_total;
            return self
                .jobs
                .renew(self.store, self.job, self.done, total)
                .await;
        }
        Ok(true)
    }
}

/// Prints a plan's summary in a few lines (CLI and logs).
pub fn describe_plan(plan: &RestorePlan) -> String {
    let s = &plan.summary;
    let mut out = format!(
        "Restore plan {} ({}): {} of {}, pinned to change {} ({})\n",
        plan.id,
        plan.kind,
        plan.properties.join(", "),
        s["objectType"].as_str().unwrap_or(""),
        plan.seq,
        iso(plan.created_at)
    );
    if let Some(props) = s["properties"].as_array() {
        for p in props {
            out.push_str(&format!(
                "  {:<28} {:>9} changed {:>9} cleared\n",
                p["name"].as_str().unwrap_or(""),
                p["changed"],
                p["cleared"]
            ));
        }
    }
    out.push_str(&format!(
        "  records: {} in the backup, {} to change, {} unchanged, {} no longer exist (not restored: see the recycle bin or imports), {} created after the backup (untouched), {} conflicts\n",
        s["recordsInBackup"], s["recordsToChange"], s["recordsUnchanged"], s["recordsMissing"], s["recordsNotInBackup"], s["conflicts"]
    ));
    out
}
