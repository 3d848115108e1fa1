//! Sort keys in memory: for a property that searches sort by, each record's key, so that
//! sorting the few thousand records a search found costs a look-up each in memory, not a read
//! of the index each (a B-tree descent on SQLite; an index scan started anew per record on
//! PostgreSQL, several microseconds).
//!
//! An entry holds a property's keys as of an index cursor and **epoch** (`index_cursors`): the
//! epoch changes whenever the index's rows change other than by following the change log (a
//! property's index built anew, or a property archived), and with the account's index itself
//! (made again in a cell it moves to). A search at cursor `c` of the same epoch uses an entry
//! after re-reading the keys of the records changed between the entry's cursor and `c`; those
//! changed past `c` are the search's delta and never looked up here, so an entry ahead of `c`
//! serves too. An entry of another epoch, or further behind than [`REFRESH_MAX`] entries, is
//! made again.
//!
//! Entries are made in the background from one snapshot of the index (searches read the keys
//! from the index meanwhile), and take at most [`super::SearchTuning::sort_key_memory`] bytes
//! together, the least recently used going first.

use crate::{Dialect, Store, StoreResult};
use futures_util::TryStreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// An entry further behind a search's cursor than this many change-log entries is made again.
const REFRESH_MAX: i64 = 20_000;

/// Account, object type, property.
type EntryKey = (i64, String, String);

/// The entries of one database.
#[derive(Default)]
pub(crate) struct SortKeys {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<EntryKey, Entry>,
    /// Entries being made in the background.
    making: HashSet<EntryKey>,
    /// Bytes the entries take, about.
    bytes: usize,
    tick: u64,
}

struct Entry {
    epoch: i64,
    cursor: i64,
    /// Record → its key, an index into `values` (keys repeat: names, stages, dates).
    keys: HashMap<i64, u32>,
    values: Vec<Arc<str>>,
    interned: HashMap<Arc<str>, u32>,
    bytes: usize,
    used: u64,
}

/// Bytes per record and per distinct key, about (hash tables included).
const RECORD_BYTES: usize = 24;
const VALUE_BYTES: usize = 64;

impl Entry {
    fn new(epoch: i64, cursor: i64) -> Self {
        Entry {
            epoch,
            cursor,
            keys: HashMap::new(),
            values: Vec::new(),
            interned: HashMap::new(),
            bytes: 0,
            used: 0,
        }
    }

    fn set(&mut self, record: i64, key: Option<&str>) {
        let Some(key) = key else {
            if self.keys.remove(&record).is_some() {
                self.bytes -= RECORD_BYTES;
            }
            return;
        };
        let at = match self.interned.get(key) {
            Some(&at) => at,
            None => {
                let v: Arc<str> = Arc::from(key);
                let at = self.values.len() as u32;
                self.values.push(v.clone());
                self.interned.insert(v, at);
                self.bytes += VALUE_BYTES + key.len();
                at
            }
        };
        if self.keys.insert(record, at).is_none() {
            self.bytes += RECORD_BYTES;
        }
    }
}

/// Where an entry stands for a search.
enum Probe {
    /// Up to date: the keys of the records asked for.
    Keys(Vec<Option<Arc<str>>>),
    /// Of the same epoch, behind the search's cursor by a few entries: from this cursor.
    Behind(i64),
    /// None that serves.
    Missing,
}

impl SortKeys {
    fn probe(&self, key: &EntryKey, epoch: i64, cursor: i64, ids: &[i64]) -> Probe {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.tick += 1;
        let tick = s.tick;
        let Some(e) = s.entries.get_mut(key) else {
            return Probe::Missing;
        };
        if e.epoch != epoch || cursor - e.cursor > REFRESH_MAX {
            return Probe::Missing;
        }
        if e.cursor < cursor {
            return Probe::Behind(e.cursor);
        }
        e.used = tick;
        Probe::Keys(
            ids.iter()
                .map(|id| e.keys.get(id).map(|&at| e.values[at as usize].clone()))
                .collect(),
        )
    }

    /// Brings an entry from cursor `from` to `to` with the current keys of the records changed
    /// between them; nothing if it moved meanwhile.
    fn advance(
        &self,
        key: &EntryKey,
        epoch: i64,
        (from, to): (i64, i64),
        changed: &[(i64, Option<String>)],
    ) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = s.entries.get_mut(key) else {
            return;
        };
        if e.epoch != epoch || e.cursor != from {
            return;
        }
        let before = e.bytes;
        for (record, k) in changed {
            e.set(*record, k.as_deref());
        }
        e.cursor = to;
        let after = e.bytes;
        s.bytes = s.bytes + after - before;
    }

    /// `false` when the entry is being made already.
    fn start_making(&self, key: &EntryKey) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.making.insert(key.clone())
    }

    /// Stores a made entry (if it fits), the least recently used others going to make room.
    fn store(&self, key: EntryKey, entry: Option<Entry>, budget: usize) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.making.remove(&key);
        if let Some(old) = s.entries.remove(&key) {
            s.bytes -= old.bytes;
        }
        let Some(mut e) = entry else {
            return;
        };
        if e.bytes > budget {
            return;
        }
        while s.bytes + e.bytes > budget {
            let Some(lru) = s
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = s.entries.remove(&lru) {
                s.bytes -= old.bytes;
            }
        }
        s.tick += 1;
        e.used = s.tick;
        s.bytes += e.bytes;
        s.entries.insert(key, e);
    }
}

