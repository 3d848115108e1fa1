//! Restores on PostgreSQL: a batch read in one snapshot and written by a few set-based
//! statements.

use super::*;

impl Store {
    /// PostgreSQL: the reads in one read-only snapshot, with the change log's sequence.
    pub(super) async fn prepare_pg(&self, b: &Batch) -> StoreResult<(Decided, i64)> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let snap = change_seq_pg(&mut tx, b.imp.account_id, false).await?;
        let inputs = read_inputs_pg(&mut tx, b, snap).await?;
        tx.commit().await?;
        Ok((b.decide(inputs, now_ms())?, snap))
    }

    /// PostgreSQL: a few set-based statements. The records are written first, which locks
    /// their rows, then the unique values, then the change-log counter's row is locked: the
    /// order every writer takes them in, so that a restore and a user's edit of the same record
    /// cannot deadlock. From then on no other change can commit before this batch does. If one
    /// committed since the batch was read, the writes are rolled back to a savepoint; the
    /// batch's rows and the counter are locked, and the batch is read, decided and written
    /// again, now with nothing able to change under it.
    pub(super) async fn commit_pg(
        &self,
        p: PreparedBatch,
        own: &mut OwnChanges,
    ) -> StoreResult<Option<BatchOutcome>> {
        let b = &p.batch;
        let account = b.imp.account_id;
        let mut tx = self.write().await?;
        let mut d = p.decided;
        sqlx::query("SAVEPOINT restore_batch")
            .execute(&mut *tx)
            .await?;
        let mut locked = false;
        let mut sep;
        loop {
            sep = separable(&d);
            write_records_pg(&mut tx, b, &d, sep).await?;
            for (id, k, v) in &d.unique_moves {
                let name = &b.spec.properties[*k];
                sqlx::query("DELETE FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND record_id = $4")
                    .bind(account)
                    .bind(&b.type_id)
                    .bind(name)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if let Some(v) = v {
                    sqlx::query("INSERT INTO unique_values (account_id, object_type, property, value, record_id) VALUES ($1, $2, $3, $4, $5)")
                        .bind(account)
                        .bind(&b.type_id)
                        .bind(name)
                        .bind(v)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let now_seq = change_seq_pg(&mut tx, account, true).await?;
            if locked || own.still_valid(b, p.snap, now_seq) {
                break;
            }
            sqlx::query("ROLLBACK TO SAVEPOINT restore_batch")
                .execute(&mut *tx)
                .await?;
            sqlx::query("SELECT id FROM records WHERE account_id = $1 AND id IN (SELECT unnest(CAST(string_to_array($2, ',') AS BIGINT[]))) ORDER BY id FOR UPDATE")
                .bind(account)
                .bind(listed(b.ids().into_iter()))
                .execute(&mut *tx)
                .await?;
            let seq = change_seq_pg(&mut tx, account, true).await?;
            d = b.decide(read_inputs_pg(&mut tx, b, seq).await?, now_ms())?;
            locked = true;
        }
        let mut seqs = None;
        if !d.writes.is_empty() {
            let first = allocate(&mut tx, account, "change", d.writes.len() as i64).await?;
            seqs = Some((first, first + d.writes.len() as i64 - 1));
            write_changes_pg(&mut tx, b, &d, first, sep).await?;
        }
        record_errors(&mut tx, &b.imp, &d.errors).await?;
        if !commit_progress(
            &mut tx,
            &b.imp,
            b.job_id,
            &b.owner,
            &d.out,
            b.rows_done,
            seqs,
        )
        .await?
        {
            return Ok(None);
        }
        tx.commit().await?;
        if let Some(s) = seqs {
            own.push(s);
        }
        Ok(Some(d.out))
    }
}

/// PostgreSQL: how a batch's columns travel. sqlx's engine-neutral driver binds no arrays, so
/// they travel as text split on the server with `string_to_array`: ids and sequences joined by
/// commas, documents and entries by the ASCII unit separator (U+001F), which JSON never holds
/// raw (control characters are escaped in JSON strings). Should a value hold it all the same,
/// the batch travels as one JSON array (`json_to_recordset`, three times the server's parsing).
const SEP: char = '\u{1f}';

fn separable(d: &Decided) -> bool {
    d.writes
        .iter()
        .all(|w| !(w.doc.contains(SEP) || w.changes.contains(SEP) || w.prior.contains(SEP)))
}

/// One text field of every write, joined by U+001F.
fn joined<'a>(d: &'a Decided, f: impl Fn(&'a Write) -> &'a str) -> String {
    let mut out = String::with_capacity(d.writes.iter().map(|w| f(w).len() + 1).sum());
    for (i, w) in d.writes.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.push_str(f(w));
    }
    out
}

