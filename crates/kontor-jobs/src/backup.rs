//! The backup job: snapshot → archive under a temporary name → verified → published.

use crate::{Jobs, Requester};
use anyhow::{bail, Context, Result};
use kontor_archive::{
    ArchiveError, ArchiveResult, ArchiveWriter, CsvRows, Manifest, ManifestFile, ManifestProperty,
    RowFormatter, WriterOptions, FORMAT, FORMAT_VERSION, MANIFEST_NAME,
};
use kontor_domain::time::iso;
use kontor_store::{
    for_each_prop, Account, Backup, BackupRequest, CompletedBackup, Job, SnapshotInfo,
    SnapshotSink, Store, StoreResult,
};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// Asks for a backup of `account` and records the request in the audit log.
pub async fn request_backup(
    store: &Store,
    account: &Account,
    who: &Requester,
) -> StoreResult<Backup> {
    let backup = store
        .create_backup(
            account.id,
            &BackupRequest {
                tier: account.tier,
                user_id: who.user_id,
                requested_by: &who.name,
                ignore_interval: who.operator_override,
            },
        )
        .await?;
    store
        .audit(
            account.id,
            who.user_id,
            &who.name,
            "backup.create",
            &format!("backup {}", backup.id),
            serde_json::json!({"message": if who.operator_override {
                "A backup of all records was requested (sensitive property values included); the operator skipped the tier's interval."
            } else {
                "A backup of all records was requested (sensitive property values included)."
            }}),
        )
        .await?;
    Ok(backup)
}

/// Where a backup's archive lives below the region's file store.
pub fn archive_key(account: i64, backup: i64) -> String {
    format!("backups/{account}/backup-{backup}.zip")
}

/// The file name users see for a download.
pub fn download_name(account: &Account, backup: &Backup) -> String {
    let day = backup
        .snapshot_at
        .map(|t| iso(t)[..10].to_string())
        .unwrap_or_default();
    format!("kontor-backup-{}-{}-{day}.zip", account.id, backup.id)
}

/// Turns the snapshot into CSV rows of the archive.
struct Sink {
    writer: Option<ArchiveWriter<BufWriter<File>>>,
    manifest: Manifest,
    /// Per type of the snapshot: what turns its stored rows into CSV rows.
    formatters: Vec<Arc<PropsToCsv>>,
    /// The type whose CSV entry is open.
    open: Option<usize>,
    /// Stored rows not yet handed to the archive's worker threads.
    batch: Vec<u8>,
    progress: Arc<AtomicI64>,
    total: Arc<AtomicI64>,
    cancel: Arc<AtomicBool>,
}

impl Sink {
    fn writer(&mut self) -> &mut ArchiveWriter<BufWriter<File>> {
        self.writer.as_mut().expect("open until finish")
    }

    fn flush_batch(&mut self, type_index: usize) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let fresh = self.writer().batch_buffer();
        let batch = std::mem::replace(&mut self.batch, fresh);
        let formatter: Arc<dyn RowFormatter> = self.formatters[type_index].clone();
        self.writer().write_batch(batch, formatter)?;
        Ok(())
    }
}

/// Stored rows per batch handed to the worker threads.
const BATCH_BYTES: usize = 2 << 20;

/// Splits stored rows (`id`, length, properties document) into CSV columns.
struct PropsToCsv {
    /// The type's property names, sorted, with their column.
    lookup: Vec<(String, usize)>,
}

impl RowFormatter for PropsToCsv {
    fn format(&self, mut batch: &[u8], out: &mut CsvRows) -> ArchiveResult<u64> {
        let bad = || ArchiveError::Invalid("a malformed row batch".into());
        let lookup = &self.lookup;
        let mut rows = 0;
        let mut slots: Vec<Cow<'_, str>> = Vec::with_capacity(lookup.len());
        while !batch.is_empty() {
            let len = u32::from_le_bytes(
                batch
                    .get(8..12)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?,
            ) as usize;
            let props =
                std::str::from_utf8(batch.get(12..12 + len).ok_or_else(bad)?).map_err(|_| bad())?;
            batch = &batch[12 + len..];
            slots.clear();
            slots.resize(lookup.len(), Cow::Borrowed(""));
            // Stored documents keep their names sorted, as `lookup` is: walk both in step,
            // and search only when a name comes out of order.
            let mut at = 0;
            for_each_prop(props, |name, value| {
                let name: &str = &name;
                while at < lookup.len() && lookup[at].0.as_str() < name {
                    at += 1;
                }
                let hit = if at < lookup.len() && lookup[at].0 == name {
                    Some(at)
                } else {
                    lookup.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok()
                };
                if let Some(i) = hit {
                    slots[lookup[i].1] = value;
                }
            })
            .map_err(|e| ArchiveError::Invalid(format!("a record's stored properties: {e}")))?;
            out.write_record(slots.iter().map(|s| s.as_bytes()));
            rows += 1;
        }
        Ok(rows)
    }
}

