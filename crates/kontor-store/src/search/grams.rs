//! Posting lists of word prefixes (`record_grams`): for each property and gram (a prefix of
//! a key or token of up to 8 characters, past 4 without a digit, see
//! `kontor_domain::search::keys::grams`), the records that have it, in blocks of up to
//! [`MAX_IDS`] ids a row.
//!
//! A `query` word such as a common first name finds tens of thousands of records at a
//! million contacts. As index rows that is one row per record and property; as posting
//! lists it is one row per 128 to 256 records, so reading both words' lists and
//! intersecting them costs a few hundred rows. A block's ids are kept as varint distances
//! (a byte an id when dense), and a change rewrites one block. A rare gram is one short row,
//! as an index row would be.
//!
//! A change goes to the block with the greatest `lo` at or before it (else the first); a
//! block past [`MAX_IDS`] splits, an empty one goes, and a block's `lo` is always its
//! smallest id. Like the other index rows, grams are written by the indexer and by builds,
//! from the difference between a record's rows before and after (`index.rs`).

use super::index::{dialect, execute_in_chunks};
use crate::{Dialect, StoreResult};
use std::collections::{BTreeMap, HashMap};

/// A block past this many ids is split, into blocks of [`SPLIT`].
const MAX_IDS: usize = 256;
const SPLIT: usize = 128;
/// Keys read or written per statement.
const CHUNK: usize = 1_000;

/// A gram's key: property and gram.
type GramKey = (String, String);

/// A block's ids as stored: each as its distance from the one before (the first from the
/// block's `lo`, its smallest), in LEB128 varints, so a dense list costs a byte an id.
fn encode(lo: i64, ids: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.len() + 4);
    let mut prev = lo;
    for &id in ids {
        let mut d = (id - prev) as u64;
        prev = id;
        loop {
            let b = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }
    out
}

/// Appends a stored block's ids to `out`, in order.
fn decode(lo: i64, bytes: &[u8], out: &mut Vec<i64>) {
    let (mut prev, mut d, mut shift) = (lo, 0u64, 0);
    for &b in bytes {
        d |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            prev += d as i64;
            out.push(prev);
            (d, shift) = (0, 0);
        } else {
            shift += 7;
        }
    }
}

/// Bytes before each block in the blocks of a gram fetched as one value (see
/// `plan::Sql::gram_blocks`): its `lo` (8 bytes) and its length (4), big-endian.
const FRAME: usize = 12;

/// [`union`] of blocks fetched as one value, each after its frame ([`FRAME`]): hundreds of
/// blocks cost one row to fetch.
pub(super) fn union_framed(mut bytes: &[u8]) -> StoreResult<Vec<i64>> {
    let be = |b: &[u8]| b.iter().fold(0i64, |a, &x| (a << 8) | i64::from(x));
    let mut rows = Vec::new();
    while !bytes.is_empty() {
        let cut =
            || <serde_json::Error as serde::de::Error>::custom("a posting-list block is cut short");
        let head = bytes.get(..FRAME).ok_or_else(cut)?;
        let (lo, n) = (be(&head[..8]), be(&head[8..]) as usize);
        let ids = bytes.get(FRAME..FRAME + n).ok_or_else(cut)?;
        rows.push((lo, ids));
        bytes = &bytes[FRAME + n..];
    }
    Ok(union(rows))
}

/// The union of stored blocks `(lo, ids)` as sorted ids: the rows of one gram over several
/// properties, in any order.
pub(super) fn union<B: AsRef<[u8]>>(rows: Vec<(i64, B)>) -> Vec<i64> {
    let mut out = Vec::new();
    for (lo, ids) in &rows {
        decode(*lo, ids.as_ref(), &mut out);
    }
    // Each property's blocks are sorted runs: the stable sort merges runs.
    out.sort();
    out.dedup();
    out
}

/// Grams to add and remove, gathered over a batch and flushed in its transaction.
#[derive(Default)]
pub(crate) struct GramWrite {
    /// Per key, each record's net count (a gram removed and added back is no change).
    changes: HashMap<GramKey, BTreeMap<i64, i32>>,
}

/// A key's blocks as read: each block's stored `lo` and its ids.
type Blocks = Vec<(i64, Vec<i64>)>;

impl GramWrite {
    /// Record `id` gains (`by` 1) or loses (-1) these grams of a property.
    pub(crate) fn change(
        &mut self,
        id: i64,
        prop: &str,
        grams: &std::collections::BTreeSet<String>,
        by: i32,
    ) {
        for g in grams {
            *self
                .changes
                .entry((prop.to_string(), g.clone()))
                .or_default()
                .entry(id)
                .or_default() += by;
        }
    }