impl Store {
    /// Whether sort keys of `prop` in memory serve a search at this `(epoch, cursor)`; when
    /// none do, one is made (in the background, unless the tuning says at once).
    pub(super) async fn sort_keys_ready(
        &self,
        account: i64,
        object_type: &str,
        prop: &str,
        (epoch, cursor): (i64, i64),
    ) -> bool {
        let budget = self.search_tuning.sort_key_memory;
        if budget == 0 {
            return false;
        }
        let key: EntryKey = (account, object_type.to_string(), prop.to_string());
        if !matches!(
            self.sort_keys.probe(&key, epoch, cursor, &[]),
            Probe::Missing
        ) {
            return true;
        }
        if !self.sort_keys.start_making(&key) {
            return false;
        }
        if self.search_tuning.sort_keys_at_once {
            let made = self.make_sort_keys(&key).await;
            self.sort_keys
                .store(key.clone(), made.ok().flatten(), budget);
            return !matches!(
                self.sort_keys.probe(&key, epoch, cursor, &[]),
                Probe::Missing
            );
        }
        let store = self.clone();
        tokio::spawn(async move {
            let made = store.make_sort_keys(&key).await;
            if let Err(e) = &made {
                tracing::warn!(account = key.0, property = %key.2, error = %e, "keeping a property's sort keys in memory");
            }
            store.sort_keys.store(key, made.ok().flatten(), budget);
        });
        false
    }

