//! The CRM search request (`POST /crm/v3/objects/{type}/search`): parsing and matching.
//!
//! Parsing takes untyped JSON because the official clients disagree on types (`sorts` as
//! strings or objects, `after` as a string or a number, filter values as any scalar).

use crate::property::PropertyType;
use crate::time;
use crate::value::as_number;
use serde_json::Value;
use std::cmp::Ordering;

pub mod keys;
pub use keys::fold;

pub const MAX_LIMIT: usize = 200;
pub const MAX_RESULTS: usize = 10_000;
pub const MAX_GROUPS: usize = 5;
pub const MAX_FILTERS_PER_GROUP: usize = 10;
pub const MAX_FILTERS: usize = 25;
/// HubSpot applies one sort rule; more are refused rather than silently dropped.
pub const MAX_SORTS: usize = 1;
/// Values of one `IN` / `NOT_IN` filter.
pub const MAX_VALUES: usize = 100;
/// Characters of `query`, and the words of it that are matched.
pub const MAX_QUERY_CHARS: usize = 3_000;
pub const MAX_QUERY_WORDS: usize = 20;
/// Characters of one filter value.
pub const MAX_VALUE_CHARS: usize = 65_536;
/// The fields of a search request: any other is refused (it might have narrowed the answer).
const FIELDS: &[&str] = &[
    "filterGroups",
    "filters",
    "sorts",
    "query",
    "properties",
    "limit",
    "after",
];
/// Names in `properties`.
pub const MAX_PROPERTIES: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    HasProperty,
    NotHasProperty,
    ContainsToken,
    NotContainsToken,
}

impl Operator {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EQ" => Self::Eq,
            "NEQ" => Self::Neq,
            "LT" => Self::Lt,
            "LTE" => Self::Lte,
            "GT" => Self::Gt,
            "GTE" => Self::Gte,
            "BETWEEN" => Self::Between,
            "IN" => Self::In,
            "NOT_IN" => Self::NotIn,
            "HAS_PROPERTY" => Self::HasProperty,
            "NOT_HAS_PROPERTY" => Self::NotHasProperty,
            "CONTAINS_TOKEN" => Self::ContainsToken,
            "NOT_CONTAINS_TOKEN" => Self::NotContainsToken,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub property: String,
    pub operator: Operator,
    pub value: Option<String>,
    pub high_value: Option<String>,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub property: String,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// OR of groups; each group is an AND of filters.
    pub filter_groups: Vec<Vec<Filter>>,
    /// Where each filter of `filter_groups` came from in the request, for error messages.
    pub filter_paths: Vec<Vec<String>>,
    pub sorts: Vec<Sort>,
    pub query: Option<String>,
    pub properties: Option<Vec<String>>,
    pub limit: usize,
    /// Offset into the sorted result set.
    pub after: usize,
}