    /// Reads the blocks the changes fall in, applies them and writes the blocks back (an
    /// empty one goes, a full one splits). Keys are read and written in order, so two
    /// writers of the same rows (on PostgreSQL, serialised anyway by the indexer's lock, see
    /// `build.rs`) meet in the same order.
    pub(crate) async fn flush(
        self,
        tx: &mut sqlx::AnyConnection,
        account: i64,
        object_type: &str,
    ) -> StoreResult<()> {
        let mut changed: Vec<(GramKey, Vec<(i64, bool)>)> = self
            .changes
            .into_iter()
            .map(|(k, ids)| {
                let ids: Vec<(i64, bool)> = ids
                    .into_iter()
                    .filter(|(_, n)| *n != 0)
                    .map(|(id, n)| (id, n > 0))
                    .collect();
                (k, ids)
            })
            .filter(|(_, ids)| !ids.is_empty())
            .collect();
        changed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let d = dialect(tx);
        for chunk in changed.chunks(CHUNK) {
            // Each key's blocks from the one holding its first changed record to its last.
            let ranges: Vec<(&str, &str, i64, i64)> = chunk
                .iter()
                .map(|((p, g), ids)| (p.as_str(), g.as_str(), ids[0].0, ids[ids.len() - 1].0))
                .collect();
            let stored: Vec<(String, String, i64, Vec<u8>)> = sqlx::query_as(&format!(
                "SELECT g.property, g.gram, g.lo, g.ids FROM ({}) k CROSS JOIN record_grams g WHERE g.account_id = $1 AND g.object_type = $2 AND g.property = k.p AND g.gram = k.g AND g.lo <= k.hi AND g.lo >= COALESCE((SELECT MAX(h.lo) FROM record_grams h WHERE h.account_id = $1 AND h.object_type = $2 AND h.property = k.p AND h.gram = k.g AND h.lo <= k.lo), k.lo) ORDER BY g.property, g.gram, g.lo",
                ranges_of(d)
            ))
            .bind(account)
            .bind(object_type)
            .bind(serde_json::to_string(&ranges)?)
            .fetch_all(&mut *tx)
            .await?;
            let mut blocks: HashMap<GramKey, Blocks> = HashMap::new();
            for (p, g, lo, bytes) in stored {
                let mut ids = Vec::new();
                decode(lo, &bytes, &mut ids);
                blocks.entry((p, g)).or_default().push((lo, ids));
            }
            let (mut gone, mut put) = (Vec::new(), Vec::new());
            for (key, ids) in chunk {
                let mut held = blocks.remove(key).unwrap_or_default();
                let fresh = apply(&mut held, ids);
                let held = held.into_iter().map(|(lo, ids)| (Some(lo), ids));
                for (old, ids) in held.chain(fresh) {
                    let pieces: Vec<&[i64]> = match ids.len() > MAX_IDS {
                        true => ids.chunks(SPLIT).collect(),
                        false => vec![&ids[..]],
                    };
                    let first = pieces.first().and_then(|p| p.first()).copied();
                    if let Some(old) = old.filter(|&o| Some(o) != first) {
                        gone.push((key.0.as_str(), key.1.as_str(), old));
                    }
                    for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
                        let lo = piece[0];
                        put.push((
                            key.0.as_str(),
                            key.1.as_str(),
                            lo,
                            hex::encode(encode(lo, piece)),
                        ));
                    }
                }
            }
            let delete = format!(
                "DELETE FROM record_grams WHERE account_id = $1 AND object_type = $2 AND (property, gram, lo) IN (SELECT k.p, k.g, k.lo FROM ({}) k)",
                keys_of(d)
            );
            execute_in_chunks(tx, &delete, (account, object_type), &gone).await?;
            // SQLite's `OR REPLACE` needs no statement journal, where an upsert does.
            let insert = match d {
                Dialect::Sqlite => "INSERT OR REPLACE INTO record_grams (account_id, object_type, property, gram, lo, ids) SELECT $1, $2, j.value ->> 0, j.value ->> 1, j.value ->> 2, unhex(j.value ->> 3) FROM json_each($3) j",
                Dialect::Postgres => "INSERT INTO record_grams (account_id, object_type, property, gram, lo, ids) SELECT $1, $2, e ->> 0, e ->> 1, CAST(e ->> 2 AS BIGINT), decode(e ->> 3, 'hex') FROM json_array_elements(CAST($3 AS JSON)) e ON CONFLICT (account_id, object_type, property, gram, lo) DO UPDATE SET ids = excluded.ids",
            };
            execute_in_chunks(tx, insert, (account, object_type), &put).await?;
        }
        Ok(())
    }
}

