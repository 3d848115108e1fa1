//! A property's keys in memory, for two uses:
//! - **sorting**: each record's key, so that sorting the few thousand records a search found
//!   costs a look-up each in memory, not a read of the index each (a B-tree descent on SQLite;
//!   an index scan started anew per record on PostgreSQL, several microseconds);
//! - **filtering**: each key's records in order, so that `EQ` and `IN` terms matching many
//!   records are intersected in memory (a few microseconds per thousand records) instead of
//!   read from the index (a row each).
//!
//! An entry holds a property's keys as of an index cursor and **epoch** (`index_cursors`): the
//! epoch changes whenever the index's rows change other than by following the change log (a
//! property's index built anew, or a property archived), and with the account's index itself
//! (made again in a cell it moves to). A search at cursor `c` of the same epoch uses an entry
//! after re-reading the keys of the records changed between the entry's cursor and `c`; those
//! changed past `c` are the search's delta, never looked up here and left out of every list it
//! reads, so an entry ahead of `c` serves too. An entry of another epoch, or further behind
//! than [`REFRESH_MAX`] entries, is made again.
//!
//! Entries are made in the background from one snapshot of the index (searches read the index
//! meanwhile), and take at most [`super::SearchTuning::sort_key_memory`] bytes together, the
//! least recently used going first.

use super::plan::Cond;
use crate::{Dialect, Store, StoreResult};
use futures_util::TryStreamExt;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An entry further behind a search's cursor than this many change-log entries is made again.
const REFRESH_MAX: i64 = 20_000;

/// How long an entry too large for the memory is not tried again: making one reads every
/// value of its property.
const REFUSED_FOR: Duration = Duration::from_secs(300);

/// Account, object type, property.
type EntryKey = (i64, String, String);

/// Where a search reads the index from: its epoch and cursor (see the module's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IndexAt {
    pub epoch: i64,
    pub cursor: i64,
}

/// Records' keys (none: no value).
type Keys = Vec<Option<Arc<str>>>;

/// A look-up's records in memory: the lists of the keys it matches (sorted, disjoint), shared
/// with the entry, so counting them or checking a few records costs no copy.
pub(super) struct Kept(Vec<Arc<[i64]>>);

impl Kept {
    /// A sorted list read from the index (`grams.rs`), to be intersected with those in
    /// memory.
    pub fn read(ids: Vec<i64>) -> Self {
        Self(vec![Arc::from(ids)])
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|l| l.len()).sum()
    }

    pub fn parts(&self) -> &[Arc<[i64]>] {
        &self.0
    }

    pub fn contains(&self, record: i64) -> bool {
        self.0.iter().any(|l| l.binary_search(&record).is_ok())
    }

    /// The records in order.
    pub fn to_vec(&self) -> Vec<i64> {
        match self.0.as_slice() {
            [one] => one.to_vec(),
            lists => {
                let mut all: Vec<i64> = lists.iter().flat_map(|l| l.iter().copied()).collect();
                all.sort_unstable();
                all
            }
        }
    }
}

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
    /// Entries made too large to keep, and when: not made again for [`REFUSED_FOR`].
    refused: HashMap<EntryKey, Instant>,
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
    /// The records of each of `values`.
    lists: Vec<List>,
    bytes: usize,
    used: u64,
}

/// The records with one key: a shared sorted list, and the changes to it since, folded in
/// when it is next read (a change costs a set insert, not a shift of a long list).
#[derive(Default)]
struct List {
    base: Arc<[i64]>,
    added: BTreeSet<i64>,
    removed: HashSet<i64>,
}

impl List {
    fn add(&mut self, record: i64) {
        if !self.removed.remove(&record) {
            self.added.insert(record);
        }
    }

    fn remove(&mut self, record: i64) {
        if !self.added.remove(&record) {
            self.removed.insert(record);
        }
    }