/// A search request that cannot be run, with the JSON path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SearchError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> SearchError {
    SearchError {
        field: field.into(),
        message: message.into(),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl SearchRequest {
    pub fn parse(body: &Value) -> Result<Self, SearchError> {
        let obj = match body {
            Value::Object(o) => o,
            Value::Null => return Self::parse(&Value::Object(Default::default())),
            _ => return Err(err("body", "the search request must be a JSON object")),
        };
        // A field that is not understood might have narrowed the answer: refused, never
        // ignored.
        if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            let field = match unknown.is_empty() {
                true => "body",
                false => unknown.as_str(),
            };
            return Err(err(
                field,
                format!(
                    "{unknown:?} is not a field of a search request (known: {})",
                    FIELDS.join(", ")
                ),
            ));
        }
        let mut filter_groups = Vec::new();
        let mut filter_paths = Vec::new();
        let mut total_filters = 0;
        if let Some(groups) = obj.get("filterGroups").filter(|v| !v.is_null()) {
            let groups = groups
                .as_array()
                .ok_or_else(|| err("filterGroups", "must be an array"))?;
            if groups.len() > MAX_GROUPS {
                return Err(err(
                    "filterGroups",
                    format!(
                        "at most {MAX_GROUPS} filter groups are allowed, got {}",
                        groups.len()
                    ),
                ));
            }
            for (gi, group) in groups.iter().enumerate() {
                let path = format!("filterGroups[{gi}].filters");
                let filters = group
                    .get("filters")
                    .ok_or_else(|| err(path.as_str(), "is required and must be an array"))?;
                let (parsed, paths) = Filter::parse_list(filters, &path)?;
                total_filters += parsed.len();
                filter_groups.push(parsed);
                filter_paths.push(paths);
            }
        }
        // HubSpot also takes a top-level `filters` list, beside or instead of the groups: its
        // filters are AND-ed with each other and with whichever group matches, so they join
        // every group (or are the one group when there is none).
        if let Some(filters) = obj.get("filters").filter(|v| !v.is_null()) {
            let (parsed, paths) = Filter::parse_list(filters, "filters")?;
            total_filters += parsed.len();
            if filter_groups.is_empty() && !parsed.is_empty() {
                filter_groups.push(parsed);
                filter_paths.push(paths);
            } else {
                for (group, group_paths) in filter_groups.iter_mut().zip(&mut filter_paths) {
                    group.extend(parsed.iter().cloned());
                    group_paths.extend(paths.iter().cloned());
                }
            }
        }
        if total_filters > MAX_FILTERS {
            return Err(err(
                "filterGroups",
                format!("at most {MAX_FILTERS} filters are allowed in total"),
            ));
        }
        let mut sorts = Vec::new();
        if let Some(s) = obj.get("sorts").filter(|v| !v.is_null()) {
            let s = s
                .as_array()
                .ok_or_else(|| err("sorts", "must be an array"))?;
            if s.len() > MAX_SORTS {
                return Err(err(
                    "sorts",
                    format!("at most {MAX_SORTS} sort is allowed, got {}", s.len()),
                ));
            }
            for (i, item) in s.iter().enumerate() {
                sorts.push(Sort::parse(item, &format!("sorts[{i}]"))?);
            }
        }
        let query = match obj.get("query") {
            None | Some(Value::Null) => None,
            Some(Value::String(q)) if q.trim().is_empty() => None,
            Some(Value::String(q)) if q.chars().count() > MAX_QUERY_CHARS => {
                return Err(err(
                    "query",
                    format!("must be at most {MAX_QUERY_CHARS} characters"),
                ))
            }
            Some(Value::String(q)) if q.split_whitespace().count() > MAX_QUERY_WORDS => {
                return Err(err(
                    "query",
                    format!("must be at most {MAX_QUERY_WORDS} words"),
                ))
            }
            Some(Value::String(q)) => Some(q.trim().to_string()),
            Some(_) => return Err(err("query", "must be a string")),
        };
        let properties = match obj.get("properties") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) if a.len() > MAX_PROPERTIES => {
                return Err(err(
                    "properties",
                    format!("at most {MAX_PROPERTIES} properties can be asked for"),
                ))
            }
            Some(Value::Array(a)) => Some(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| err(format!("properties[{i}]"), "must be a string"))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            )
            .filter(|p: &Vec<String>| !p.is_empty()),
            Some(_) => return Err(err("properties", "must be an array of property names")),
        };
        let limit = match obj.get("limit") {
            None | Some(Value::Null) => 10,
            Some(v) => {
                let n = v
                    .as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .ok_or_else(|| err("limit", "must be an integer"))?;
                if !(0..=MAX_LIMIT as i64).contains(&n) {
                    return Err(err(
                        "limit",
                        format!("must be between 0 and {MAX_LIMIT}, got {n}"),
                    ));
                }
                n as usize
            }
        };
        let after = match obj.get("after") {
            None | Some(Value::Null) => 0,
            Some(v) => {
                let n = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| err("after", "must be a non-negative integer offset"))?;
                usize::try_from(n).unwrap_or(usize::MAX)
            }
        };
        if after.saturating_add(limit) > MAX_RESULTS {
            return Err(err(
                "after",
                format!("search results are limited to {MAX_RESULTS}; narrow the filters"),
            ));
        }
        Ok(Self {
            filter_groups,
            filter_paths,
            sorts,
            query,
            properties,
            limit: if limit == 0 { 10 } else { limit },
            after,
        })
    }

    /// Every property name the request refers to in filters and sorts.
    pub fn referenced_properties(&self) -> impl Iterator<Item = (&str, String)> {
        let filters = self
            .filter_groups
            .iter()
            .zip(&self.filter_paths)
            .flat_map(|(g, paths)| {
                g.iter()
                    .zip(paths)
                    .map(|(f, path)| (f.property.as_str(), format!("{path}.propertyName")))
            });
        let sorts = self
            .sorts
            .iter()
            .enumerate()
            .map(|(i, s)| (s.property.as_str(), format!("sorts[{i}]")));
        filters.chain(sorts)
    }
}