/// Numbers joined by commas.
fn listed(values: impl Iterator<Item = i64>) -> String {
    values.map(|v| v.to_string()).collect::<Vec<_>>().join(",")
}

/// PostgreSQL: the records' new documents, in one statement over `unnest`.
async fn write_records_pg(
    tx: &mut sqlx::AnyConnection,
    b: &Batch,
    d: &Decided,
    separable: bool,
) -> StoreResult<()> {
    if d.writes.is_empty() {
        return Ok(());
    }
    let q = if separable {
        sqlx::query("UPDATE records SET props = u.doc, updated_at = $2 FROM unnest(CAST(string_to_array($3, ',') AS BIGINT[]), string_to_array($4, chr(31))) AS u(id, doc) WHERE records.account_id = $1 AND records.id = u.id")
            .bind(b.imp.account_id)
            .bind(d.now)
            .bind(listed(d.writes.iter().map(|w| w.id)))
            .bind(joined(d, |w| &w.doc))
    } else {
        let rows: Vec<Value> = d
            .writes
            .iter()
            .map(|w| serde_json::json!({"id": w.id, "doc": w.doc}))
            .collect();
        sqlx::query("UPDATE records SET props = u.doc, updated_at = $2 FROM json_to_recordset(CAST($3 AS JSON)) AS u(id BIGINT, doc TEXT) WHERE records.account_id = $1 AND records.id = u.id")
            .bind(b.imp.account_id)
            .bind(d.now)
            .bind(serde_json::to_string(&rows)?)
    };
    q.execute(&mut *tx).await?;
    Ok(())
}

/// PostgreSQL: the batch's change-log entries, with sequences from `first_seq` on.
async fn write_changes_pg(
    tx: &mut sqlx::AnyConnection,
    b: &Batch,
    d: &Decided,
    first_seq: i64,
    separable: bool,
) -> StoreResult<()> {
    let log = "INSERT INTO changes (account_id, seq, object_type, record_id, kind, props, source, source_id, actor_user_id, at, prior) SELECT $1, u.seq, $2, u.id, 'set', u.changes, $3, $4, $5, $6, u.prior FROM";
    let seq = |i: usize| first_seq + i as i64;
    let sql = if separable {
        format!("{log} unnest(CAST(string_to_array($7, ',') AS BIGINT[]), CAST(string_to_array($8, ',') AS BIGINT[]), string_to_array($9, chr(31)), string_to_array($10, chr(31))) AS u(id, seq, changes, prior)")
    } else {
        format!("{log} json_to_recordset(CAST($7 AS JSON)) AS u(id BIGINT, seq BIGINT, changes TEXT, prior TEXT)")
    };
    let mut q = sqlx::query(&sql)
        .bind(b.imp.account_id)
        .bind(&b.type_id)
        .bind(ChangeSource::Restore.as_str())
        .bind(b.imp.id.to_string())
        .bind(b.imp.created_by)
        .bind(d.now);
    if separable {
        q = q
            .bind(listed(d.writes.iter().map(|w| w.id)))
            .bind(listed((0..d.writes.len()).map(seq)))
            .bind(joined(d, |w| &w.changes))
            .bind(joined(d, |w| &w.prior));
    } else {
        let rows: Vec<serde_json::Value> = d
            .writes
            .iter()
            .enumerate()
            .map(|(i, w)| serde_json::json!({"id": w.id, "seq": seq(i), "changes": w.changes, "prior": w.prior}))
            .collect();
        q = q.bind(serde_json::to_string(&rows)?);
    }
    q.execute(&mut *tx).await?;
    Ok(())
}

/// The account's last change-log sequence; with `lock`, the counter's row stays locked until
/// the transaction ends.
async fn change_seq_pg(
    conn: &mut sqlx::AnyConnection,
    account: i64,
    lock: bool,
) -> StoreResult<i64> {
    if lock {
        sqlx::query("INSERT INTO counters (account_id, name, value) VALUES ($1, 'change', 0) ON CONFLICT (account_id, name) DO NOTHING")
            .bind(account)
            .execute(&mut *conn)
            .await?;
    }
    let sql = if lock {
        "SELECT value FROM counters WHERE account_id = $1 AND name = 'change' FOR UPDATE"
    } else {
        "SELECT value FROM counters WHERE account_id = $1 AND name = 'change'"
    };
    let v: Option<(i64,)> = sqlx::query_as(sql)
        .bind(account)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(v.map_or(0, |v| v.0))
}

