//! A consistent snapshot of an account's records, streamed to a sink on a blocking thread.
//!
//! The snapshot is the database's own: a SQLite read transaction (WAL mode lets writers go on
//! while it is open) or a PostgreSQL `REPEATABLE READ` transaction. Inside it the export reads
//! the last change-log sequence, the object types and their properties, and the records, so
//! all of them describe the same instant: a write is either wholly in the snapshot (its
//! sequence is at most the snapshot's) or not at all. Writers never wait for the export.
//!
//! Rows leave the database as stored (`id`, the properties document) and are split into
//! columns by the sink with [`for_each_prop`]. SQLite is read through `rusqlite`, PostgreSQL
//! through `COPY ... TO STDOUT`: both stream at the engine's own speed.

use crate::objects::ObjectType;
use crate::schemas::CustomSchema;
use crate::{Dialect, Store};
use anyhow::{bail, Context, Result};
use kontor_domain::time::now_ms;
use kontor_domain::{PropertyDef, BUILTIN_OBJECTS};
use std::borrow::Cow;

/// One object type in a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotType {
    pub object_type: ObjectType,
    /// Its live properties: `hs_object_id` first, then by name.
    pub properties: Vec<PropertyDef>,
    /// Non-archived records.
    pub rows: i64,
}

#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    /// The last change-log sequence number included.
    pub seq: i64,
    /// When the snapshot was taken (epoch ms).
    pub at: i64,
    /// Contacts, companies, deals, tickets, products, calls, conversations, tasks and the
    /// custom objects, in that order.
    pub types: Vec<SnapshotType>,
}

/// Receives a snapshot: `info` once, then each type's rows in ascending id (types in order,
/// each closed by `end_type`), then `finish`. Runs on a blocking thread.
pub trait SnapshotSink: Send + 'static {
    type Output: Send + 'static;
    fn info(&mut self, info: &SnapshotInfo) -> Result<()>;
    /// Whether the sink wants the rows of this type (asked after `info`); a type it skips
    /// still gets its `end_type`.
    fn wants(&self, _t: &SnapshotType) -> bool {
        true
    }
    fn row(&mut self, type_index: usize, id: i64, props: &str) -> Result<()>;
    fn end_type(&mut self, type_index: usize) -> Result<()>;
    fn finish(self) -> Result<Self::Output>;
}

const CATALOG_TYPES: &str =
    "SELECT def FROM schemas WHERE account_id = $1 AND archived = 0 ORDER BY created_at, object_type";
const CATALOG_PROPS: &str =
    "SELECT object_type, def FROM properties WHERE account_id = $1 AND archived = 0";
const COUNT_ROWS: &str = "SELECT object_type, COUNT(*) FROM records WHERE account_id = $1 AND archived = 0 GROUP BY object_type";
const LAST_SEQ: &str = "SELECT COALESCE(MAX(seq), 0) FROM changes WHERE account_id = $1";

fn catalog(
    schemas: Vec<String>,
    props: Vec<(String, String)>,
    counts: Vec<(String, i64)>,
    seq: i64,
) -> Result<SnapshotInfo> {
    let mut types: Vec<ObjectType> = BUILTIN_OBJECTS
        .iter()
        .filter(|o| o.backed_up)
        .map(ObjectType::builtin)
        .collect();
    for def in schemas {
        let s: CustomSchema = serde_json::from_str(&def)?;
        types.push(ObjectType::custom(&s));
    }
    let mut out = Vec::with_capacity(types.len());
    for ot in types {
        let mut properties: Vec<PropertyDef> = props
            .iter()
            .filter(|(t, _)| *t == ot.type_id)
            .map(|(_, d)| serde_json::from_str(d))
            .collect::<Result<_, _>>()?;
        properties.sort_by(|a, b| {
            (a.name != "hs_object_id", &a.name).cmp(&(b.name != "hs_object_id", &b.name))
        });
        if properties.first().map(|p| p.name.as_str()) != Some("hs_object_id") {
            bail!("{} has no hs_object_id property", ot.name);
        }
        let rows = counts
            .iter()
            .find(|(t, _)| *t == ot.type_id)
            .map_or(0, |(_, n)| *n);
        out.push(SnapshotType {
            object_type: ot,
            properties,
            rows,
        });
    }
    Ok(SnapshotInfo {
        seq,
        at: now_ms(),
        types: out,
    })
}

