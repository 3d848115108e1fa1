//! A batch of an import's rows applied in one transaction, with its rejected rows and its
//! progress.

use super::*;

impl Store {
    /// Applies one batch of an import's rows in one transaction: each row wholly or not at all
    /// (a rejected row becomes an error with its reason), then the counters and the job's
    /// progress. `None` when the runner lost the job's lease or the import was canceled:
    /// nothing of the batch was applied and the runner must stop.
    #[allow(clippy::too_many_arguments)]
    pub async fn import_batch(
        &self,
        imp: &Import,
        job: &Job,
        owner: &str,
        ot: &ObjectType,
        defs: &[PropertyDef],
        rows: Vec<ImportRow>,
        rows_done: i64,
    ) -> StoreResult<Option<BatchOutcome>> {
        let account = imp.account_id;
        let by_name: HashMap<&str, &PropertyDef> =
            defs.iter().map(|d| (d.name.as_str(), d)).collect();
        let actor = Actor {
            source: kontor_domain::ChangeSource::Import,
            source_id: Some(imp.id.to_string()),
            user_id: imp.created_by,
        };
        let stages = crate::records::Stages::of(ot, defs);
        let mut out = BatchOutcome::default();
        let mut errors: Vec<Rejected> = Vec::new();
        // Rows that passed the checks that need no database, with their write.
        let mut ready: Vec<(usize, WriteOp)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let (id, props, create) = match &row.op {
                RowOp::Reject(e) => {
                    errors.push((row.line, None, e.clone(), row.data.clone()));
                    continue;
                }
                RowOp::Create { id, props } => (*id, props, true),
                RowOp::Update { id, props } => (Some(*id), props, false),
            };
            let mut normalized = match normalize_properties(&by_name, props, "") {
                Ok(n) => n,
                Err(e) => {
                    errors.push((row.line, id, row_error(&e, props), row.data.clone()));
                    continue;
                }
            };
            if create {
                stages.fill_pipeline(&mut normalized);
                ot.fill_defaults(&mut normalized);
                if let Some(req) = ot
                    .required
                    .iter()
                    .find(|r| normalized.get(*r).is_none_or(|v| v.is_none()))
                {
                    errors.push((
                        row.line,
                        id,
                        RowError {
                            error_type: "REQUIRED_PROPERTY".into(),
                            message: format!("{req} is required to create a {}", ot.singular),
                            property: Some(req.clone()),
                            invalid_value: None,
                        },
                        row.data.clone(),
                    ));
                    continue;
                }
                ready.push((
                    i,
                    WriteOp::Create {
                        id,
                        props: normalized,
                        associations: Vec::new(),
                    },
                ));
            } else {
                ready.push((
                    i,
                    WriteOp::Update {
                        id: id.unwrap_or_default(),
                        props: normalized,
                    },
                ));
            }
        }