impl Filter {
    /// A list of filters at `path`, AND-ed, with each one's path.
    fn parse_list(v: &Value, path: &str) -> Result<(Vec<Self>, Vec<String>), SearchError> {
        let filters = v
            .as_array()
            .ok_or_else(|| err(path, "is required and must be an array"))?;
        if filters.len() > MAX_FILTERS_PER_GROUP {
            return Err(err(
                path,
                format!("at most {MAX_FILTERS_PER_GROUP} filters are allowed in a group"),
            ));
        }
        let paths: Vec<String> = (0..filters.len()).map(|i| format!("{path}[{i}]")).collect();
        let parsed = filters
            .iter()
            .zip(&paths)
            .map(|(f, p)| Self::parse(f, p))
            .collect::<Result<_, _>>()?;
        Ok((parsed, paths))
    }

    fn parse(v: &Value, path: &str) -> Result<Self, SearchError> {
        let property = v
            .get("propertyName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err(format!("{path}.propertyName"), "is required"))?
            .to_string();
        let op_str = v
            .get("operator")
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("{path}.operator"), "is required"))?;
        let operator = Operator::parse(op_str).ok_or_else(|| {
            err(
                format!("{path}.operator"),
                format!("{op_str:?} is not a known operator"),
            )
        })?;
        let value = v.get("value").and_then(scalar);
        let high_value = v.get("highValue").and_then(scalar);
        let values = match v.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) if a.len() > MAX_VALUES => {
                return Err(err(
                    format!("{path}.values"),
                    format!("at most {MAX_VALUES} values are allowed, got {}", a.len()),
                ))
            }
            Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
            Some(_) => return Err(err(format!("{path}.values"), "must be an array")),
        };
        let too_long = |x: &Option<String>| {
            x.as_ref()
                .is_some_and(|x| x.chars().count() > MAX_VALUE_CHARS)
        };
        if too_long(&value)
            || too_long(&high_value)
            || values.iter().any(|x| x.chars().count() > MAX_VALUE_CHARS)
        {
            return Err(err(
                path,
                format!("a filter value must be at most {MAX_VALUE_CHARS} characters"),
            ));
        }
        match operator {
            Operator::Between if value.is_none() || high_value.is_none() => {
                return Err(err(path, "BETWEEN needs value and highValue"));
            }
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err(err(
                    format!("{path}.values"),
                    format!("{op_str} needs a non-empty values array"),
                ));
            }
            Operator::Eq
            | Operator::Neq
            | Operator::Lt
            | Operator::Lte
            | Operator::Gt
            | Operator::Gte
            | Operator::ContainsToken
            | Operator::NotContainsToken
                if value.is_none() =>
            {
                return Err(err(
                    format!("{path}.value"),
                    format!("{op_str} needs a value"),
                ));
            }
            _ => {}
        }
        Ok(Self {
            property,
            operator,
            value,
            high_value,
            values,
        })
    }

    /// Does a record's stored value (`None` when unset) satisfy this filter?
    pub fn matches(&self, kind: PropertyType, stored: Option<&str>) -> bool {
        use Operator::*;
        match self.operator {
            HasProperty => stored.is_some(),
            NotHasProperty => stored.is_none(),
            Neq => {
                stored.is_none_or(|s| !equal(kind, s, self.value.as_deref().unwrap_or_default()))
            }
            NotIn => stored.is_none_or(|s| !self.values.iter().any(|v| equal(kind, s, v))),
            NotContainsToken => {
                stored.is_none_or(|s| !contains_token(s, self.value.as_deref().unwrap_or_default()))
            }
            _ => {
                let Some(s) = stored else { return false };
                let v = self.value.as_deref().unwrap_or_default();
                match self.operator {
                    Eq => equal(kind, s, v),
                    Lt => compare(kind, s, v) == Some(Ordering::Less),
                    Lte => matches!(compare(kind, s, v), Some(Ordering::Less | Ordering::Equal)),
                    Gt => compare(kind, s, v) == Some(Ordering::Greater),
                    Gte => matches!(
                        compare(kind, s, v),
                        Some(Ordering::Greater | Ordering::Equal)
                    ),
                    Between => {
                        let hi = self.high_value.as_deref().unwrap_or_default();
                        matches!(
                            compare(kind, s, v),
                            Some(Ordering::Greater | Ordering::Equal)
                        ) && matches!(compare(kind, s, hi), Some(Ordering::Less | Ordering::Equal))
                    }
                    In => self.values.iter().any(|x| equal(kind, s, x)),
                    ContainsToken => contains_token(s, v),
                    _ => false,
                }
            }
        }
    }
}