    /// The keys of `prop` of the records `ids` (none: no value) from memory, as of the
    /// search's `(epoch, cursor)`; `None` when no entry serves.
    pub(super) async fn cached_sort_keys(
        &self,
        account: i64,
        object_type: &str,
        prop: &str,
        (epoch, cursor): (i64, i64),
        ids: &[i64],
    ) -> StoreResult<Option<Vec<Option<Arc<str>>>>> {
        let key: EntryKey = (account, object_type.to_string(), prop.to_string());
        // Tries again after bringing the entry forward (another search may move it too).
        for _ in 0..3 {
            match self.sort_keys.probe(&key, epoch, cursor, ids) {
                Probe::Keys(keys) => return Ok(Some(keys)),
                Probe::Behind(from) => {
                    let changed = self
                        .changed_keys(account, object_type, prop, from, cursor)
                        .await?;
                    self.sort_keys
                        .advance(&key, epoch, (from, cursor), &changed);
                }
                Probe::Missing => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The current keys of `prop` of the records changed in `(from, to]`.
    async fn changed_keys(
        &self,
        account: i64,
        object_type: &str,
        prop: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(i64, Option<String>)>> {
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT c.record_id, (SELECT s.value_key FROM record_values s WHERE s.account_id = $1 AND s.object_type = $2 AND s.record_id = c.record_id AND s.property = $3) FROM (SELECT DISTINCT record_id FROM changes WHERE account_id = $1 AND object_type = $2 AND seq > $4 AND seq <= $5) c",
        )
        .bind(account)
        .bind(object_type)
        .bind(prop)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// An entry from one snapshot of the index: its cursor and epoch, and every key of the
    /// property. None while a build of the property is under way (its rows are partial; the
    /// build's end changes the epoch).
    async fn make_sort_keys(
        &self,
        (account, object_type, prop): &EntryKey,
    ) -> StoreResult<Option<Entry>> {
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let (epoch, cursor, building): (Option<i64>, Option<i64>, i64) = sqlx::query_as(
            "SELECT (SELECT epoch FROM index_cursors WHERE account_id = $1), (SELECT seq FROM index_cursors WHERE account_id = $1), (SELECT COUNT(*) FROM index_builds WHERE account_id = $1 AND object_type = $2 AND property = $3)",
        )
        .bind(account)
        .bind(object_type)
        .bind(prop)
        .fetch_one(&mut *tx)
        .await?;
        if building > 0 {
            return Ok(None);
        }
        let mut entry = Entry::new(epoch.unwrap_or(0), cursor.unwrap_or(0));
        {
            let mut rows = sqlx::query_as::<_, (i64, String)>(
                "SELECT record_id, value_key FROM record_values WHERE account_id = $1 AND object_type = $2 AND property = $3",
            )
            .bind(account)
            .bind(object_type)
            .bind(prop)
            .fetch(&mut *tx);
            while let Some((record, key)) = rows.try_next().await? {
                entry.set(record, Some(&key));
            }
        }
        tx.commit().await?;
        Ok(Some(entry))
    }

    /// Inside a write transaction: the account's index rows change other than by following
    /// the change log, so what was read of them before is stale (see `sort_keys`).
    pub(crate) async fn new_index_epoch(
        conn: &mut sqlx::AnyConnection,
        account: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE index_cursors SET epoch = $1 WHERE account_id = $2")
            .bind(rand::random::<i64>())
            .bind(account)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(epoch: i64, cursor: i64, keys: &[(i64, &str)]) -> Entry {
        let mut e = Entry::new(epoch, cursor);
        for (id, k) in keys {
            e.set(*id, Some(k));
        }
        e
    }

    fn key(p: &str) -> EntryKey {
        (1, "0-1".into(), p.into())
    }

    fn keys_of(
        s: &SortKeys,
        p: &str,
        epoch: i64,
        cursor: i64,
        ids: &[i64],
    ) -> Option<Vec<Option<String>>> {
        match s.probe(&key(p), epoch, cursor, ids) {
            Probe::Keys(k) => Some(k.into_iter().map(|k| k.map(|k| k.to_string())).collect()),
            _ => None,
        }
    }

    #[test]
    fn an_entry_serves_its_epoch_from_its_cursor_on() {
        let s = SortKeys::default();
        s.store(
            key("city"),
            Some(entry(7, 10, &[(1, "b"), (2, "a"), (3, "b")])),
            1 << 20,
        );
        assert_eq!(
            keys_of(&s, "city", 7, 10, &[3, 4, 2]),
            Some(vec![Some("b".into()), None, Some("a".into())])
        );
        // A search at an earlier cursor: the records changed since are its delta.
        assert!(keys_of(&s, "city", 7, 5, &[1]).is_some());
        assert!(matches!(
            s.probe(&key("city"), 7, 12, &[1]),
            Probe::Behind(10)
        ));
        assert!(matches!(s.probe(&key("city"), 8, 10, &[1]), Probe::Missing));
        assert!(matches!(
            s.probe(&key("city"), 7, 10 + REFRESH_MAX + 1, &[1]),
            Probe::Missing
        ));
        // Brought forward: a key changed, one cleared, one set.
        let changed = [
            (1, Some("c".to_string())),
            (2, None),
            (4, Some("a".to_string())),
        ];
        s.advance(&key("city"), 7, (10, 12), &changed);
        assert_eq!(
            keys_of(&s, "city", 7, 12, &[1, 2, 3, 4]),
            Some(vec![
                Some("c".into()),
                None,
                Some("b".into()),
                Some("a".into())
            ])
        );
        // Only from where it stands.
        s.advance(&key("city"), 7, (10, 20), &[(3, None)]);
        assert!(matches!(
            s.probe(&key("city"), 7, 20, &[]),
            Probe::Behind(12)
        ));
    }

    #[test]
    fn memory_is_bounded_the_least_recently_used_going_first() {
        let s = SortKeys::default();
        let big: Vec<(i64, String)> = (0..100).map(|i| (i, format!("key {i}"))).collect();
        let big: Vec<(i64, &str)> = big.iter().map(|(i, k)| (*i, k.as_str())).collect();
        let one = entry(1, 1, &big).bytes;
        let budget = one * 2 + one / 2;
        s.store(key("a"), Some(entry(1, 1, &big)), budget);
        s.store(key("b"), Some(entry(1, 1, &big)), budget);
        assert!(keys_of(&s, "a", 1, 1, &[1]).is_some());
        s.store(key("c"), Some(entry(1, 1, &big)), budget);
        assert!(
            keys_of(&s, "b", 1, 1, &[1]).is_none(),
            "b was used least recently"
        );
        assert!(keys_of(&s, "a", 1, 1, &[1]).is_some());
        assert!(keys_of(&s, "c", 1, 1, &[1]).is_some());
        assert!(s.state.lock().unwrap().bytes <= budget);
        // One larger than the whole budget is not kept.
        s.store(key("d"), Some(entry(1, 1, &big)), one / 2);
        assert!(keys_of(&s, "d", 1, 1, &[1]).is_none());
        // Nor is anything when making it failed; the one it replaces goes.
        assert!(s.start_making(&key("a")));
        assert!(!s.start_making(&key("a")));
        s.store(key("a"), None, budget);
        assert!(keys_of(&s, "a", 1, 1, &[1]).is_none());
        assert!(s.start_making(&key("a")));
    }
}