/// PostgreSQL: what a batch's decisions depend on. For the newer changes the ids travel as an
/// array literal (`{1,2,3}`) and each one is looked up by index. Left to itself the planner may
/// read all changes since the plan (this restore's own among them) once per batch: `seq + 0`
/// keeps it from reading `seq > plan` off the primary key.
/// `seq` is the change log's last sequence, read in the same snapshot.
async fn read_inputs_pg(
    conn: &mut sqlx::AnyConnection,
    b: &Batch,
    seq: i64,
) -> StoreResult<Inputs> {
    let account = b.imp.account_id;
    // The batch's records with one range scan of the type's index (restore batches come in
    // ascending id order), fewer pages than a look-up per record.
    let wanted: HashSet<i64> = b.ids().into_iter().collect();
    let (lo, hi) = (
        wanted.iter().copied().min().unwrap_or(0),
        wanted.iter().copied().max().unwrap_or(-1),
    );
    let current: HashMap<i64, String> = sqlx::query_as(
        "SELECT id, props FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND id BETWEEN $3 AND $4",
    )
    .bind(account)
    .bind(&b.type_id)
    .bind(lo)
    .bind(hi)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .filter(|(id, _): &(i64, String)| wanted.contains(id))
    .collect();
    let (restored,): (i64,) =
        sqlx::query_as("SELECT updated_count FROM imports WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(b.imp.id)
            .fetch_one(&mut *conn)
            .await?;
    let newer: Vec<(i64, String, String)> = if !b.others_since_plan(seq, restored) {
        Vec::new()
    } else {
        let ids = format!(
            "{{{}}}",
            b.ids()
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        sqlx::query_as(
            "SELECT c.record_id, c.props, c.source FROM unnest(CAST($2 AS BIGINT[])) AS w(id) JOIN LATERAL (SELECT record_id, props, source, source_id, kind FROM changes WHERE account_id = $1 AND record_id = w.id AND seq + 0 > $3) c ON true WHERE c.kind = 'set' AND NOT (c.source = 'RESTORE' AND c.source_id = $4)",
        )
        .bind(account)
        .bind(&ids)
        .bind(b.spec.plan_seq)
        .bind(b.imp.id.to_string())
        .fetch_all(&mut *conn)
        .await?
    };
    let mut holders: HashMap<(usize, String), i64> = HashMap::new();
    for (k, wanted) in b.unique_wanted() {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT value, record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND value IN (SELECT json_array_elements_text(CAST($4 AS JSON)))",
        )
        .bind(account)
        .bind(&b.type_id)
        .bind(&b.spec.properties[k])
        .bind(serde_json::to_string(&wanted)?)
        .fetch_all(&mut *conn)
        .await?;
        for (value, record_id) in rows {
            holders.insert((k, value), record_id);
        }
    }
    // Records the batch names that are not there: erased, or merged into another, looked up
    // for all of them at once (a restore after a mass delete may miss most of a batch).
    let mut gone = HashMap::new();
    let missing: Vec<i64> = b
        .ids()
        .into_iter()
        .filter(|id| !current.contains_key(id))
        .collect();
    if !missing.is_empty() {
        let list = listed(missing.iter().copied());
        let erased: Vec<(String,)> = sqlx::query_as("SELECT value FROM erased WHERE account_id = $1 AND kind = 'record' AND object_type = $2 AND value = ANY(string_to_array($3, ','))")
            .bind(account)
            .bind(&b.type_id)
            .bind(&list)
            .fetch_all(&mut *conn)
            .await?;
        let merged: Vec<(String, i64)> = sqlx::query_as("SELECT value, record_id FROM unique_values WHERE account_id = $1 AND object_type = $2 AND property = $3 AND value = ANY(string_to_array($4, ','))")
            .bind(account)
            .bind(&b.type_id)
            .bind(kontor_domain::object_type::MERGED_IDS)
            .bind(&list)
            .fetch_all(&mut *conn)
            .await?;
        let erased: HashSet<String> = erased.into_iter().map(|(v,)| v).collect();
        let merged: HashMap<String, i64> = merged.into_iter().collect();
        for id in missing {
            let key = id.to_string();
            if erased.contains(&key) {
                gone.insert(id, Gone::Erased);
            } else if let Some(&into) = merged.get(&key) {
                gone.insert(id, Gone::MergedInto(into));
            }
        }
    }
    Ok(Inputs {
        current,
        rowids: HashMap::new(),
        newer,
        holders,
        gone,
    })
}
