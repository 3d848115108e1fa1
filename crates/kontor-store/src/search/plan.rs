//! From a search request to index look-ups: what each filter and `query` word can ask of
//! the index, which look-up starts each filter group, and the SQL for it.
//!
//! A group's terms are either **exact** (the index answers them as the matcher would:
//! comparisons of keys, `HAS_PROPERTY`, and their negations) or **finding** (a look-up that
//! finds every match and maybe more: token and `query` prefixes, values cut to the key's
//! length). A group whose terms are all exact is answered by SQL alone; otherwise the
//! records found are read and the matcher decides. A filter no index can help with (a
//! property whose index is being built, `NOT_CONTAINS_TOKEN`, a pattern without a word start)
//! leaves its group to the matcher too.

use super::index::id_list;
use crate::Dialect;
use kontor_domain::search::keys::{self, TYPED_END};
use kontor_domain::search::{Filter, Operator, SearchRequest};
use kontor_domain::PropertyType;
use std::collections::{HashMap, HashSet};

/// A condition on a property's key.
#[derive(Debug, Clone)]
pub(super) enum Cond {
    Eq(String),
    In(Vec<String>),
    Range {
        lo: Option<(String, bool)>,
        hi: Option<(String, bool)>,
    },
    Any,
}

/// A set of live records an index look-up gives.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// Every live record of the type.
    All,
    Value {
        prop: String,
        cond: Cond,
    },
    /// Records with a word of one of these text properties starting with `prefix` (the
    /// value's key for its first word, its tokens for the others), or with this id.
    Prefix {
        props: Vec<String>,
        prefix: String,
        id: Option<i64>,
    },
    /// These records (what intersecting other look-ups left, see `exec.rs`).
    Ids(Vec<i64>),
}

#[derive(Debug, Clone)]
pub(super) struct Term {
    pub source: Source,
    /// The look-up gives exactly the records that meet the term.
    pub exact: bool,
    /// The records that do not meet it (only for exact value terms).
    pub negated: bool,
}

#[derive(Debug, Clone, Default)]
pub(super) struct GroupPlan {
    pub terms: Vec<Term>,
    /// Some filter is left to the matcher.
    pub verify: bool,
    /// Some filter can match no record.
    pub never: bool,
}

/// The properties whose index is being built.
pub(super) struct Building(pub HashSet<String>);

impl Building {
    pub fn ready(&self, prop: &str) -> bool {
        !self.0.contains(prop)
    }
}

fn value(prop: &str, cond: Cond, exact: bool, negated: bool) -> Term {
    Term {
        source: Source::Value {
            prop: prop.to_string(),
            cond,
        },
        exact,
        negated,
    }
}