    /// The records, changes folded in.
    fn read(&mut self) -> Arc<[i64]> {
        if !self.added.is_empty() || !self.removed.is_empty() {
            let (removed, added) = (
                std::mem::take(&mut self.removed),
                std::mem::take(&mut self.added),
            );
            let kept = self.base.iter().copied().filter(|r| !removed.contains(r));
            self.base = merge(kept, added.into_iter()).into();
        }
        self.base.clone()
    }
}

/// Two ascending sequences as one.
fn merge(a: impl Iterator<Item = i64>, b: impl Iterator<Item = i64>) -> Vec<i64> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let mut out = Vec::new();
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x <= y => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return out,
        };
        out.extend(next);
    }
}

/// Bytes per record and per distinct key, about (hash tables and lists included).
const RECORD_BYTES: usize = 32;
const VALUE_BYTES: usize = 112;

impl Entry {
    fn new(epoch: i64, cursor: i64) -> Self {
        Entry {
            epoch,
            cursor,
            keys: HashMap::new(),
            values: Vec::new(),
            interned: HashMap::new(),
            lists: Vec::new(),
            bytes: 0,
            used: 0,
        }
    }

    fn set(&mut self, record: i64, key: Option<&str>) {
        let Some(key) = key else {
            if let Some(old) = self.keys.remove(&record) {
                self.lists[old as usize].remove(record);
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
                self.lists.push(List::default());
                self.bytes += VALUE_BYTES + key.len();
                at
            }
        };
        match self.keys.insert(record, at) {
            Some(old) if old == at => {}
            Some(old) => {
                self.lists[old as usize].remove(record);
                self.lists[at as usize].add(record);
            }
            None => {
                self.lists[at as usize].add(record);
                self.bytes += RECORD_BYTES;
            }
        }
    }

    /// Every record's key read in: the lists made at once, not by a change each.
    #[cfg(test)]
    fn fill(&mut self, rows: impl IntoIterator<Item = (i64, String)>) {
        let mut lists = Vec::new();
        for (record, key) in rows {
            self.load(&mut lists, record, &key);
        }
        self.seal(lists);
    }

    /// One record's key read in; its list is `lists`' until [`Self::seal`].
    fn load(&mut self, lists: &mut Vec<Vec<i64>>, record: i64, key: &str) {
        let at = match self.interned.get(key) {
            Some(&at) => at,
            None => {
                let at = self.values.len() as u32;
                self.bytes += VALUE_BYTES + key.len();
                let v: Arc<str> = Arc::from(key);
                self.values.push(v.clone());
                self.interned.insert(v, at);
                lists.push(Vec::new());
                at
            }
        };
        if self.keys.insert(record, at).is_none() {
            self.bytes += RECORD_BYTES;
        }
        lists[at as usize].push(record);
    }

    fn seal(&mut self, lists: Vec<Vec<i64>>) {
        self.lists = lists
            .into_iter()
            .map(|mut l| {
                l.sort_unstable();
                List {
                    base: l.into(),
                    ..List::default()
                }
            })
            .collect();
    }

    /// The lists of the records meeting `cond`, when it is one lists answer.
    fn lists_for(&mut self, cond: &Cond) -> Option<Vec<Arc<[i64]>>> {
        let wanted: Vec<&String> = match cond {
            Cond::Eq(k) => vec![k],
            Cond::In(ks) => ks.iter().collect(),
            Cond::Range { .. } | Cond::Any => return None,
        };
        // A key asked for twice (`IN` values of one number: `10`, `1e1`) gives its list once.
        let wanted: BTreeSet<&String> = wanted.into_iter().collect();
        let mut out = Vec::new();
        for k in wanted {
            if let Some(&at) = self.interned.get(k.as_str()) {
                out.push(self.lists[at as usize].read());
            }
        }
        Some(out)
    }
}

/// Where an entry stands for a search.
enum Probe<R> {
    /// Up to date: what was asked of it.
    Serves(R),
    /// Of the same epoch, behind the search's cursor by a few entries: from this cursor.
    Behind(i64),
    /// None that serves.
    Missing,
}