fn records_sql(account: i64, type_id: &str) -> String {
    // COPY takes no parameters; type ids are `0-1` or `2-123`, checked here all the same.
    debug_assert!(type_id.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
    let type_id: String = type_id
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    format!("SELECT id, props FROM records WHERE account_id = {account} AND object_type = '{type_id}' AND archived = 0 ORDER BY id")
}

impl Store {
    /// Streams one consistent snapshot of `account` into `sink`.
    pub async fn export_snapshot<S: SnapshotSink>(
        &self,
        account: i64,
        sink: S,
    ) -> Result<S::Output> {
        match self.dialect {
            Dialect::Sqlite => {
                let path = sqlite_path(&self.url)?;
                tokio::task::spawn_blocking(move || export_sqlite(&path, account, sink))
                    .await
                    .context("snapshot thread")?
            }
            Dialect::Postgres => export_postgres(&self.url, account, sink).await,
        }
    }
}

pub(crate) fn sqlite_path(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("not a SQLite URL")?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.starts_with(':') {
        bail!("an in-memory SQLite database cannot be snapshotted");
    }
    Ok(path.to_string())
}

fn export_sqlite<S: SnapshotSink>(path: &str, account: i64, mut sink: S) -> Result<S::Output> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {path}"))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // A deferred transaction's first read fixes the snapshot; every read below sees it.
    conn.execute_batch("BEGIN")?;
    let seq: i64 = conn.query_row(&LAST_SEQ.replace("$1", "?1"), [account], |r| r.get(0))?;
    let schemas = conn
        .prepare(&CATALOG_TYPES.replace("$1", "?1"))?
        .query_map([account], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let props = conn
        .prepare(&CATALOG_PROPS.replace("$1", "?1"))?
        .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let counts = conn
        .prepare(&COUNT_ROWS.replace("$1", "?1"))?
        .query_map([account], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let info = catalog(schemas, props, counts, seq)?;
    sink.info(&info)?;
    for (i, t) in info.types.iter().enumerate() {
        if t.rows > 0 && sink.wants(t) {
            let mut stmt = conn.prepare(&records_sql(account, &t.object_type.type_id))?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                let props = r.get_ref(1)?.as_str()?;
                sink.row(i, id, props)?;
            }
        }
        sink.end_type(i)?;
    }
    conn.execute_batch("COMMIT")?;
    sink.finish()
}

enum Msg {
    /// Whole rows of `COPY` text output.
    Rows(usize, Vec<u8>),
    End(usize),
}

async fn export_postgres<S: SnapshotSink>(
    url: &str,
    account: i64,
    mut sink: S,
) -> Result<S::Output> {
    use futures_util::StreamExt;
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (seq,): (i64,) = sqlx::query_as(LAST_SEQ)
        .bind(account)
        .fetch_one(&mut *tx)
        .await?;
    let schemas: Vec<(String,)> = sqlx::query_as(CATALOG_TYPES)
        .bind(account)
        .fetch_all(&mut *tx)
        .await?;
    let props: Vec<(String, String)> = sqlx::query_as(CATALOG_PROPS)
        .bind(account)
        .fetch_all(&mut *tx)
        .await?;
    let counts: Vec<(String, i64)> = sqlx::query_as(COUNT_ROWS)
        .bind(account)
        .fetch_all(&mut *tx)
        .await?;
    let info = catalog(
        schemas.into_iter().map(|s| s.0).collect(),
        props,
        counts,
        seq,
    )?;
    sink.info(&info)?;
    let wanted: Vec<bool> = info.types.iter().map(|t| sink.wants(t)).collect();
    let (tx_rows, mut rx_rows) = tokio::sync::mpsc::channel::<Msg>(8);
    let consumer = tokio::task::spawn_blocking(move || -> Result<S::Output> {
        while let Some(msg) = rx_rows.blocking_recv() {
            match msg {
                Msg::End(i) => sink.end_type(i)?,
                Msg::Rows(i, block) => {
                    for line in block.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                        let tab = memchr::memchr(b'\t', line).context("COPY row without a tab")?;
                        let id: i64 = std::str::from_utf8(&line[..tab])?.parse()?;
                        let props = unescape_copy(&line[tab + 1..])?;
                        sink.row(i, id, &props)?;
                    }
                }
            }
        }
        sink.finish()
    });
    let types: Vec<(String, i64)> = info
        .types
        .iter()
        .zip(&wanted)
        .map(|(t, w)| (t.object_type.type_id.clone(), if *w { t.rows } else { 0 }))
        .collect();
    let send = |m: Msg| {
        let tx_rows = tx_rows.clone();
        async move {
            tx_rows
                .send(m)
                .await
                .map_err(|_| anyhow::anyhow!("snapshot consumer stopped"))
        }
    };
    let producer = async {
        for (i, (type_id, rows)) in types.iter().enumerate() {
            if *rows > 0 {
                let sql = format!("COPY ({}) TO STDOUT", records_sql(account, type_id));
                let mut stream = tx.copy_out_raw(&sql).await?;
                let mut block = Vec::with_capacity(1 << 20);
                while let Some(chunk) = stream.next().await {
                    block.extend_from_slice(&chunk?);
                    if block.len() >= 1 << 20 && block.ends_with(b"\n") {
                        send(Msg::Rows(
                            i,
                            std::mem::replace(&mut block, Vec::with_capacity(1 << 20)),
                        ))
                        .await?;
                    }
                }
                if !block.is_empty() {
                    send(Msg::Rows(i, block)).await?;
                }
            }
            send(Msg::End(i)).await?;
        }
        anyhow::Ok(())
    };
    let produced = producer.await;
    drop(tx_rows);
    let consumed = consumer.await.context("snapshot thread")?;
    produced?;
    tx.commit().await?;
    consumed
}