/// The terms of one filter, added to `g`.
fn filter_terms(f: &Filter, kind: PropertyType, g: &mut GroupPlan) {
    use Operator::*;
    let p = f.property.as_str();
    let v = f.value.as_deref().unwrap_or_default();
    let typed = !keys::is_textual(kind);
    match f.operator {
        HasProperty => g.terms.push(value(p, Cond::Any, true, false)),
        NotHasProperty => g.terms.push(value(p, Cond::Any, true, true)),
        Eq => match keys::filter_key(kind, v) {
            None => g.never = true,
            Some(k) => {
                g.verify |= !k.exact;
                g.terms.push(value(p, Cond::Eq(k.key), k.exact, false));
            }
        },
        Neq => match keys::filter_key(kind, v) {
            None => {}
            Some(k) if k.exact => g.terms.push(value(p, Cond::Eq(k.key), true, true)),
            Some(_) => g.verify = true,
        },
        In | NotIn => {
            let ks: Vec<_> = f
                .values
                .iter()
                .filter_map(|x| keys::filter_key(kind, x))
                .collect();
            let exact = ks.iter().all(|k| k.exact);
            let ks: Vec<String> = ks.into_iter().map(|k| k.key).collect();
            match (f.operator == In, ks.is_empty()) {
                (true, true) => g.never = true,
                (true, false) => {
                    g.verify |= !exact;
                    g.terms.push(value(p, Cond::In(ks), exact, false));
                }
                (false, true) => {}
                (false, false) if exact => g.terms.push(value(p, Cond::In(ks), true, true)),
                (false, false) => g.verify = true,
            }
        }
        Lt | Lte | Gt | Gte | Between => {
            let lo_hi = match f.operator {
                Lt | Lte => keys::filter_key(kind, v).map(|k| (None, Some(k))),
                Gt | Gte => keys::filter_key(kind, v).map(|k| (Some(k), None)),
                _ => keys::filter_key(kind, v)
                    .zip(keys::filter_key(
                        kind,
                        f.high_value.as_deref().unwrap_or_default(),
                    ))
                    .map(|(a, b)| (Some(a), Some(b))),
            };
            let Some((lo, hi)) = lo_hi else {
                g.never = true;
                return;
            };
            let exact = lo.as_ref().is_none_or(|k| k.exact) && hi.as_ref().is_none_or(|k| k.exact);
            // A cut key bounds the range inclusively: the values it stands for may lie on
            // either side of the filter's own.
            let strict = |op: Operator| exact && matches!(op, Lt | Gt);
            let lo = lo.map(|k| (k.key, !strict(f.operator)));
            let mut hi = hi.map(|k| (k.key, !strict(f.operator)));
            if typed && hi.is_none() {
                // Values of a number or date property that do not parse sort above all.
                hi = Some((TYPED_END.to_string(), false));
            }
            g.verify |= !exact;
            g.terms.push(value(p, Cond::Range { lo, hi }, exact, false));
        }
        ContainsToken => {
            g.verify = true;
            // Numbers and dates have no tokens: the matcher looks at them.
            if let (false, Some(prefix)) = (typed, keys::token_prefix(v)) {
                push_prefix(g, vec![p.to_string()], prefix, None, false);
            }
        }
        NotContainsToken => g.verify = true,
    }
}

/// A word prefix's term, added to `g`. A prefix too long to have a posting list that starts
/// with one (`keys::gram_within`) comes after a term of that gram: the same records and more,
/// whose list is read whole where the longer prefix's rows would be read one per record, and
/// which `exec.rs` narrows first (the group still requires both, so the answer is the same).
fn push_prefix(
    g: &mut GroupPlan,
    props: Vec<String>,
    prefix: String,
    id: Option<i64>,
    exact: bool,
) {
    if let Some(gram) = keys::gram_within(&prefix) {
        g.terms.push(Term {
            source: Source::Prefix {
                props: props.clone(),
                prefix: gram.to_string(),
                id,
            },
            exact: true,
            negated: false,
        });
    }
    g.terms.push(Term {
        source: Source::Prefix { props, prefix, id },
        exact,
        negated: false,
    });
}

/// The plan of every group (the `query`'s words join each), or none when the request has
/// neither filters nor a query.
pub(super) fn plan(
    req: &SearchRequest,
    kinds: &HashMap<String, PropertyType>,
    searchable: &[String],
    building: &Building,
) -> Vec<GroupPlan> {
    let mut query = GroupPlan::default();
    if let Some(q) = &req.query {
        let searchable: Vec<&String> = searchable
            .iter()
            .filter(|p| kinds.contains_key(p.as_str()))
            .collect();
        // Only text has tokens: a number or date among the searchable properties leaves the
        // query to the matcher.
        let indexed = searchable
            .iter()
            .all(|p| building.ready(p) && keys::is_textual(kinds[p.as_str()]));
        if indexed {
            for word in q.split_whitespace() {
                let (prefix, exact) = keys::query_prefix(word);
                let id = word.parse::<i64>().ok().filter(|i| i.to_string() == word);
                let props = searchable.iter().map(|p| p.to_string()).collect();
                push_prefix(&mut query, props, prefix, id, exact);
            }
        } else {
            query.verify = true;
        }
    }
    if req.filter_groups.is_empty() {
        return if req.query.is_some() {
            vec![query]
        } else {
            vec![]
        };
    }
    req.filter_groups
        .iter()
        .map(|filters| {
            let mut g = query.clone();
            for f in filters {
                let prop = f.property.as_str();
                if !building.ready(prop) {
                    g.verify = true;
                    continue;
                }
                filter_terms(f, kinds[prop], &mut g);
            }
            g
        })
        .collect()
}

