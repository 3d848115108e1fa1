//! A restore batch: its rows, what was read for them, and what is decided to write.

use super::*;

/// A batch read and decided, waiting to be written.
pub struct PreparedBatch {
    pub(super) batch: Batch,
    pub(super) decided: Decided,
    /// The change log's last sequence when the batch was read.
    pub(super) snap: i64,
}

impl std::fmt::Debug for PreparedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedBatch")
            .field("first_line", &self.batch.first_line)
            .field("records", &self.batch.items.len())
            .field("snap", &self.snap)
            .finish()
    }
}

/// The change-log sequences a restore has written so far (the last few batches' ranges).
#[derive(Debug, Clone, Default)]
pub struct OwnChanges {
    ranges: Vec<(i64, i64)>,
}

impl OwnChanges {
    pub(crate) fn push(&mut self, range: (i64, i64)) {
        // A batch is read at most one commit before it is written: a few ranges suffice.
        if self.ranges.len() == 8 {
            self.ranges.remove(0);
        }
        self.ranges.push(range);
    }

    /// Whether decisions read at change-log sequence `snap` still hold at `now`: nothing
    /// entered the change log since, or only this restore's own entries, for other records
    /// (batches never share a record). With a unique property, the restore's own entries
    /// also count: an earlier batch may have taken or freed a value this one wants.
    pub(crate) fn still_valid(&self, b: &Batch, snap: i64, now: i64) -> bool {
        self.only_ours(b.unique.iter().any(|u| *u), snap, now)
    }

    fn only_ours(&self, unique: bool, snap: i64, now: i64) -> bool {
        if now == snap {
            return true;
        }
        if now < snap || unique {
            return false;
        }
        let covered: i64 = self
            .ranges
            .iter()
            .map(|&(lo, hi)| (hi.min(now) - lo.max(snap + 1) + 1).max(0))
            .sum();
        covered == now - snap
    }
}

/// What a batch's decisions depend on.
pub(crate) struct Inputs {
    /// The live records' documents.
    pub current: HashMap<i64, String>,
    /// SQLite: the live records' rowids.
    pub rowids: HashMap<i64, i64>,
    /// The change-log entries after the plan: record, changed properties, source.
    pub newer: Vec<(i64, String, String)>,
    /// The holders of the unique values the batch puts back.
    pub holders: HashMap<(usize, String), i64>,
    /// Records of the batch that are gone for a reason a restore must respect.
    pub gone: HashMap<i64, Gone>,
}

/// Why a record of a restore is no longer there, beyond a plain delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gone {
    /// Erased by a GDPR delete: never restored, and its backed-up values are not kept either
    /// (not even in the restore's error rows).
    Erased,
    /// Merged into another record.
    MergedInto(i64),
}

/// One batch of a restore, owned so that it can move to a blocking thread.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub imp: Import,
    pub job_id: i64,
    pub owner: String,
    pub type_id: String,
    pub singular: String,
    pub last_modified: String,
    pub spec: RestoreSpec,
    pub unique: Vec<bool>,
    pub items: Vec<RestoreItem>,
    pub first_line: i64,
    pub rows_done: i64,
}

/// A record's new state, as the batch writes it.
pub(crate) struct Write {
    pub id: i64,
    /// SQLite: where the record was read (its rowid), to update it without the key lookup.
    pub rowid: Option<i64>,
    /// The whole properties document.
    pub doc: String,
    /// The change-log entry: changed properties, and the values they replaced.
    pub changes: String,
    pub prior: String,
}

/// What a batch does, decided from what the database holds.
pub(crate) struct Decided {
    pub now: i64,
    pub writes: Vec<Write>,
    /// Unique-value index moves: record, property position, new value (normalized key).
    pub unique_moves: Vec<(i64, usize, Option<String>)>,
    pub errors: Vec<Rejected>,
    pub out: BatchOutcome,
}

fn unique_key(v: &str) -> String {
    v.trim().to_lowercase()
}

impl Batch {
    pub(crate) fn ids(&self) -> Vec<i64> {
        self.items.iter().map(|i| i.id).collect()
    }