/// Undoes `COPY` text-format escaping (only backslash sequences; the stored document has no
/// raw control characters, JSON escapes them).
pub(crate) fn unescape_copy(field: &[u8]) -> Result<Cow<'_, str>> {
    if memchr::memchr(b'\\', field).is_none() {
        return Ok(Cow::Borrowed(std::str::from_utf8(field)?));
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b == b'\\' && i + 1 < field.len() {
            out.push(match field[i + 1] {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 8,
                b'f' => 12,
                b'v' => 11,
                other => other,
            });
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(Cow::Owned(String::from_utf8(out)?))
}

/// Calls `f` with each property of a stored properties document (a JSON object of strings).
/// The compact form the store writes is read without building a JSON tree; anything else falls
/// back to `serde_json`, in which case `f` may see a name twice: the later call wins.
pub fn for_each_prop<'a>(
    json: &'a str,
    mut f: impl FnMut(Cow<'a, str>, Cow<'a, str>),
) -> Result<(), serde_json::Error> {
    if fast_props(json, &mut f).is_some() {
        return Ok(());
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)?;
    for (k, v) in map {
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => f(Cow::Owned(k), Cow::Owned(s)),
            other => f(Cow::Owned(k), Cow::Owned(other.to_string())),
        }
    }
    Ok(())
}

/// `None` when `json` is not in the compact form (the caller then parses it fully).
fn fast_props<'a>(json: &'a str, f: &mut impl FnMut(Cow<'a, str>, Cow<'a, str>)) -> Option<()> {
    let b = json.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut i = 1;
    if b.get(i) == Some(&b'}') {
        return (i + 1 == b.len()).then_some(());
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (kend, kesc) = string_end(b, i + 1)?;
        if kesc {
            return None;
        }
        let key = &json[i + 1..kend];
        i = kend + 1;
        if b.get(i) != Some(&b':') || b.get(i + 1) != Some(&b'"') {
            return None;
        }
        i += 1;
        let (vend, vesc) = string_end(b, i + 1)?;
        let value = if vesc {
            Cow::Owned(serde_json::from_str::<String>(&json[i..=vend]).ok()?)
        } else {
            Cow::Borrowed(&json[i + 1..vend])
        };
        f(Cow::Borrowed(key), value);
        i = vend + 1;
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') if i + 1 == b.len() => return Some(()),
            _ => return None,
        }
    }
}

/// The index of the quote closing a JSON string whose content starts at `from`, and whether
/// the string holds escapes.
fn string_end(b: &[u8], mut from: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', b.get(from..)?)?;
        if b[at] == b'"' {
            return Some((at, escaped));
        }
        escaped = true;
        from = at + 2;
    }
}

/// Rewrites a stored properties document: `set` holds new values (`None` removes the
/// property), sorted by name. Properties not in `set` keep their bytes as stored, so only the
/// new values are encoded. The compact, name-ordered form the store writes is spliced without
/// parsing; anything else goes through `serde_json`.
pub(crate) fn splice_props(doc: &str, set: &[(&str, Option<&str>)]) -> serde_json::Result<String> {
    if let Some(out) = splice_fast(doc, set) {
        return Ok(out);
    }
    let mut map: std::collections::BTreeMap<String, serde_json::Value> = serde_json::from_str(doc)?;
    for (k, v) in set {
        match v {
            Some(v) => map.insert(k.to_string(), serde_json::Value::String(v.to_string())),
            None => map.remove(*k),
        };
    }
    serde_json::to_string(&map)
}