impl SnapshotSink for Sink {
    type Output = (Manifest, BufWriter<File>);

    fn info(&mut self, info: &SnapshotInfo) -> Result<()> {
        self.manifest.snapshot_seq = info.seq;
        self.manifest.snapshot_at = iso(info.at);
        self.total
            .store(info.types.iter().map(|t| t.rows).sum(), Ordering::Relaxed);
        for t in &info.types {
            let mut names: Vec<(String, usize)> = t
                .properties
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect();
            names.sort();
            self.formatters.push(Arc::new(PropsToCsv { lookup: names }));
            self.manifest.files.push(ManifestFile {
                name: format!("{}.csv", t.object_type.name),
                object_type: t.object_type.name.clone(),
                object_type_id: t.object_type.type_id.clone(),
                properties: t
                    .properties
                    .iter()
                    .map(|p| ManifestProperty {
                        name: p.name.clone(),
                        label: p.label.clone(),
                        kind: p.kind.as_str().to_string(),
                        field_type: p.field_type.clone(),
                        sensitive: p.sensitivity.is_sensitive(),
                    })
                    .collect(),
                rows: 0,
                sha256: String::new(),
                bytes: 0,
            });
        }
        Ok(())
    }

    fn row(&mut self, type_index: usize, id: i64, props: &str) -> Result<()> {
        // An entry begins with its type's first row: a type without rows gets no file.
        if self.open != Some(type_index) {
            let file = &self.manifest.files[type_index];
            let name = file.name.clone();
            let header: Vec<String> = file.properties.iter().map(|p| p.name.clone()).collect();
            self.writer().begin_csv(&name, &header)?;
            self.open = Some(type_index);
            self.batch = self.writer().batch_buffer();
        }
        // Rows travel to the worker threads as stored; they split them into columns.
        self.batch.extend_from_slice(&id.to_le_bytes());
        self.batch
            .extend_from_slice(&(props.len() as u32).to_le_bytes());
        self.batch.extend_from_slice(props.as_bytes());
        if self.batch.len() >= BATCH_BYTES {
            self.flush_batch(type_index)?;
        }
        let n = self.progress.fetch_add(1, Ordering::Relaxed) + 1;
        if n % 4096 == 0 && self.cancel.load(Ordering::Relaxed) {
            bail!("the job was taken over by another runner");
        }
        Ok(())
    }