    /// The unique values the batch puts back, per property position.
    pub(crate) fn unique_wanted(&self) -> Vec<(usize, Vec<String>)> {
        (0..self.spec.properties.len())
            .filter(|k| self.unique.get(*k).copied().unwrap_or(false))
            .map(|k| {
                let wanted = self
                    .items
                    .iter()
                    .filter_map(|i| i.target.get(k).cloned().flatten())
                    .map(|v| unique_key(&v))
                    .collect();
                (k, wanted)
            })
            .collect()
    }

    /// Whether anything but this restore may have entered the change log since the plan, seen
    /// at change-log sequence `seq` when the restore had written `restored` entries (its
    /// import's `updated_count`, committed with them). Each sequence is taken by exactly one
    /// entry, so when the sequences since the plan are all the restore's own, nobody else
    /// changed a value and the per-record look-ups for newer changes are skipped. An overwrite
    /// does not look at newer changes at all.
    pub(crate) fn others_since_plan(&self, seq: i64, restored: i64) -> bool {
        !self.spec.overwrite_newer && seq - self.spec.plan_seq != restored
    }

    /// Decides each record: changes (with conflicts left alone), or why it is not restored.
    pub(crate) fn decide(&self, inputs: Inputs, now: i64) -> StoreResult<Decided> {
        let Inputs {
            current,
            rowids,
            newer,
            holders,
            gone,
        } = inputs;
        let spec = &self.spec;
        let now_iso = iso(now);
        let mut changed_after: HashMap<(i64, usize), &str> = HashMap::new();
        for (id, props, source) in &newer {
            let props: BTreeMap<String, Value> = serde_json::from_str(props)?;
            for (k, name) in spec.properties.iter().enumerate() {
                if props.contains_key(name) {
                    changed_after.insert((*id, k), source);
                }
            }
        }
        let mut out = BatchOutcome::default();
        let mut errors: Vec<Rejected> = Vec::new();
        let mut writes = Vec::new();
        let mut unique_moves = Vec::new();
        let mut claimed: HashSet<(usize, String)> = HashSet::new();
        let data = |item: &RestoreItem| -> Vec<String> {
            std::iter::once(item.id.to_string())
                .chain(item.target.iter().map(|v| v.clone().unwrap_or_default()))
                .collect()
        };
        for (n, item) in self.items.iter().enumerate() {
            let line = self.first_line + n as i64;
            let Some(doc) = current.get(&item.id) else {
                let (message, row) = match gone.get(&item.id) {
                    Some(Gone::Erased) => (
                        format!("{} {} was erased by a GDPR delete; it is not restored, and its values are not kept", self.singular, item.id),
                        vec![item.id.to_string()],
                    ),
                    Some(Gone::MergedInto(into)) => (
                        format!("{} {} was merged into {into} after the backup; it was not restored", self.singular, item.id),
                        data(item),
                    ),
                    None => (
                        format!("{} {} no longer exists (deleted after the backup); it was not restored: bring it back from the recycle bin, or with an import that gives its record ID", self.singular, item.id),
                        data(item),
                    ),
                };
                errors.push((
                    line,
                    Some(item.id),
                    RowError::new("OBJECT_NOT_FOUND", message),
                    row,
                ));
                continue;
            };
            // The restored properties' present values, borrowed from the document.
            let mut present: Vec<Option<std::borrow::Cow<str>>> = vec![None; spec.properties.len()];
            crate::export::for_each_prop(doc, |k, v| {
                if let Some(at) = spec.properties.iter().position(|p| *p == *k) {
                    present[at] = Some(v);
                }
            })?;
            // Borrowed from the item and the document: a record costs three allocations, the
            // new document and its two change-log texts.
            let mut changes: BTreeMap<&str, Option<&str>> = BTreeMap::new();
            let mut prior: BTreeMap<&str, Option<&str>> = BTreeMap::new();
            let mut conflicts = Vec::new();
            for (k, name) in spec.properties.iter().enumerate() {
                if item.skip.contains(&k) {
                    continue;
                }
                let target = item.target.get(k).and_then(|v| v.as_deref());
                let now_value = present[k].as_deref();
                if now_value == target {
                    continue;
                }
                let moved = item
                    .expected
                    .as_ref()
                    .is_some_and(|e| e.get(k).and_then(|v| v.as_deref()) != now_value);
                let after = changed_after.get(&(item.id, k));
                if !spec.overwrite_newer && (moved || after.is_some()) {
                    let by = after.map(|s| format!(" (by {s})")).unwrap_or_default();
                    conflicts.push(format!(
                        "{name} was changed after the plan was reviewed{by}; it is now {:?} and was left as it is",
                        now_value.unwrap_or("")
                    ));
                    continue;
                }
                changes.insert(name, target);
                prior.insert(name, now_value);
            }
            // A unique value now held by another record: the record is left as it is.
            let mut taken = None;
            for (k, name) in spec.properties.iter().enumerate() {
                if !self.unique.get(k).copied().unwrap_or(false) {
                    continue;
                }
                if let Some(Some(v)) = changes.get(name.as_str()) {
                    let key = (k, unique_key(v));
                    let other = holders.get(&key).is_some_and(|h| *h != item.id);
                    if other || claimed.contains(&key) {
                        taken = Some((name.clone(), v.to_string(), holders.get(&key).copied()));
                    }
                }
            }
            if let Some((name, v, holder)) = taken {
                let mut e = RowError::new(
                    "DUPLICATE_VALUE",
                    format!(
                        "{name} {v:?} is used by {} {} now; the property requires unique values, so this record was not restored",
                        self.singular,
                        holder.map_or_else(|| "another record".into(), |h| h.to_string())
                    ),
                );
                e.property = Some(name);
                e.invalid_value = Some(v);
                errors.push((line, Some(item.id), e, data(item)));
                continue;
            }
            if !conflicts.is_empty() {
                out.conflicts += 1;
                errors.push((
                    line,
                    Some(item.id),
                    RowError::new("CONFLICT", conflicts.join("; ")),
                    data(item),
                ));
            }
            if changes.is_empty() {
                if conflicts.is_empty() {
                    out.unchanged += 1;
                }
                continue;
            }
            for (k, name) in spec.properties.iter().enumerate() {
                if self.unique.get(k).copied().unwrap_or(false) {
                    if let Some(v) = changes.get(name.as_str()) {
                        let key = v.map(unique_key);
                        if let Some(key) = &key {
                            claimed.insert((k, key.clone()));
                        }
                        unique_moves.push((item.id, k, key));
                    }
                }
            }
            changes.insert(&self.last_modified, Some(&now_iso));
            // `changes` is ordered by name, as the splice needs.
            let set: Vec<(&str, Option<&str>)> = changes.iter().map(|(k, v)| (*k, *v)).collect();
            let doc = crate::export::splice_props(doc, &set)?;
            out.updated += 1;
            writes.push(Write {
                id: item.id,
                rowid: rowids.get(&item.id).copied(),
                doc,
                changes: serde_json::to_string(&changes)?,
                prior: serde_json::to_string(&prior)?,
            });
        }
        out.errors = errors.len() as i64 - out.conflicts;
        Ok(Decided {
            now,
            writes,
            unique_moves,
            errors,
            out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::OwnChanges;

    #[test]
    fn decisions_hold_while_only_the_restore_wrote() {
        let mut own = OwnChanges::default();
        assert!(own.only_ours(false, 10, 10), "nothing written since");
        assert!(!own.only_ours(false, 10, 11), "someone else wrote seq 11");
        own.push((11, 20));
        assert!(own.only_ours(false, 10, 20), "only the restore's batch");
        assert!(
            !own.only_ours(true, 10, 20),
            "a unique property: own writes count"
        );
        assert!(!own.only_ours(false, 10, 21), "seq 21 is someone else's");
        own.push((22, 30));
        assert!(
            !own.only_ours(false, 10, 30),
            "seq 21 lies between the restore's batches"
        );
        assert!(own.only_ours(false, 21, 30));
        assert!(!own.only_ours(false, 12, 11), "a sequence never goes back");
    }
}