fn splice_fast(doc: &str, set: &[(&str, Option<&str>)]) -> Option<String> {
    fn quoted(out: &mut String, s: &str) {
        if s.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20) {
            // Writing a JSON string into a String cannot fail.
            out.push_str(&serde_json::to_string(s).unwrap_or_default());
        } else {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
    }
    fn emit(out: &mut String, first: &mut bool, k: &str, v: &str) {
        if !std::mem::take(first) {
            out.push(',');
        }
        quoted(out, k);
        out.push(':');
        quoted(out, v);
    }
    let b = doc.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut out = String::with_capacity(doc.len() + 64);
    out.push('{');
    let mut first = true;
    let mut j = 0;
    let mut i = 1;
    let mut last_key: &str = "";
    if b.get(i) != Some(&b'}') {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let start = i;
            let (kend, kesc) = string_end(b, i + 1)?;
            let key = &doc[i + 1..kend];
            if kesc || key <= last_key && !last_key.is_empty() {
                return None;
            }
            last_key = key;
            i = kend + 1;
            if b.get(i) != Some(&b':') || b.get(i + 1) != Some(&b'"') {
                return None;
            }
            let (vend, _) = string_end(b, i + 2)?;
            let pair = &doc[start..=vend];
            i = vend + 1;
            while j < set.len() && set[j].0 < key {
                if let Some(v) = set[j].1 {
                    emit(&mut out, &mut first, set[j].0, v);
                }
                j += 1;
            }
            if j < set.len() && set[j].0 == key {
                if let Some(v) = set[j].1 {
                    emit(&mut out, &mut first, key, v);
                }
                j += 1;
            } else {
                if !std::mem::take(&mut first) {
                    out.push(',');
                }
                out.push_str(pair);
            }
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') if i + 1 == b.len() => break,
                _ => return None,
            }
        }
    } else if i + 1 != b.len() {
        return None;
    }
    for (k, v) in &set[j..] {
        if let Some(v) = v {
            emit(&mut out, &mut first, k, v);
        }
    }
    out.push('}');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn splices_like_a_map_would() {
        let doc = r#"{"a":"1","city":"K\u00f6ln \"x\"","m":"2","z":"3"}"#;
        let set = [
            ("b", Some("new")),
            ("city", Some("Bonn")),
            ("m", None),
            ("zz", Some("q\"uote")),
        ];
        let got: BTreeMap<String, String> =
            serde_json::from_str(&super::splice_props(doc, &set).unwrap()).unwrap();
        let mut want: BTreeMap<String, String> = serde_json::from_str(doc).unwrap();
        want.insert("b".into(), "new".into());
        want.insert("city".into(), "Bonn".into());
        want.remove("m");
        want.insert("zz".into(), "q\"uote".into());
        assert_eq!(got, want);
        // Unchanged properties keep their bytes; other forms go through serde_json.
        assert!(super::splice_props(doc, &[]).unwrap() == doc);
        let spaced = r#"{ "b": "2", "a": "1" }"#;
        let got: BTreeMap<String, String> =
            serde_json::from_str(&super::splice_props(spaced, &[("a", None)]).unwrap()).unwrap();
        assert_eq!(got, BTreeMap::from([("b".to_string(), "2".to_string())]));
        assert_eq!(
            super::splice_props("{}", &[("a", Some("1"))]).unwrap(),
            r#"{"a":"1"}"#
        );
    }

    fn collect(json: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for_each_prop(json, |k, v| {
            out.insert(k.to_string(), v.into_owned());
        })
        .unwrap();
        out
    }

    #[test]
    fn reads_the_compact_form_and_anything_else() {
        assert!(collect("{}").is_empty());
        let m = collect(r#"{"a":"1","b":"x\"y\\z\n","c":""}"#);
        assert_eq!(m["b"], "x\"y\\z\n");
        assert_eq!(m["c"], "");
        let m = collect(r#"{ "a" : "1", "n": null, "k": 5 }"#);
        assert_eq!(m.len(), 2);
        assert_eq!(m["k"], "5");
        assert!(for_each_prop("{\"a\":", |_, _| {}).is_err());
    }

    #[test]
    fn unescapes_copy_text() {
        assert_eq!(
            unescape_copy(br#"{"a":"x\\"y"}"#).unwrap(),
            r#"{"a":"x\"y"}"#
        );
        assert_eq!(unescape_copy(b"plain").unwrap(), "plain");
    }

    proptest! {
        #[test]
        fn agrees_with_serde_json(m in proptest::collection::btree_map("[a-z_\"\\\\]{1,8}", "\\PC{0,12}", 0..10)) {
            let json = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(collect(&json), m);
        }

        #[test]
        fn splice_agrees_with_a_map(
            m in proptest::collection::btree_map("[a-e\"]{1,3}", "\\PC{0,8}", 0..8),
            set in proptest::collection::btree_map("[a-e\"]{1,3}", proptest::option::of("\\PC{0,8}"), 0..5),
        ) {
            let json = serde_json::to_string(&m).unwrap();
            let pairs: Vec<(&str, Option<&str>)> =
                set.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
            let mut want = m.clone();
            for (k, v) in &set {
                match v {
                    Some(v) => want.insert(k.clone(), v.clone()),
                    None => want.remove(k),
                };
            }
            let got: BTreeMap<String, String> =
                serde_json::from_str(&splice_props(&json, &pairs).unwrap()).unwrap();
            prop_assert_eq!(got, want);
        }
    }
}