    fn end_type(&mut self, type_index: usize) -> Result<()> {
        if self.open == Some(type_index) {
            self.flush_batch(type_index)?;
            let s = self.writer().end_csv()?;
            let f = &mut self.manifest.files[type_index];
            f.rows = s.rows;
            f.bytes = s.bytes;
            f.sha256 = s.sha256;
            self.open = None;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(Manifest, BufWriter<File>)> {
        // Only types that got a file are listed.
        self.manifest.files.retain(|f| !f.sha256.is_empty());
        let mut w = self.writer.take().expect("finished once");
        w.file(MANIFEST_NAME, &serde_json::to_vec_pretty(&self.manifest)?)?;
        Ok((self.manifest, w.finish()?))
    }
}

/// Attempts of one backup before it is marked failed (each restart after a crash is one).
pub(crate) const MAX_ATTEMPTS: i64 = 10;

/// Runs a claimed backup job to its end. Returns the finished backup.
pub(crate) async fn run(jobs: &Jobs, store: &Store, job: &Job) -> Result<Option<Backup>> {
    let backup_id = job.payload["backupId"]
        .as_i64()
        .context("backup job without backupId")?;
    let account = jobs
        .dir
        .account(job.account_id)
        .await?
        .context("the account no longer exists")?;
    if job.attempts > MAX_ATTEMPTS {
        // It was taken up again and again and never finished: something kills its runner.
        let msg = format!("gave up after {MAX_ATTEMPTS} attempts that did not finish");
        // Its notification goes out with the job's end, and only if this runner still
        // held the lease.
        store
            .backup_failed(job, &jobs.node, backup_id, &msg)
            .await?;
        return Ok(None);
    }
    store.backup_started(account.id, backup_id).await?;
    match produce(jobs, store, job, &account, backup_id).await {
        Ok(Some(done)) => {
            if !store.backup_completed(job, &jobs.node, &done).await? {
                tracing::warn!(backup_id, "lease lost before completion was recorded");
                return Ok(None);
            }
            let backup = store
                .backup(account.id, backup_id)
                .await?
                .context("backup row vanished")?;
            store
                .audit(
                    account.id,
                    None,
                    "kontor",
                    "backup.complete",
                    &format!("backup {backup_id}"),
                    serde_json::json!({"message": format!(
                        "{} record{} as of change {} ({}), {} bytes, SHA-256 {}",
                        done.rows,
                        if done.rows == 1 { "" } else { "s" },
                        done.snapshot_seq,
                        iso(done.snapshot_at),
                        done.size_bytes,
                        done.sha256
                    )}),
                )
                .await?;
            Ok(Some(backup))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            let msg = format!("{e:#}");
            // Another runner may own the backup now (this one lost its lease while failing):
            // then nothing is recorded and nobody is told; the owner reports the outcome.
            if store
                .backup_failed(job, &jobs.node, backup_id, &msg)
                .await?
            {
                tracing::error!(backup_id, error = %msg, "backup failed");
            } else {
                tracing::warn!(backup_id, error = %msg, "backup attempt failed after losing its lease");
            }
            Ok(None)
        }
    }
}

/// Writes, verifies and publishes the archive. `None` if the lease was lost.
async fn produce(
    jobs: &Jobs,
    store: &Store,
    job: &Job,
    account: &Account,
    backup_id: i64,
) -> Result<Option<CompletedBackup>> {
    let root = jobs.files_root(account.region);
    let key = archive_key(account.id, backup_id);
    let final_path = root.join(&key);
    let dir = final_path.parent().context("archive path")?.to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Leftovers of an attempt that died are never published: clear them. A file another
    // attempt still writes is left alone: a runner that lost its lease writes until its next
    // heartbeat and then deletes its own file, so only files untouched for a whole lease
    // belong to attempts that are over.
    let prefix = format!(".backup-{backup_id}.");
    let temp = dir.join(temp_name(backup_id, job.attempts, &jobs.node));
    for e in std::fs::read_dir(&dir)?.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix)
            && e.path() != temp
            && lapsed(&e.path(), jobs.lease_ms)
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let file = File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
    let progress = Arc::new(AtomicI64::new(0));
    let total = Arc::new(AtomicI64::new(0));
    let cancel = Arc::new(AtomicBool::new(false));
    let sink = Sink {
        writer: Some(ArchiveWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            WriterOptions {
                level: jobs.compression_level,
                ..WriterOptions::default()
            },
        )?),
        manifest: Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            account_id: account.id,
            account_name: account.name.clone(),
            region: account.region.as_str().into(),
            backup_id,
            snapshot_seq: 0,
            snapshot_at: String::new(),
            files: vec![],
        },
        formatters: vec![],
        open: None,
        batch: Vec::new(),
        progress: progress.clone(),
        total: total.clone(),
        cancel: cancel.clone(),
    };
    let started = std::time::Instant::now();
    let export = store.export_snapshot(account.id, sink);
    tokio::pin!(export);
    let mut tick = tokio::time::interval(jobs.heartbeat());
    let result = loop {
        tokio::select! {
            r = &mut export => break r,
            _ = tick.tick() => {
                let done = progress.load(Ordering::Relaxed);
                let total = total.load(Ordering::Relaxed).max(done);
                if !jobs.renew(store, job, done, total).await? {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        }
    };
    let (manifest, out) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            if cancel.load(Ordering::Relaxed) {
                return Ok(None);
            }
            return Err(e);
        }
    };
    let file = out.into_inner().map_err(|e| e.into_error())?;
    let written = started.elapsed();
    file.sync_all()?;
    let synced = started.elapsed();
    drop(file);
    // The check reads the whole file: on a blocking thread, while the lease is renewed.
    let check = {
        let (temp, manifest) = (temp.clone(), manifest.clone());
        tokio::task::spawn_blocking(move || check_written(&temp, &manifest))
    };
    tokio::pin!(check);
    let done = progress.load(Ordering::Relaxed);
    let checked = loop {
        tokio::select! {
            r = &mut check => break r.context("the archive check")?,
            _ = tick.tick() => {
                if !jobs.renew(store, job, done, done).await? {
                    // Lost, or paused: the check's thread ends on its own, then the file goes.
                    let _ = check.await;
                    let _ = std::fs::remove_file(&temp);
                    return Ok(None);
                }
            }
        }
    };
    let (size, sha256) = match checked {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e.context("the written archive failed verification"));
        }
    };
    if !jobs.renew(store, job, done, done).await? {
        let _ = std::fs::remove_file(&temp);
        return Ok(None);
    }
    // Publishing is one rename: readers see no archive or the whole one.
    let checked = started.elapsed();
    std::fs::rename(&temp, &final_path)?;
    tracing::info!(
        backup_id,
        rows = done,
        bytes = size,
        written_ms = written.as_millis() as u64,
        synced_ms = synced.as_millis() as u64,
        checked_ms = checked.as_millis() as u64,
        "archive published"
    );
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    let snapshot_at = kontor_domain::time::parse_instant(&manifest.snapshot_at)
        .unwrap_or_else(kontor_domain::time::now_ms);
    Ok(Some(CompletedBackup {
        backup_id,
        snapshot_seq: manifest.snapshot_seq,
        snapshot_at,
        size_bytes: size as i64,
        rows: manifest.files.iter().map(|f| f.rows as i64).sum(),
        sha256,
        file_key: key,
    }))
}