        let creates: Vec<WriteOp> = ready
            .iter()
            .filter(|(_, op)| matches!(op, WriteOp::Create { id: None, .. }))
            .map(|(_, op)| op.clone())
            .collect();
        let pre = self.pre_allocate(account, &creates).await?;
        let mut tx = self.write().await?;
        // The whole batch in one savepoint; if any row fails, each row in a savepoint of its
        // own so that only the failing rows are left out.
        let all: Vec<WriteOp> = ready.iter().map(|(_, op)| op.clone()).collect();
        let whole = {
            let mut sp = (*tx).begin().await?;
            match self
                .apply_in(&mut sp, account, ot, defs, all, &actor, pre)
                .await
            {
                Ok(written) => {
                    sp.commit().await?;
                    Some(written)
                }
                Err(e) if is_row_error(&e) => {
                    sp.rollback().await?;
                    None
                }
                Err(e) => return Err(e),
            }
        };
        match whole {
            Some(written) => {
                for (_, new) in written {
                    if new {
                        out.created += 1
                    } else {
                        out.updated += 1
                    }
                }
            }
            None => {
                for (i, op) in ready {
                    let row = &rows[i];
                    let pre = self
                        .pre_allocate(account, std::slice::from_ref(&op))
                        .await?;
                    let id = match &op {
                        WriteOp::Create { id, .. } => *id,
                        WriteOp::Update { id, .. } => Some(*id),
                    };
                    let mut sp = (*tx).begin().await?;
                    match self
                        .apply_in(&mut sp, account, ot, defs, vec![op], &actor, pre)
                        .await
                    {
                        Ok(written) => {
                            sp.commit().await?;
                            if written.first().is_some_and(|(_, new)| *new) {
                                out.created += 1
                            } else {
                                out.updated += 1
                            }
                        }
                        Err(e) if is_row_error(&e) => {
                            sp.rollback().await?;
                            let props = match &row.op {
                                RowOp::Create { props, .. } | RowOp::Update { props, .. } => {
                                    props.clone()
                                }
                                RowOp::Reject(_) => Map::new(),
                            };
                            errors.push((row.line, id, row_error(&e, &props), row.data.clone()));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        out.errors = errors.len() as i64;
        errors.sort_by_key(|e| e.0);
        record_errors(&mut tx, imp, &errors).await?;
        if !commit_progress(&mut tx, imp, job.id, owner, &out, rows_done, None).await? {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(out))
    }
}

/// A write error that belongs to the rows (bad value, taken unique value, unknown owner, …)
/// rather than to the database.
fn is_row_error(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Validation { .. } | StoreError::Conflict { .. } | StoreError::NotFound(_)
    )
}

fn row_error(e: &StoreError, props: &Map<String, Value>) -> RowError {
    let (error_type, message, property) = match e {
        StoreError::Validation {
            code,
            message,
            in_field,
        } => {
            let property = in_field
                .as_deref()
                .and_then(|f| f.rsplit("properties.").next())
                .filter(|p| !p.is_empty() && *p != "hs_object_id" || props.contains_key(*p))
                .map(str::to_string);
            // The batch API's message lists every invalid value as JSON; a row shows the first.
            let message = match message.strip_prefix("Property values were not valid: ") {
                Some(list) => serde_json::from_str::<Vec<Value>>(list)
                    .ok()
                    .and_then(|l| l.first()?.get("message")?.as_str().map(str::to_string))
                    .unwrap_or_else(|| message.clone()),
                None => message.clone(),
            };
            (code.clone(), message, property)
        }
        StoreError::Conflict { message, .. } => ("DUPLICATE_VALUE".into(), message.clone(), None),
        StoreError::NotFound(m) => ("OBJECT_NOT_FOUND".into(), m.clone(), None),
        other => ("UNKNOWN".into(), other.to_string(), None),
    };
    let invalid_value = property.as_ref().and_then(|p| match props.get(p) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(v) => Some(v.to_string()),
    });
    RowError {
        error_type,
        message,
        property,
        invalid_value,
    }
}

/// A rejected row: its line, the record it was about, why, and the row itself.
pub(crate) type Rejected = (i64, Option<i64>, RowError, Vec<String>);

/// Stores rejected rows.
pub(crate) async fn record_errors(
    tx: &mut sqlx::AnyConnection,
    imp: &Import,
    errors: &[Rejected],
) -> StoreResult<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let first = allocate(
        tx,
        imp.account_id,
        &format!("import_error:{}", imp.id),
        errors.len() as i64,
    )
    .await?;
    let now = now_ms();
    for chunk in errors.iter().enumerate().collect::<Vec<_>>().chunks(50) {
        let sql = format!(
            "INSERT INTO import_errors (account_id, import_id, id, line, record_id, error_type, message, property, invalid_value, row_data, created_at) VALUES {}",
            crate::records::values_clause(chunk.len(), 11)
        );
        let mut q = sqlx::query(&sql);
        for (i, (line, record_id, e, data)) in chunk {
            q = q
                .bind(imp.account_id)
                .bind(imp.id)
                .bind(first + *i as i64)
                .bind(*line)
                .bind(*record_id)
                .bind(&e.error_type)
                .bind(&e.message)
                .bind(e.property.clone())
                .bind(e.invalid_value.clone())
                .bind(serde_json::to_string(data)?)
                .bind(now);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Moves the counters and the job's progress inside the batch's transaction. `false` (the
/// caller rolls back) if the runner no longer holds the lease or the import was canceled.
pub(crate) async fn commit_progress(
    tx: &mut sqlx::AnyConnection,
    imp: &Import,
    job_id: i64,
    owner: &str,
    out: &BatchOutcome,
    rows_done: i64,
    seqs: Option<(i64, i64)>,
) -> StoreResult<bool> {
    let now = now_ms();
    let held = sqlx::query("UPDATE jobs SET progress_done = $1, updated_at = $2 WHERE account_id = $3 AND id = $4 AND state = 'running' AND lease_owner = $5")
        .bind(rows_done)
        .bind(now)
        .bind(imp.account_id)
        .bind(job_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if held != 1 {
        return Ok(false);
    }
    let (first, last) = seqs.map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let n = sqlx::query("UPDATE imports SET state = 'PROCESSING', rows_done = $1, created_count = created_count + $2, updated_count = updated_count + $3, unchanged_count = unchanged_count + $4, error_count = error_count + $5, conflict_count = conflict_count + $6, first_seq = COALESCE(first_seq, $7), last_seq = COALESCE($8, last_seq), updated_at = $9 WHERE account_id = $10 AND id = $11 AND state IN ('STARTED', 'PROCESSING')")
        .bind(rows_done)
        .bind(out.created)
        .bind(out.updated)
        .bind(out.unchanged)
        .bind(out.errors)
        .bind(out.conflicts)
        .bind(first)
        .bind(last)
        .bind(now)
        .bind(imp.account_id)
        .bind(imp.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok(n == 1)
}