impl SortKeys {
    /// `ask` of the entry, if it serves a search at this epoch and cursor.
    fn probe<R>(
        &self,
        key: &EntryKey,
        epoch: i64,
        cursor: i64,
        ask: impl FnOnce(&mut Entry) -> R,
    ) -> Probe<R> {
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
        Probe::Serves(ask(e))
    }

    /// The keys of the records `ids`.
    fn keys(&self, key: &EntryKey, epoch: i64, cursor: i64, ids: &[i64]) -> Probe<Keys> {
        self.probe(key, epoch, cursor, |e| {
            ids.iter()
                .map(|id| e.keys.get(id).map(|&at| e.values[at as usize].clone()))
                .collect()
        })
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

    /// `false` when the entry is being made already, or was too large a short while ago.
    fn start_making(&self, key: &EntryKey) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.refused
            .get(key)
            .is_some_and(|at| at.elapsed() < REFUSED_FOR)
        {
            return false;
        }
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
            s.refused.retain(|_, at| at.elapsed() < REFUSED_FOR);
            s.refused.insert(key, Instant::now());
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
    /// Whether keys of `prop` in memory serve a search at this epoch and cursor; when
    /// none do, one is made (in the background, unless the tuning says at once).
    pub(super) async fn sort_keys_ready(
        &self,
        account: i64,
        object_type: &str,
        prop: &str,
        IndexAt { epoch, cursor }: IndexAt,
    ) -> bool {
        let budget = self.search_tuning.sort_key_memory;
        if budget == 0 {
            return false;
        }
        let key: EntryKey = (account, object_type.to_string(), prop.to_string());
        if !matches!(
            self.sort_keys.probe(&key, epoch, cursor, |_| ()),
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
                self.sort_keys.probe(&key, epoch, cursor, |_| ()),
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
        at: IndexAt,
        ids: &[i64],
    ) -> StoreResult<Option<Keys>> {
        let key: EntryKey = (account, object_type.to_string(), prop.to_string());
        self.in_memory(&key, at, |s, at| s.keys(&key, at.epoch, at.cursor, ids))
            .await
    }

    /// The records whose key of `prop` meets `cond` (an `EQ` or `IN`), from memory as of the
    /// search's `(epoch, cursor)`; `None` when no entry serves.
    pub(super) async fn cached_list(
        &self,
        account: i64,
        object_type: &str,
        prop: &str,
        at: IndexAt,
        cond: &Cond,
    ) -> StoreResult<Option<Kept>> {
        if !matches!(cond, Cond::Eq(_) | Cond::In(_)) {
            return Ok(None);
        }
        let key: EntryKey = (account, object_type.to_string(), prop.to_string());
        let lists = self
            .in_memory(&key, at, |s, at| {
                s.probe(&key, at.epoch, at.cursor, |e| e.lists_for(cond))
            })
            .await?;
        Ok(lists.flatten().map(Kept))
    }

    /// What `ask` gets of an entry serving the search's `(epoch, cursor)`, the entry brought
    /// forward first if it is a little behind; `None` when none serves.
    async fn in_memory<R>(
        &self,
        key: &EntryKey,
        at: IndexAt,
        mut ask: impl FnMut(&SortKeys, IndexAt) -> Probe<R>,
    ) -> StoreResult<Option<R>> {
        let IndexAt { epoch, cursor } = at;
        // Tries again after bringing the entry forward (another search may move it too).
        for _ in 0..3 {
            match ask(&self.sort_keys, at) {
                Probe::Serves(r) => return Ok(Some(r)),
                Probe::Behind(from) => {
                    let changed = self
                        .changed_keys(key.0, &key.1, &key.2, from, cursor)
                        .await?;
                    self.sort_keys.advance(key, epoch, (from, cursor), &changed);
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
            let mut lists = Vec::new();
            while let Some((record, key)) = rows.try_next().await? {
                entry.load(&mut lists, record, &key);
            }
            entry.seal(lists);
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
        e.fill(keys.iter().map(|(id, k)| (*id, k.to_string())));
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
        match s.keys(&key(p), epoch, cursor, ids) {
            Probe::Serves(k) => Some(k.into_iter().map(|k| k.map(|k| k.to_string())).collect()),
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
            s.keys(&key("city"), 7, 12, &[1]),
            Probe::Behind(10)
        ));
        assert!(matches!(s.keys(&key("city"), 8, 10, &[1]), Probe::Missing));
        assert!(matches!(
            s.keys(&key("city"), 7, 10 + REFRESH_MAX + 1, &[1]),
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
            s.keys(&key("city"), 7, 20, &[]),
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
        // One larger than the whole budget is not kept, nor made again soon.
        s.store(key("d"), Some(entry(1, 1, &big)), one / 2);
        assert!(keys_of(&s, "d", 1, 1, &[1]).is_none());
        assert!(!s.start_making(&key("d")));
        // Nor is anything when making it failed; the one it replaces goes.
        assert!(s.start_making(&key("a")));
        assert!(!s.start_making(&key("a")));
        s.store(key("a"), None, budget);
        assert!(keys_of(&s, "a", 1, 1, &[1]).is_none());
        assert!(s.start_making(&key("a")));
    }

    fn list_of(s: &SortKeys, p: &str, cursor: i64, cond: Cond) -> Option<Vec<i64>> {
        match s.probe(&key(p), 1, cursor, |e| e.lists_for(&cond)) {
            Probe::Serves(Some(lists)) => {
                let mut all: Vec<i64> = lists.iter().flat_map(|l| l.iter().copied()).collect();
                all.sort_unstable();
                Some(all)
            }
            _ => None,
        }
    }

    #[test]
    fn lists_follow_the_changes_brought_in() {
        let s = SortKeys::default();
        let keys = [(5, "b"), (1, "a"), (3, "b"), (2, "c"), (4, "a")];
        s.store(key("city"), Some(entry(1, 10, &keys)), 1 << 20);
        let eq = |k: &str| Cond::Eq(k.into());
        assert_eq!(list_of(&s, "city", 10, eq("a")), Some(vec![1, 4]));
        assert_eq!(list_of(&s, "city", 10, eq("b")), Some(vec![3, 5]));
        assert_eq!(list_of(&s, "city", 10, eq("zz")), Some(vec![]));
        let both = Cond::In(vec!["c".into(), "a".into(), "c".into()]);
        assert_eq!(list_of(&s, "city", 10, both.clone()), Some(vec![1, 2, 4]));
        // Ranges are the index's.
        let range = Cond::Range {
            lo: Some(("a".into(), true)),
            hi: None,
        };
        assert_eq!(list_of(&s, "city", 10, range), None);
        // Moved, cleared, added, set to a new key, moved and moved back.
        let changed = [
            (1, Some("b".to_string())),
            (5, None),
            (6, Some("a".to_string())),
            (7, Some("d".to_string())),
            (2, Some("a".to_string())),
            (2, Some("c".to_string())),
        ];
        s.advance(&key("city"), 1, (10, 11), &changed);
        assert_eq!(list_of(&s, "city", 11, eq("a")), Some(vec![4, 6]));
        assert_eq!(list_of(&s, "city", 11, eq("b")), Some(vec![1, 3]));
        assert_eq!(list_of(&s, "city", 11, eq("c")), Some(vec![2]));
        assert_eq!(list_of(&s, "city", 11, eq("d")), Some(vec![7]));
        // Read again after more changes: folded in once more.
        s.advance(
            &key("city"),
            1,
            (11, 12),
            &[(4, None), (0, Some("a".into()))],
        );
        assert_eq!(list_of(&s, "city", 12, eq("a")), Some(vec![0, 6]));
        assert_eq!(list_of(&s, "city", 12, both), Some(vec![0, 2, 6]));
    }
}