/// Applies a key's changes (record, added) to its blocks as read (`Some(lo)` each, in
/// order); returns the new blocks (`None`) that records before every block make.
fn apply(held: &mut [(i64, Vec<i64>)], ids: &[(i64, bool)]) -> Option<(Option<i64>, Vec<i64>)> {
    let mut fresh = Vec::new();
    for &(id, added) in ids {
        // The last block starting at or before the record, else the first.
        let at = held.partition_point(|(lo, _)| *lo <= id);
        let block = match (at, held.is_empty()) {
            (_, true) => None,
            (0, false) => Some(0),
            (n, false) => Some(n - 1),
        };
        match (block, added) {
            (Some(b), true) => {
                let ids = &mut held[b].1;
                if let Err(i) = ids.binary_search(&id) {
                    ids.insert(i, id);
                }
            }
            (Some(b), false) => {
                let ids = &mut held[b].1;
                if let Ok(i) = ids.binary_search(&id) {
                    ids.remove(i);
                }
            }
            (None, true) => fresh.push(id),
            (None, false) => {}
        }
    }
    // `held` keeps its stored keys; the caller rekeys.
    (!fresh.is_empty()).then_some((None, fresh))
}

/// The keys of `$3`, a JSON array of `[property, gram, lo]`, as a query of columns `p`, `g`,
/// `lo`. SQLite seeks a key by all its columns only when their types are certain.
fn keys_of(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "SELECT CAST(j.value ->> 0 AS TEXT) AS p, CAST(j.value ->> 1 AS TEXT) AS g, CAST(j.value ->> 2 AS INTEGER) AS lo FROM json_each($3) j",
        Dialect::Postgres => "SELECT e ->> 0 AS p, e ->> 1 AS g, CAST(e ->> 2 AS BIGINT) AS lo FROM json_array_elements(CAST($3 AS JSON)) e",
    }
}

/// [`keys_of`] with a fourth column, `hi`.
fn ranges_of(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "SELECT CAST(j.value ->> 0 AS TEXT) AS p, CAST(j.value ->> 1 AS TEXT) AS g, CAST(j.value ->> 2 AS INTEGER) AS lo, CAST(j.value ->> 3 AS INTEGER) AS hi FROM json_each($3) j",
        Dialect::Postgres => "SELECT e ->> 0 AS p, e ->> 1 AS g, CAST(e ->> 2 AS BIGINT) AS lo, CAST(e ->> 3 AS BIGINT) AS hi FROM json_array_elements(CAST($3 AS JSON)) e",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_ids() {
        let ids: Vec<i64> = vec![5, 6, 7, 300, 1 << 40, (1 << 40) + 1];
        let mut out = Vec::new();
        decode(5, &encode(5, &ids), &mut out);
        assert_eq!(out, ids);
        assert_eq!(
            encode(1, &(1..=100).collect::<Vec<_>>()).len(),
            100,
            "a byte an id when dense"
        );
        // Two properties' blocks of one gram, in any order, ids in both.
        let rows = vec![
            (10, encode(10, &[10, 20, 30])),
            (1, encode(1, &[1, 2, 3])),
            (2, encode(2, &[2, 20, 40])),
        ];
        let mut framed = Vec::new();
        for (lo, ids) in &rows {
            framed.extend_from_slice(&i64::to_be_bytes(*lo));
            framed.extend_from_slice(&(ids.len() as u32).to_be_bytes());
            framed.extend_from_slice(ids);
        }
        assert_eq!(union(rows), vec![1, 2, 3, 10, 20, 30, 40]);
        assert_eq!(
            union_framed(&framed).unwrap(),
            vec![1, 2, 3, 10, 20, 30, 40]
        );
        assert_eq!(union_framed(&[]).unwrap(), Vec::<i64>::new());
        assert!(
            union_framed(&framed[..framed.len() - 1]).is_err(),
            "cut short"
        );
    }

    #[test]
    fn changes_fall_in_the_block_before_them() {
        let mut held = vec![(10, vec![10, 15]), (20, vec![20, 30])];
        let fresh = apply(
            &mut held,
            &[
                (5, true),
                (12, true),
                (25, true),
                (30, false),
                (99, true),
                (7, false),
            ],
        );
        assert_eq!(
            held,
            vec![(10, vec![5, 10, 12, 15]), (20, vec![20, 25, 99])]
        );
        assert_eq!(fresh, None);
        let mut none = vec![];
        assert_eq!(
            apply(&mut none, &[(3, true), (4, true), (5, false)]),
            Some((None, vec![3, 4]))
        );
    }
}