impl Sort {
    fn parse(v: &Value, path: &str) -> Result<Self, SearchError> {
        match v {
            Value::String(s) if s.starts_with('-') && s.len() > 1 => Ok(Self {
                property: s[1..].to_string(),
                descending: true,
            }),
            Value::String(s) if !s.is_empty() => Ok(Self {
                property: s.clone(),
                descending: false,
            }),
            Value::Object(o) => {
                let property = o
                    .get("propertyName")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| err(format!("{path}.propertyName"), "is required"))?
                    .to_string();
                let descending = match o.get("direction").and_then(Value::as_str) {
                    None | Some("ASCENDING") => false,
                    Some("DESCENDING") => true,
                    Some(d) => {
                        return Err(err(
                            format!("{path}.direction"),
                            format!("{d:?} is not ASCENDING or DESCENDING"),
                        ))
                    }
                };
                Ok(Self {
                    property,
                    descending,
                })
            }
            _ => Err(err(
                path,
                "a sort is a property name, \"-name\", or {propertyName, direction}",
            )),
        }
    }
}

fn instant(kind: PropertyType, s: &str) -> Option<i64> {
    match kind {
        PropertyType::Date | PropertyType::Datetime => time::parse_instant(s),
        _ => None,
    }
}

fn equal(kind: PropertyType, stored: &str, v: &str) -> bool {
    compare(kind, stored, v) == Some(Ordering::Equal)
}

/// Compares a stored value with a filter value in the property's own terms: numbers
/// numerically, dates as instants, everything else case-insensitively.
pub fn compare(kind: PropertyType, a: &str, b: &str) -> Option<Ordering> {
    match kind {
        PropertyType::Number => as_number(a)?.partial_cmp(&as_number(b.trim())?),
        PropertyType::Date | PropertyType::Datetime => {
            Some(instant(kind, a)?.cmp(&instant(kind, b)?))
        }
        _ => Some(cmp_ci(a, b)),
    }
}

fn cmp_ci(a: &str, b: &str) -> Ordering {
    fold(a).cmp(&fold(b))
}

/// Orders two stored values for sorting: unset values last, then by their index keys (see
/// [`keys::value_key`]), which order as [`compare`] does where it answers; values of a
/// number or date property that do not parse come after those that do.
pub fn sort_order(kind: PropertyType, a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => keys::value_key(kind, a).cmp(&keys::value_key(kind, b)),
    }
}

/// HubSpot's token match: the value splits into words; a pattern matches a whole word, or,
/// with `*` wildcards, any word or the whole value.
pub fn contains_token(stored: &str, pattern: &str) -> bool {
    let pattern = fold(pattern.trim());
    if pattern.is_empty() {
        return false;
    }
    let stored = fold(stored);
    if pattern.contains('*') {
        return glob(&pattern, &stored) || stored.split_whitespace().any(|w| glob(&pattern, w));
    }
    stored == pattern
        || stored.split_whitespace().any(|w| w == pattern)
        || stored
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == pattern)
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) {
        return false;
    }
    let mut rest = &text[first.len()..];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The free-text `query`: every word of it is the record's id, or begins a word of one of
/// the searchable values (case-folded; a word begins at the start, after whitespace, and
/// where letters or digits follow anything else: `mue` finds `Mueller` and
/// `emma.mueller@example.com`, `example.com` finds the address too, `eller` finds neither).
pub fn query_matches<'a>(
    query: &str,
    id: Option<i64>,
    values: impl Iterator<Item = &'a str> + Clone,
) -> bool {
    let id = id.map(|i| i.to_string());
    query.split_whitespace().all(|word| {
        if id.as_deref() == Some(word) {
            return true;
        }
        let word = fold(word);
        values.clone().any(|v| {
            let v = fold(v);
            keys::word_starts(&v)
                .into_iter()
                .any(|i| v[i..].starts_with(&word))
        })
    })
}

#[cfg(test)]
mod tests;