/// SQL text with its arguments; `$1` is the account and `$2` the object type.
pub(super) struct Sql {
    pub args: Vec<Arg>,
    dialect: Dialect,
}

#[derive(Debug, Clone)]
pub(super) enum Arg {
    I(i64),
    S(String),
}

impl Sql {
    pub fn new(dialect: Dialect, account: i64, object_type: &str) -> Self {
        Self {
            args: vec![Arg::I(account), Arg::S(object_type.to_string())],
            dialect,
        }
    }

    /// A query's rows folded into one JSON array text (`NULL` when there are none): a long
    /// list costs one row to fetch, not one per item.
    pub fn json_array(&self, item: &str, from: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("SELECT json_group_array({item}) FROM {from}"),
            Dialect::Postgres => format!("SELECT CAST(json_agg({item}) AS TEXT) FROM {from}"),
        }
    }

    /// A pair as a JSON array, for [`Self::json_array`].
    pub fn json_pair(&self, a: &str, b: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("json_array({a}, {b})"),
            Dialect::Postgres => format!("json_build_array({a}, {b})"),
        }
    }

    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.arg(Arg::S(s.to_string()))
    }

    /// A text argument; its number.
    pub fn text_arg(&mut self, s: &str) -> usize {
        self.args.push(Arg::S(s.to_string()));
        self.args.len()
    }

    pub fn int_arg(&mut self, i: i64) -> String {
        self.arg(Arg::I(i))
    }

    pub fn text_param(&mut self, s: &str) -> String {
        self.text(s)
    }

    fn list(&mut self, items: &[String]) -> String {
        items
            .iter()
            .map(|s| self.text(s))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn cond(&mut self, col: &str, c: &Cond) -> String {
        match c {
            Cond::Eq(k) => format!(" AND {col} = {}", self.text(k)),
            Cond::In(ks) => format!(" AND {col} IN ({})", self.list(ks)),
            Cond::Range { lo, hi } => {
                let mut s = String::new();
                if let Some((k, incl)) = lo {
                    let op = if *incl { ">=" } else { ">" };
                    s += &format!(" AND {col} {op} {}", self.text(k));
                }
                if let Some((k, incl)) = hi {
                    let op = if *incl { "<=" } else { "<" };
                    s += &format!(" AND {col} {op} {}", self.text(k));
                }
                s
            }
            Cond::Any => String::new(),
        }
    }

    /// A query giving the source's record ids, as `record_id`.
    pub fn source(&mut self, s: &Source) -> String {
        self.source_with(s, " UNION ")
    }

    /// [`Self::source`], its ids perhaps repeated (cheaper, for a caller that removes them).
    pub fn source_repeating(&mut self, s: &Source) -> String {
        self.source_with(s, " UNION ALL ")
    }

    fn source_with(&mut self, s: &Source, union: &str) -> String {
        match s {
            Source::All => "SELECT id AS record_id FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0".into(),
            Source::Value { prop, cond } => {
                let p = self.text(prop);
                let c = self.cond("value_key", cond);
                format!("SELECT record_id FROM record_values WHERE account_id = $1 AND object_type = $2 AND property = {p}{c}")
            }
            Source::Prefix { props, prefix, id } => {
                let mut parts = Vec::new();
                let end = keys::prefix_end(prefix);
                for (table, col) in [("record_values", "value_key"), ("record_tokens", "token")] {
                    if props.is_empty() {
                        continue;
                    }
                    let ps = self.list(props);
                    let (lo, hi) = (self.text(prefix), self.text(&end));
                    parts.push(format!("SELECT record_id FROM {table} WHERE account_id = $1 AND object_type = $2 AND property IN ({ps}) AND {col} >= {lo} AND {col} < {hi}"));
                }
                if let Some(id) = id {
                    let i = self.arg(Arg::I(*id));
                    parts.push(format!("SELECT id AS record_id FROM records WHERE account_id = $1 AND object_type = $2 AND archived = 0 AND id = {i}"));
                }
                if parts.is_empty() {
                    // No property to look in: nothing is found.
                    return "SELECT id AS record_id FROM records WHERE 1 = 0".into();
                }
                parts.join(union)
            }
            Source::Ids(ids) => {
                let n = self.text_arg(&serde_json::to_string(ids).unwrap_or_default());
                id_list(self.dialect, n)
            }
        }
    }

    /// The posting-list blocks of a gram in any of these properties, as one value (`NULL`
    /// when there are none): each block after its `lo` and its length (see
    /// `grams::union_framed`). Hundreds of blocks cost one row to fetch, where a row each
    /// costs a hand-over from the database's thread each, and JSON with hex costs the
    /// database more than the blocks themselves.
    pub fn gram_blocks(&mut self, props: &[String], gram: &str) -> String {
        let ps = self.list(props);
        let g = self.text(gram);
        // SQLite's `||` and `group_concat` keep a blob's bytes, NULs included.
        let all = match self.dialect {
            Dialect::Sqlite => "CAST(group_concat(unhex(printf('%016x%08x', lo, length(ids))) || ids, X'') AS BLOB)",
            Dialect::Postgres => "string_agg(int8send(lo) || int4send(length(ids)) || ids, ''::bytea)",
        };
        format!("SELECT {all} FROM record_grams WHERE account_id = $1 AND object_type = $2 AND property IN ({ps}) AND gram = {g}")
    }

    /// Whether the term holds for the record `d.record_id` (an exact term: a value's key,
    /// or a word's prefix), as an SQL condition.
    pub fn probe(&mut self, t: &Term) -> String {
        let by_record = "account_id = $1 AND object_type = $2 AND record_id = d.record_id";
        // PostgreSQL would make an `EXISTS` a join, and its generic plan of a statement it has
        // prepared (a key's share of the rows unknown) a merge join reading every record with
        // the probed key: 12,000 rows for "lifecycle stage is customer" at 100,000 contacts,
        // where the plan means a look-up per found record. `OFFSET 0` keeps it a look-up.
        let own = match self.dialect {
            Dialect::Postgres => " OFFSET 0",
            Dialect::Sqlite => "",
        };
        match &t.source {
            Source::Value { prop, cond } => {
                let p = self.text(prop);
                let c = self.cond("value_key", cond);
                let not = if t.negated { "NOT " } else { "" };
                format!("{not}EXISTS (SELECT 1 FROM record_values WHERE {by_record} AND property = {p}{c}{own})")
            }
            Source::Prefix { props, prefix, id } => {
                let end = keys::prefix_end(prefix);
                let mut any = Vec::new();
                for (table, col) in [("record_values", "value_key"), ("record_tokens", "token")] {
                    let ps = self.list(props);
                    let (lo, hi) = (self.text(prefix), self.text(&end));
                    any.push(format!("EXISTS (SELECT 1 FROM {table} WHERE {by_record} AND property IN ({ps}) AND {col} >= {lo} AND {col} < {hi}{own})"));
                }
                if let Some(id) = id {
                    any.push(format!("d.record_id = {}", self.arg(Arg::I(*id))));
                }
                format!("({})", any.join(" OR "))
            }
            Source::All | Source::Ids(_) => unreachable!("only a driver"),
        }
    }
}