/// The temporary file of one attempt: the backup, the attempt and the runner, so that no two
/// attempts ever write, or delete, the same file.
pub(crate) fn temp_name(backup_id: i64, attempt: i64, node: &str) -> String {
    let node: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(".backup-{backup_id}.{attempt}-{node}.partial")
}

/// Whether a temporary file was left untouched for longer than a lease (its attempt is over).
fn lapsed(path: &Path, lease_ms: i64) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_millis() as i64 > lease_ms)
}

/// Reads the written file back before it is published: every byte is read (SHA-256 of the
/// archive), and an independent zip reader must find exactly the entries the manifest lists,
/// with the sizes written, and the same manifest. Decompressing and re-hashing every CSV is
/// left to `kontor backup verify` and to restores, which check the archive fully.
fn check_written(path: &Path, manifest: &Manifest) -> Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        size += n as u64;
    }
    let mut zip = zip::ZipArchive::new(File::open(path)?)?;
    if zip.len() != manifest.files.len() + 1 {
        bail!(
            "{} entries, expected {}",
            zip.len(),
            manifest.files.len() + 1
        );
    }
    let read_back: Manifest = {
        let mut text = String::new();
        zip.by_name(MANIFEST_NAME)?.read_to_string(&mut text)?;
        serde_json::from_str(&text)?
    };
    if &read_back != manifest {
        bail!("the manifest read back differs from the one written");
    }
    for f in &manifest.files {
        let entry = zip.by_name(&f.name)?;
        if entry.size() != f.bytes {
            bail!("{}: {} bytes, expected {}", f.name, entry.size(), f.bytes);
        }
    }
    let hex: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((size, hex))
}

/// The archive of a completed backup, if its file is still there.
pub fn archive_path(jobs: &Jobs, account: &Account, backup: &Backup) -> Option<PathBuf> {
    let key = backup.file_key.as_ref()?;
    backup
        .downloadable(kontor_domain::time::now_ms())
        .then(|| jobs.files_root(account.region).join(key))
}
